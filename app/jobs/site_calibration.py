"""Site calibration: open-set thresholds fitted on labelled crops against the live gallery.

A calibration needs **non-mated** probes (people not in the gallery) scored against
the gallery the service really holds. Every labelled crop is one:

* a crop whose identity is not enrolled is non-mated against every enrolled identity;
* a crop of an enrolled identity is **mated** against its own identity (it measures
  FNIR) and non-mated against all the others: with its own identity's column left out
  it is exactly a probe of someone the gallery does not hold, and it is a person the
  site really sees, in its own cameras and light, which passers-by from elsewhere are not.

Every probe is scored like ``POST /query`` scores (an identity's best entry, no
filters) against the whole live gallery, and the model side's ``fit_calibration`` fits
the impostor tail and the size model on the non-mated scores, so the size model is
fitted up to the gallery's own size. (An earlier split withheld half of the enrolled
crop identities from the gallery instead: the size model then had to be carried from
the half it scored to the whole, and at 200 enrolled identities it promised 2.6-3x too
few false matches at 1%.) Its stated thresholds are for the whole gallery's identity
count; any other size is ``threshold_for``'s job. A probe whose exact bytes are enrolled
is skipped: it would only find itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from app.gallery import Gallery
from app.inference.decoding import Upload
from app.jobs.errors import JobFailed
from app.jobs.labelled import QueryLabels
from app.jobs.live_gallery import check_gallery, embed_uploads, load_gallery
from app.jobs.members import MemberEmbedder, Progress
from model.evaluation.calibration import Calibration, CalibrationError
from model.evaluation.calibration_fit import (
    entry_scores,
    fit_calibration,
    without_own_columns,
)
from model.evaluation.open_set import FPIR_TARGETS, identity_scores

KIND = "site_calibration"
ARCHIVE = "probes.zip"
LABELS = "labels.json"
SEED = 0
MAX_LISTED_SKIPS = 20


def prepare(
    directory: Path, uploads: list[Upload], labels: QueryLabels, gallery: Gallery, max_gallery: int
) -> dict[str, Any]:
    """Check the gallery can be calibrated on, then store the probes for the job."""
    gallery_size = check_gallery(gallery, max_gallery)
    with zipfile.ZipFile(directory / ARCHIVE, "w", zipfile.ZIP_STORED) as archive:
        for upload in uploads:
            archive.writestr(f"{upload.index:06d}", upload.data)
    stored = {
        "filenames": [upload.filename for upload in uploads],
        "identities": labels.identities,
        "sha256": [hashlib.sha256(upload.data).hexdigest() for upload in uploads],
    }
    (directory / LABELS).write_text(json.dumps(stored), encoding="utf-8")
    return {"counts": {"probe_images": len(uploads), "gallery_entries": gallery_size}}


async def run(
    directory: Path, gallery: Gallery, embedder: MemberEmbedder, progress: Progress
) -> dict[str, Any]:
    uploads = await embed_uploads(directory, ARCHIVE, LABELS, gallery, embedder, progress)
    labels, probes, embed_s = uploads.labels, uploads.members, uploads.embed_s
    started = time.perf_counter()
    loaded = await load_gallery(gallery)
    enrolled_bytes = await asyncio.to_thread(
        gallery.store.referenced_hashes, [labels["sha256"][i] for i in probes.kept]
    )
    rows = [row for row, i in enumerate(probes.kept) if labels["sha256"][i] not in enrolled_bytes]
    probe_identities = [labels["identities"][probes.kept[row]] for row in rows]
    owners = [owner.identity for owner in loaded.owners]
    fitted, summary = await asyncio.to_thread(
        _fit, probes.features[rows], probe_identities, loaded.features, owners
    )
    await asyncio.to_thread(
        gallery.calibrations.save, fitted, job_id=directory.name, details=summary["split"]
    )
    skipped = [
        {"file": labels["filenames"][int(item["file"])], "code": item["code"]}
        for item in probes.skipped
    ]
    return {
        **summary,
        "counts": {
            "probe_images": uploads.images,
            "gallery_entries": len(owners),
            "undecodable_skipped": len(skipped),
            "enrolled_bytes_skipped": len(probes.kept) - len(rows),
        },
        "skipped": skipped[:MAX_LISTED_SKIPS],
        "timings": {
            "embed_s": round(embed_s, 3),
            "fit_s": round(time.perf_counter() - started, 3),
        },
    }


def _fit(
    probes: np.ndarray, probe_identities: list[str], gallery: np.ndarray, owners: list[str]
) -> tuple[Calibration, dict[str, Any]]:
    """Score, fit; the summary says how the probes were used and what the fit gives."""
    enrolled = sorted(set(owners))
    codes = {identity: code for code, identity in enumerate(enrolled)}
    own = np.array([codes.get(name, -1) for name in probe_identities], dtype=np.int64)
    mated = own >= 0
    split = {
        "enrolled_identities": len(enrolled),
        "enrolled_probe_identities": len({n for n in probe_identities if n in codes}),
        "unenrolled_probe_identities": len({n for n in probe_identities if n not in codes}),
        "mated_probes": int(mated.sum()),
        "nonmated_probes": len(probe_identities),
    }
    if len(enrolled) < 2 and mated.all():
        raise JobFailed(
            "no probe is non-mated: send crops of people who are not enrolled, or enroll at "
            "least two identities (a probe is non-mated against every identity but its own)",
            code="insufficient_calibration_data",
        )
    owner_codes = np.array([codes[owner] for owner in owners], dtype=np.int64)
    scores = identity_scores(probes, gallery, owner_codes)
    try:
        calibration = fit_calibration(
            scores.scores,
            gallery_identities=len(enrolled),
            entries=entry_scores(probes, gallery, owner_codes, seed=SEED),
            own_column=own,
            mated_probes=split["mated_probes"],
            probe_groups=np.array(probe_identities, dtype=object),
            seed=SEED,
        )
    except CalibrationError as error:
        raise JobFailed(str(error), code="insufficient_calibration_data") from None
    summary = {
        "calibration": {
            "gallery_identities": calibration.gallery_identities,
            "thresholds": dict(calibration.thresholds),
            "counts": dict(calibration.counts),
            "size_scale": calibration.size_scale,
            "size_exponent": calibration.size_exponent,
            "entries_per_identity": calibration.entries_per_identity,
            "entries_exponent": calibration.entries_exponent,
            "tail_form": calibration.tail_form,
            "fpir_spread": {key: list(band) for key, band in calibration.fpir_spread.items()},
        },
        "split": split,
        "operating_points": _operating_points(calibration, scores.scores, own),
    }
    return calibration, summary


def _operating_points(
    calibration: Calibration, scores: np.ndarray, own: np.ndarray
) -> list[dict[str, Any]]:
    """At each FPIR target, for the gallery's size: the threshold, and on these probes the
    FPIR it gave (in-sample: the same non-mated scores shaped the fit; a probe's best
    score over every identity but its own) and the FNIR over the mated probes (null
    without any)."""
    mated = own >= 0
    best_impostor = without_own_columns(scores, own).max(axis=1)
    right = scores[mated].argmax(axis=1) == own[mated]
    best_mated = scores[mated].max(axis=1)
    size = scores.shape[1]
    points = []
    for target in FPIR_TARGETS:
        # m_cal is the gallery's own mean entries per identity
        threshold = calibration.threshold_for(target, size, calibration.entries_per_identity)
        points.append(
            {
                "target_false_positive_rate": target,
                "gallery_identities": size,
                "threshold": threshold,
                "observed_false_positive_rate": float((best_impostor >= threshold).mean()),
                "false_negative_rate": (
                    float(1.0 - ((best_mated >= threshold) & right).mean()) if mated.any() else None
                ),
            }
        )
    return points
