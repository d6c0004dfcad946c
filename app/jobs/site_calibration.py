"""Site calibration: open-set thresholds fitted on labelled crops against the live gallery.

A calibration needs **non-mated** probes (people not in the gallery) scored against
the gallery the service really holds. The labelled crops are split by identity:

* a crop whose identity is not enrolled is non-mated as it stands;
* of the crop identities that *are* enrolled, a seeded half (``withhold_identities``,
  seed 0, at least one kept) is **withheld**: their entries are left out of the scored
  gallery, so their crops become non-mated probes of people the site really sees, in
  its own cameras and light, which passers-by from elsewhere are not;
* the other enrolled crop identities stay **mated**: they only measure FNIR.

Every probe is scored like ``POST /query`` scores (an identity's best entry, no
filters) against the gallery without the withheld identities, and the model side's
``fit_calibration`` fits the impostor tail and the size model on the non-mated rows.
Its stated thresholds are for the whole gallery's identity count; any other size is
``threshold_for``'s job. A probe whose exact bytes are enrolled is skipped: it would
only find itself.
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
from model.evaluation.calibration_fit import entry_scores, fit_calibration
from model.evaluation.open_set import FPIR_TARGETS, identity_scores, withhold_identities

KIND = "site_calibration"
ARCHIVE = "probes.zip"
LABELS = "labels.json"
SEED = 0
WITHHELD_FRACTION = 0.5
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
    """Split, score, fit; the summary says how the probes were used and what the fit gives."""
    enrolled = sorted(set(owners))
    codes = {identity: code for code, identity in enumerate(enrolled)}
    in_gallery = sorted({identity for identity in probe_identities if identity in codes})
    withheld: set[str] = set()
    if len(in_gallery) >= 2:
        chosen = withhold_identities(
            [codes[name] for name in in_gallery], WITHHELD_FRACTION, seed=SEED
        )
        withheld = {enrolled[int(code)] for code in chosen}
    scored = np.array([owner not in withheld for owner in owners], dtype=bool)
    nonmated = np.array(
        [name not in codes or name in withheld for name in probe_identities], dtype=bool
    )
    split = {
        "enrolled_identities": len(enrolled),
        "scored_identities": len(enrolled) - len(withheld),
        "withheld_identities": len(withheld),
        "unenrolled_probe_identities": len({n for n in probe_identities if n not in codes}),
        "mated_probes": int((~nonmated).sum()),
        "nonmated_probes": int(nonmated.sum()),
        "seed": SEED,
    }
    if not nonmated.any():
        raise JobFailed(
            "no probe is non-mated: send crops of people who are not enrolled, or of at "
            "least two enrolled identities (half of them are withheld)",
            code="insufficient_calibration_data",
        )
    owner_codes = np.array([codes[owner] for owner in owners], dtype=np.int64)
    scores = identity_scores(probes, gallery[scored], owner_codes[scored])
    entries = entry_scores(probes[nonmated], gallery[scored], owner_codes[scored], seed=SEED)
    try:
        calibration = fit_calibration(
            scores.scores[nonmated],
            gallery_identities=len(enrolled),
            entries=entries,
            mated_probes=split["mated_probes"],
            withheld_identities=len(withheld),
            probe_groups=np.array(probe_identities, dtype=object)[nonmated],
            seed=SEED,
        )
    except CalibrationError as error:
        raise JobFailed(str(error), code="insufficient_calibration_data") from None
    probe_codes = np.array([codes.get(name, -1) for name in probe_identities], dtype=np.int64)
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
        "operating_points": _operating_points(calibration, scores, nonmated, probe_codes),
    }
    return calibration, summary


def _operating_points(
    calibration: Calibration, scores: Any, nonmated: np.ndarray, probe_codes: np.ndarray
) -> list[dict[str, Any]]:
    """At each FPIR target, for the scored gallery's size: the threshold, and on these
    probes the FPIR it gave (in-sample: the same non-mated scores shaped the fit) and
    the FNIR (null without mated probes)."""
    best_column = scores.scores.argmax(axis=1)
    best_score = scores.scores.max(axis=1)
    right = scores.identities[best_column] == probe_codes
    size = len(scores.identities)
    points = []
    for target in FPIR_TARGETS:
        # m_cal is the scored gallery's own mean entries per identity
        threshold = calibration.threshold_for(target, size, calibration.entries_per_identity)
        decided = best_score >= threshold
        points.append(
            {
                "target_false_positive_rate": target,
                "gallery_identities": size,
                "threshold": threshold,
                "observed_false_positive_rate": float(decided[nonmated].mean()),
                "false_negative_rate": (
                    float(1.0 - (decided & right)[~nonmated].mean()) if (~nonmated).any() else None
                ),
            }
        )
    return points
