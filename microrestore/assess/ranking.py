"""Rank restorations of one image by their estimated error, and say how sure the ranking is.

Methods assessed with the same seed, strengths and repeats share their random splits and their bootstrap
resamples (:func:`~microrestore.assess.splitting.estimate_error`), so the replicates are paired: in each
replicate every method's error is re-estimated on the same resampled splits and the same noise-model shift.
The confidence of the recommendation is the share of replicates in which it is the best, and the share in
which it is within ``tolerance_db`` of the best.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from microrestore.assess.splitting import ErrorEstimate

__all__ = ["Ranking", "rank"]


@dataclass(frozen=True)
class Ranking:
    """Methods from the lowest estimated error to the highest.

    Attributes
    ----------
    order
        Method names, best first.
    best
        The recommended method (``order[0]``).
    confidence
        Share of paired bootstrap replicates in which ``best`` has the lowest error.
    within_tolerance
        Share of replicates in which ``best`` is within ``tolerance_db`` of the lowest error.
    tolerance_db
        The tolerance in dB of PSNR.
    """

    order: tuple[str, ...]
    best: str
    confidence: float
    within_tolerance: float
    tolerance_db: float

    @property
    def verdict(self) -> str:
        """``clear`` (confidence >= 0.9), ``likely`` (>= 0.6) or ``uncertain``."""
        return "clear" if self.confidence >= 0.9 else "likely" if self.confidence >= 0.6 else "uncertain"


def rank(estimates: Mapping[str, ErrorEstimate], *, tolerance_db: float = 0.5) -> Ranking:
    """Rank ``estimates`` by estimated RMSE; confidence from their paired bootstrap replicates.

    Parameters
    ----------
    estimates
        Method name to its :class:`~microrestore.assess.splitting.ErrorEstimate` (same seed and splits).
    tolerance_db
        PSNR difference counted as a tie for :attr:`Ranking.within_tolerance`.

    Returns
    -------
    Ranking
        The order, the recommendation and how sure it is.
    """
    if not estimates:
        raise ValueError("nothing to rank")
    names = sorted(estimates, key=lambda n: estimates[n].estimated_rmse)
    best = names[0]
    counts = {len(e.replicates) for e in estimates.values()}
    if len(names) == 1 or len(counts) != 1:
        return Ranking(tuple(names), best, 1.0 if len(names) == 1 else float("nan"), 1.0, tolerance_db)
    reps = np.stack([np.maximum(estimates[n].replicates, 1e-300) for n in names])
    lowest = reps.min(axis=0)
    confidence = float(np.mean(reps[0] <= lowest))
    within = float(np.mean(10.0 * np.log10(reps[0] / lowest) <= tolerance_db))
    return Ranking(tuple(names), best, confidence, within, tolerance_db)
