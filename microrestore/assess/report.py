"""One assessment of a restoration (noise model, error, uncertainty, unsupported structure) and comparisons.

These functions take restorations as plain callables (:data:`~microrestore.assess.splitting.Restorer`), so they
need neither torch nor the plugins; :func:`microrestore.api.assess` and :func:`microrestore.api.compare` hand
them the registered methods.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from microrestore.assess.camera import CameraReport, camera_report
from microrestore.assess.hallucination import HallucinationMap, hallucination_map
from microrestore.assess.ranking import Ranking, rank
from microrestore.assess.splitting import STRENGTHS, ErrorEstimate, Restorer, estimate_error

__all__ = ["Assessment", "Comparison", "assess_restoration", "compare_restorations"]


@dataclass
class Assessment:
    """What :func:`assess_restoration` found about one method on one image.

    Attributes
    ----------
    method
        The method's name.
    camera
        The fitted camera and noise model.
    error
        The estimated error of the full-dose output (with its uncertainty map when asked for).
    unsupported
        Where the output departs from the data beyond the noise (hallucination map).
    seconds
        Time taken (the full restoration and the splits).
    """

    method: str
    camera: CameraReport
    error: ErrorEstimate
    unsupported: HallucinationMap
    seconds: float

    @property
    def output(self) -> np.ndarray:
        """The restoration of the full image."""
        return self.error.output

    @property
    def sigma(self) -> np.ndarray | None:
        """The per-pixel uncertainty map (input units), if built."""
        return self.error.sigma

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report: ``estimated_rmse``, ``psnr``, intervals, ``camera``, ``unsupported``..."""
        return {
            "method": self.method,
            **self.error.as_dict(),
            "unsupported": self.unsupported.as_dict(),
            "camera": self.camera.as_dict(),
            "seconds": self.seconds,
        }


@dataclass
class Comparison:
    """Several methods assessed on one image with shared splits, ranked.

    Attributes
    ----------
    assessments
        Method name to its assessment.
    ranking
        The methods by estimated error, with the recommendation and its confidence.
    skipped
        Method name to why it was not assessed (failed, or over the time budget).
    """

    assessments: dict[str, Assessment]
    ranking: Ranking | None
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready table: the methods in rank order, the recommendation, and what was skipped."""
        rows = [self.assessments[name].as_dict() for name in (self.ranking.order if self.ranking else ())]
        for i, row in enumerate(rows, 1):
            row.pop("camera")
            row["rank"] = i
        first = next(iter(self.assessments.values()), None)
        out: dict[str, Any] = {
            "camera": first.camera.as_dict() if first is not None else None,
            "methods": rows,
            "skipped": dict(self.skipped),
        }
        if self.ranking is not None:
            out["recommended"] = self.ranking.best
            out["confidence"] = self.ranking.confidence
            out["within_tolerance"] = self.ranking.within_tolerance
            out["tolerance_db"] = self.ranking.tolerance_db
            out["verdict"] = self.ranking.verdict
        return out


def assess_restoration(
    image: np.ndarray,
    restore: Restorer,
    method: str = "method",
    *,
    camera: CameraReport | None = None,
    repeats: int = 2,
    seed: int = 0,
    uncertainty: bool = True,
    output: np.ndarray | None = None,
) -> Assessment:
    """Fit the noise model, estimate the error of ``restore(image)`` and map unsupported structure.

    Parameters
    ----------
    image
        The noisy image in the camera's units (last two axes Y and X).
    restore
        The restoration (float32 array in, same shape and units out).
    method
        Name reported.
    camera
        The noise model (default: fitted from ``image``).
    repeats
        Random splits per strength (see :func:`~microrestore.assess.splitting.estimate_error`).
    seed
        Seed of the splits; share it between methods to compare them.
    uncertainty
        Build the per-pixel uncertainty map.
    output
        ``restore(image)`` when already computed.

    Returns
    -------
    Assessment
        The report.
    """
    start = time.perf_counter()
    camera = camera or camera_report(image)
    error = estimate_error(
        image, restore, camera=camera, repeats=repeats, seed=seed, uncertainty=uncertainty, output=output
    )
    unsupported = hallucination_map(image, error.output, camera)
    return Assessment(method, camera, error, unsupported, time.perf_counter() - start)


def compare_restorations(
    image: np.ndarray,
    restorers: Mapping[str, Callable[[], Restorer]],
    *,
    budget: float | None = None,
    repeats: int = 2,
    seed: int = 0,
    uncertainty: bool = True,
    on_method: Callable[[str], None] | None = None,
) -> Comparison:
    """Assess several methods on ``image`` with the same splits and rank them.

    Parameters
    ----------
    image
        The noisy image.
    restorers
        Method name to a factory of its restoration (called once; loading a model may fail or take time).
    budget
        Seconds for the whole comparison: a method whose full restoration, timed first, would take the rest of
        its assessment past the budget is skipped (with the reason). ``None``: no limit.
    repeats, seed, uncertainty
        As in :func:`assess_restoration` (the seed is shared: paired comparisons).
    on_method
        Called with each method's name before it runs.

    Returns
    -------
    Comparison
        The assessments, the ranking and the skipped methods.
    """
    start = time.perf_counter()
    camera = camera_report(image)
    done: dict[str, Assessment] = {}
    skipped: dict[str, str] = {}
    splits = len(STRENGTHS) * max(1, repeats)
    for name, factory in restorers.items():
        if on_method is not None:
            on_method(name)
        if budget is not None and time.perf_counter() - start >= budget:
            skipped[name] = f"time budget of {budget:g} s spent"
            continue
        try:
            restore = factory()
            t0 = time.perf_counter()
            output = np.asarray(restore(np.asarray(image, np.float32)), np.float32)
            took = time.perf_counter() - t0
            if budget is not None and time.perf_counter() - start + splits * took > budget:
                skipped[name] = f"needs about {splits * took:.0f} s more ({took:.1f} s a restoration); over the budget"
                continue
            done[name] = assess_restoration(
                image,
                restore,
                name,
                camera=camera,
                repeats=repeats,
                seed=seed,
                uncertainty=uncertainty,
                output=output,
            )
        except Exception as exc:  # one method failing on an input does not stop the comparison
            skipped[name] = " ".join(f"{type(exc).__name__}: {exc}".split())
    return Comparison(done, rank({n: a.error for n, a in done.items()}) if done else None, skipped)
