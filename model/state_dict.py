"""Explaining why a state_dict does not fit a network, in one readable line."""

from __future__ import annotations

from collections.abc import Mapping

import torch

# Listing every key of a foreign ResNet would bury the point; a few make it.
_MAX_LISTED = 5


def describe_mismatch(
    expected: Mapping[str, torch.Tensor], actual: Mapping[str, torch.Tensor]
) -> str | None:
    """``None`` when keys and shapes agree, else a summary of missing/unexpected/misshapen keys."""
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    wrong_shape = sorted(
        f"{key} {tuple(actual[key].shape)} != {tuple(expected[key].shape)}"
        for key in set(actual) & set(expected)
        if actual[key].shape != expected[key].shape
    )
    problems = [
        f"{len(items)} {label}: {', '.join(items[:_MAX_LISTED])}"
        f"{' ...' if len(items) > _MAX_LISTED else ''}"
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", wrong_shape),
        )
        if items
    ]
    return "; ".join(problems) if problems else None
