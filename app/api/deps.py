"""Typed dependencies for the routes: the running services, their parts, and role checks.

Routes declare what they need in their signature (``gallery: GalleryDep``) and
FastAPI hands it over per request; nothing is imported as a global.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.api.auth import Principal, RoleRequirement
from app.gallery import Gallery
from app.inference.explain import Explainer
from app.jobs.runner import EvaluationRunner
from app.services import Services
from app.settings import Role, Settings


def get_services(request: Request) -> Services:
    return request.app.state.services


def get_gallery(request: Request) -> Gallery:
    return get_services(request).gallery


def get_settings(request: Request) -> Settings:
    return get_services(request).settings


def get_evaluations(request: Request) -> EvaluationRunner:
    return get_services(request).evaluations


def get_explainer(request: Request) -> Explainer:
    return get_services(request).explainer


ServicesDep = Annotated[Services, Depends(get_services)]
GalleryDep = Annotated[Gallery, Depends(get_gallery)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EvaluationsDep = Annotated[EvaluationRunner, Depends(get_evaluations)]
ExplainerDep = Annotated[Explainer, Depends(get_explainer)]

# Route-level requirements: ``@router.get(..., dependencies=[READ])``.
READ = Depends(RoleRequirement(Role.READ))
WRITE = Depends(RoleRequirement(Role.WRITE))
ADMIN = Depends(RoleRequirement(Role.ADMIN))
# The caller, for a route that also declares ``dependencies=[READ]`` (which the auth
# middleware reads); FastAPI runs the one requirement once and hands its Principal here.
ReaderDep = Annotated[Principal, READ]
