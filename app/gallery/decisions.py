"""Is this someone we know? The open-set decision that accompanies every ranking.

The best identity's score ``>= T`` is a ``match`` with that identity, anything else
is ``unknown``. ``T`` comes from the calibration in force
(``Calibration.threshold_for(fpir, N, m)``) and keeps the promised false-positive
identification rate (the share of people not in the gallery decided ``match``) in a
gallery of ``N`` identities holding ``m`` entries each on average. ``N`` and ``m`` are
the *effective* gallery's: the identities with at least one entry the query's camera
and time filters admit, and those entries, because those are all a probe is compared
with. Fewer identities or entries in play give fewer chances of an impostor match, so
they rightly give a lower threshold. ``min_score`` does not change the effective
gallery or the decision: it only shortens the ranked list.

No candidate at all (``N = 0``) is ``unknown`` with no threshold: nobody is there to
match. Without any calibration the answer is ``uncalibrated``: a bare cosine says
nothing about how often it is wrong.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from app.gallery.admitted import AdmittedCountCache
from app.gallery.calibrations import Calibrations, InForce, Source
from app.gallery.search import GallerySearch, IdentityMatch, QueryFilters
from app.gallery.store import AdmittedCounts, EntryStore
from model.evaluation.open_set import FPIR_TARGETS

Status = Literal["match", "unknown", "uncalibrated"]


@dataclass(frozen=True)
class Decision:
    status: Status
    identity: str | None  # set only for a match
    score: float | None  # the best identity's score, whatever the decision
    threshold: float | None  # the cosine the best score had to reach
    false_positive_rate: float | None  # what that threshold promises at this gallery size
    calibration: Source | None
    gallery_identities: int | None  # N, the effective gallery the threshold is for
    gallery_entries: int | None  # the entries those N identities hold


UNCALIBRATED = Decision("uncalibrated", None, None, None, None, None, None, None)

# GET /calibration's curve: FPIR from 50% down to 0.01%, geometrically spaced.
CURVE_RATES = tuple(float(rate) for rate in np.geomspace(0.5, 1e-4, 25))


@dataclass(frozen=True)
class OperatingPoint:
    false_positive_rate: float
    threshold: float


@dataclass(frozen=True)
class Overview:
    """The calibration in force, read for the whole gallery as it is now."""

    in_force: InForce | None
    model_version: str
    gallery_identities: int
    thresholds: list[OperatingPoint]  # at FPIR 10%, 1%, 0.1%
    curve: list[OperatingPoint]


class OpenSetDecider:
    def __init__(
        self, *, store: EntryStore, search: GallerySearch, calibrations: Calibrations
    ) -> None:
        self._store = store
        self._search = search
        self._calibrations = calibrations
        self._admitted = AdmittedCountCache(store)

    def in_force(self) -> InForce | None:
        return self._calibrations.in_force()

    def overview(self) -> Overview:
        """Thresholds and curve of the calibration in force at the current gallery size."""
        in_force = self.in_force()
        counts = self._admitted.counts()
        thresholds: list[OperatingPoint] = []
        curve: list[OperatingPoint] = []
        if in_force is not None and counts.identities > 0:
            calibration = in_force.calibration
            thresholds, curve = (
                [
                    OperatingPoint(
                        rate,
                        calibration.threshold_for(
                            rate, counts.identities, counts.entries_per_identity
                        ),
                    )
                    for rate in rates
                ]
                for rates in (FPIR_TARGETS, CURVE_RATES)
            )
        return Overview(in_force, self._store.model_version, counts.identities, thresholds, curve)

    def effective_gallery(self, filters: QueryFilters) -> AdmittedCounts:
        """How many identities, and entries, the filters leave a probe to be compared with."""
        return self._admitted.counts(
            exclude_camera=filters.camera if filters.exclude_same_camera else None,
            captured_after=filters.captured_after,
            captured_before=filters.captured_before,
        )

    def decide(
        self,
        query: np.ndarray,
        ranked: list[IdentityMatch],
        filters: QueryFilters,
        in_force: InForce,
        fpir: float,
        gallery: AdmittedCounts,
    ) -> Decision:
        """The decision for one probe, given its ranking and the effective gallery."""
        if gallery.identities == 0:
            return Decision("unknown", None, None, None, None, in_force.source, 0, 0)
        calibration = in_force.calibration
        size, entries = gallery.identities, gallery.entries_per_identity
        threshold = calibration.threshold_for(fpir, size, entries)
        promised = calibration.false_positive_rate(threshold, size, entries)
        best = ranked[0] if ranked else self._best_ignoring_min_score(query, filters)
        matched = best is not None and best.score >= threshold
        return Decision(
            status="match" if matched else "unknown",
            identity=best.identity if matched and best is not None else None,
            score=None if best is None else best.score,
            threshold=threshold,
            false_positive_rate=promised,
            calibration=in_force.source,
            gallery_identities=gallery.identities,
            gallery_entries=gallery.entries,
        )

    def _best_ignoring_min_score(
        self, query: np.ndarray, filters: QueryFilters
    ) -> IdentityMatch | None:
        """The best identity when ``min_score`` hid every result (one more, top-1 search).

        ``min_score`` may sit above the threshold, so an empty list does not mean
        ``unknown``; without ``min_score`` an empty list means nothing is left to find.
        """
        if filters.min_score is None:
            return None
        best = self._search.rank(query, 1, dataclasses.replace(filters, min_score=None))
        return best[0] if best else None
