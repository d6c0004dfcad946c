"""Evaluation kind (a): a Market-1501 zip scored with the loaded model, apart from the gallery."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.errors import JobFailed
from app.jobs.members import MemberEmbedder, Progress
from app.jobs.ranking_options import RankingOptions
from app.jobs.zipcheck import Member, ZipLimits, open_checked, plan_market_zip
from model.evaluation.metrics import compute_reid_metrics

KIND = "market_zip"
ARCHIVE = "dataset.zip"
MAX_LISTED_SKIPS = 20


def prepare(directory: Path, limits: ZipLimits, options: RankingOptions) -> dict[str, Any]:
    """Validate the stored zip (refusing anything hostile); returns the job's params."""
    archive, members = open_checked(directory / ARCHIVE, limits)
    with archive:
        plan = plan_market_zip(members)
    options.check_gallery_size(len(plan.gallery))
    return {"counts": plan.counts(), "ranking": options.to_dict()}


async def run(
    directory: Path,
    limits: ZipLimits,
    embedder: MemberEmbedder,
    progress: Progress,
    options: RankingOptions,
) -> dict[str, Any]:
    archive, members = await asyncio.to_thread(open_checked, directory / ARCHIVE, limits)
    with archive:
        plan = plan_market_zip(members)
        started = time.perf_counter()
        total = len(plan.query) + len(plan.gallery)
        query = await embedder.embed(archive, [m.name for m in plan.query], progress, total=total)
        gallery = await embedder.embed(
            archive,
            [m.name for m in plan.gallery],
            progress,
            done_before=len(plan.query),
            total=total,
        )
        embed_s = time.perf_counter() - started
    skipped = query.skipped + gallery.skipped
    if not len(query.features) or not len(gallery.features):
        raise JobFailed(
            "no decodable images left in query/ or bounding_box_test/ after skipping "
            f"{len(skipped)} undecodable file(s)",
            code="no_decodable_images",
        )
    started = time.perf_counter()
    metrics = await asyncio.to_thread(
        compute_reid_metrics,
        query.features,
        gallery.features,
        _attribute_of_kept(plan.query, query.kept, "pid"),
        _attribute_of_kept(plan.gallery, gallery.kept, "pid"),
        _attribute_of_kept(plan.query, query.kept, "camid"),
        _attribute_of_kept(plan.gallery, gallery.kept, "camid"),
        rerank=options.rerank_settings,
        query_expansion=options.aqe,
    )
    return {
        "metrics": metrics.to_dict(),
        "ranking": options.to_dict(),
        "counts": {**plan.counts(), "undecodable_skipped": len(skipped)},
        "skipped": skipped[:MAX_LISTED_SKIPS],
        "timings": {
            "embed_s": round(embed_s, 3),
            "metrics_s": round(time.perf_counter() - started, 3),
        },
    }


def _attribute_of_kept(members: list[Member], kept: list[int], attribute: str) -> np.ndarray:
    """``pid`` or ``camid`` of the members that decoded, as the evaluator's int64 labels."""
    return np.array([getattr(members[i], attribute) for i in kept], dtype=np.int64)
