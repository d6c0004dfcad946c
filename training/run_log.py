"""Per-epoch metrics written beside the run: ``metrics.jsonl`` and ``metrics.csv``.

JSONL is the complete record (one object per epoch, any keys); the CSV has a
fixed column set so it opens cleanly in a spreadsheet, with blanks for epochs
without an evaluation. Both are rewritten on resume so they never hold rows
from epochs that the restored state has not seen.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CSV_COLUMNS = (
    "epoch",
    "lr",
    "lr_end",
    "loss",
    "loss_identity",
    "loss_triplet",
    "loss_verification",
    "loss_uniformity",
    "images",
    "images_per_s",
    "epoch_seconds",
    "wall_seconds",
    "mAP",
    "mINP",
    "rank1",
    "rank5",
    "rank10",
    "attention_correlation",
)


class RunLog:
    """Appends one row per epoch to the JSONL and CSV files of a run directory."""

    def __init__(self, directory: Path) -> None:
        self.jsonl_path = Path(directory) / "metrics.jsonl"
        self.csv_path = Path(directory) / "metrics.csv"

    def read(self) -> list[dict[str, Any]]:
        """All rows recorded so far (an absent file is an empty log)."""
        if not self.jsonl_path.exists():
            return []
        rows = []
        for line in self.jsonl_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
        return rows

    def truncate_after(self, epoch: int) -> None:
        """Drop rows past ``epoch`` (written after the state we resume from)."""
        kept = [row for row in self.read() if int(row.get("epoch", 0)) <= epoch]
        self.jsonl_path.write_text(
            "".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8"
        )
        with self.csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for row in kept:
                writer.writerow(_csv_row(row))

    def append(self, row: Mapping[str, Any]) -> None:
        clean = {key: _json_value(value) for key, value in row.items()}
        with self.jsonl_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(clean) + "\n")
        new_file = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with self.csv_path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new_file:
                writer.writerow(CSV_COLUMNS)
            writer.writerow(_csv_row(clean))


def _json_value(value: Any) -> Any:
    # NaN/inf are not JSON; a diverged loss is recorded as null rather than
    # producing a file that strict parsers reject.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv_row(row: Mapping[str, Any]) -> list[str]:
    out = []
    for column in CSV_COLUMNS:
        value = row.get(column)
        if value is None:
            out.append("")
        elif isinstance(value, float):
            out.append(f"{value:.6g}")
        else:
            out.append(str(value))
    return out
