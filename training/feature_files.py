"""The saved-features ``.npz`` that ``training.evaluate --save-features`` writes and
``--features`` reads back: query/gallery embeddings with their pids and cameras.

Reading validates every array's shape and type, so a wrong file is a usage error
that names the array, not a failure deep inside the metrics.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from training.usage import UsageError

FEATURE_KEYS = (
    "query_features",
    "gallery_features",
    "query_pids",
    "gallery_pids",
    "query_camids",
    "gallery_camids",
)


def load_feature_file(path: Path) -> dict[str, np.ndarray]:
    """Read and validate a features ``.npz``; every problem is a UsageError naming it."""
    if not path.is_file():
        raise UsageError(f"--features: {path} does not exist or is not a file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in FEATURE_KEYS if key not in archive.files]
            if missing:
                raise UsageError(
                    f"--features: {path} lacks {', '.join(missing)} "
                    f"(found: {', '.join(archive.files) or 'nothing'})"
                )
            arrays = {key: archive[key] for key in FEATURE_KEYS}
    except UsageError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise UsageError(f"--features: {path} is not a readable .npz file: {error}") from None
    _check_feature_arrays(arrays, path)
    return arrays


def _check_feature_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    for split in ("query", "gallery"):
        features = arrays[f"{split}_features"]
        if features.ndim != 2 or not np.issubdtype(features.dtype, np.floating):
            raise UsageError(
                f"--features: {split}_features in {path} must be a 2-D float array (N, D), "
                f"got shape {features.shape} and dtype {features.dtype}"
            )
        for ids_key in (f"{split}_pids", f"{split}_camids"):
            values = arrays[ids_key]
            if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
                raise UsageError(
                    f"--features: {ids_key} in {path} must be a 1-D integer array, "
                    f"got shape {values.shape} and dtype {values.dtype}"
                )
            if len(values) != len(features):
                raise UsageError(
                    f"--features: {ids_key} in {path} has {len(values)} entries but "
                    f"{split}_features has {len(features)} rows"
                )
    query_dim = arrays["query_features"].shape[1]
    gallery_dim = arrays["gallery_features"].shape[1]
    if query_dim != gallery_dim:
        raise UsageError(
            f"--features: query and gallery features in {path} have different dimensions "
            f"({query_dim} vs {gallery_dim})"
        )


def write_feature_file(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomically(path, buffer.getvalue())


def write_atomically(path: Path, data: bytes) -> None:
    """Write via a sibling file and rename, so a reader never sees half a report."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
