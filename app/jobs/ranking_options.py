"""An evaluation job's optional post-processing: k-reciprocal re-ranking and query expansion.

The form fields arrive as text; they are parsed here, in the jobs layer, so a bad value is
the same domain error (InvalidEvaluationOptions, an InvalidInput) whichever way a job is
submitted. The algorithms are the offline evaluator's (model/evaluation), so a job's
numbers equal ``python -m training.evaluate --rerank --aqe K`` on the same features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.jobs.errors import InvalidEvaluationOptions
from model.evaluation.reranking import KReciprocalSettings

_TRUE = ("true", "1")
_FALSE = ("false", "0")


@dataclass(frozen=True)
class RankingOptions:
    """``rerank``: paper-default k-reciprocal re-ranking; ``aqe``: query expansion K."""

    rerank: bool = False
    aqe: int | None = None

    @property
    def rerank_settings(self) -> KReciprocalSettings | None:
        return KReciprocalSettings() if self.rerank else None

    def to_dict(self) -> dict[str, Any]:
        settings = self.rerank_settings
        return {
            "rerank": None if settings is None else settings.to_dict(),
            "aqe": None if self.aqe is None else {"k": self.aqe},
        }

    def check_gallery_size(self, gallery_size: int) -> None:
        """Expansion needs K gallery items; refuse at submission rather than fail later."""
        if self.aqe is not None and self.aqe > gallery_size:
            raise InvalidEvaluationOptions(
                f"aqe={self.aqe} needs at least {self.aqe} gallery items; the gallery has "
                f"{gallery_size}",
                {"field": "aqe"},
            )


def parse_ranking_options(rerank: str | None, aqe: str | None) -> RankingOptions:
    """The ``rerank`` (true/false) and ``aqe`` (positive integer) form fields."""
    flag = False
    if rerank is not None:
        text = rerank.strip().lower()
        if text not in _TRUE + _FALSE:
            raise InvalidEvaluationOptions(
                f"rerank must be true or false, got {rerank[:40]!r}", {"field": "rerank"}
            )
        flag = text in _TRUE
    k = None
    if aqe is not None:
        text = aqe.strip()
        if not (text.isascii() and text.isdigit()) or int(text) < 1:
            raise InvalidEvaluationOptions(
                f"aqe must be a positive integer (the neighbours averaged into each query), "
                f"got {aqe[:40]!r}",
                {"field": "aqe"},
            )
        k = int(text)
    return RankingOptions(flag, k)
