"""Does the model fit the data's illumination pattern? rDL-SIM models learn one pattern period.

The rDL denoiser is trained on frames and pattern-modulated images of one pattern frequency (the training
configuration's ``2 NA_exc / lambda_exc``). On data with another period it sees patterns it never learnt, and
without optics from the user the parameter estimation searches around the model's frequency and misses the
data's. :func:`measure_pattern_k` finds the data's frequency by trying the user's nominal value and every
rdl-sim model's in the zoo; :func:`pattern_advice` compares it with the model's and names a model that fits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from microrestore.structured_illumination.options import SIMOptions

__all__ = ["PATTERN_TOLERANCE", "PatternAdvice", "SIMPatternWarning", "measure_pattern_k", "pattern_advice"]

#: Relative difference of pattern frequencies above which a model does not fit the data.
PATTERN_TOLERANCE = 0.05


class SIMPatternWarning(UserWarning):
    """The model was trained on another illumination pattern period than the data's."""


def config_k_per_um(config: dict[str, Any]) -> float | None:
    """``2 NA_exc / lambda_exc`` (per um) of a configuration dict (excitation optics default to detection)."""
    na = config.get("na_exc") or config.get("na")
    lam = config.get("wavelength_exc_nm") or config.get("wavelength_nm")
    if not na or not lam:
        return None
    return 2.0 * float(na) / (float(lam) / 1000.0)


def zoo_patterns(method: str = "rdl-sim") -> dict[str, float]:
    """Pattern frequency (per um) of every zoo model of ``method``, from its recipe's training configuration."""
    from microrestore.zoo import entries

    found = {}
    for name, entry in entries().items():
        if entry.method != method:
            continue
        k = config_k_per_um(((entry.recipe or {}).get("train") or {}).get("config") or {})
        if k is not None:
            found[name] = k
    return found


def measure_pattern_k(
    stacks: torch.Tensor, settings: SIMOptions, pixel_size_nm: float, candidates: list[float]
) -> float | None:
    """The data's pattern frequency (per um), searched around each candidate nominal frequency.

    For each candidate the illumination parameters are estimated (warnings silenced); the candidate whose
    search fits the most orientations (then the most significant peaks) wins, and the mean fitted ``|k|`` of
    those orientations is the data's frequency. ``None`` when no search fits any orientation.
    """
    from microrestore.structured_illumination.estimate import estimate_params
    from microrestore.structured_illumination.otf import load_otf

    otf = load_otf(settings, pixel_size_nm)
    best: tuple[int, float, float] | None = None
    px_um = pixel_size_nm / 1000.0
    for k in sorted(set(round(c, 6) for c in candidates)):
        if not 0 < k * px_um < 0.5:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = estimate_params(
                stacks.mean(dim=0) if stacks.dim() == 5 else stacks,
                otf,
                pixel_size_nm,
                k,
                settings.estimation,
                equalize=settings.equalize,
                border_px=settings.border_px,
            )
        fitted = [o for o in params.orientations if "k" not in o.fallback]
        if not fitted:
            continue
        score = (len(fitted), sum(o.quality.get("peak_significance", 0.0) for o in fitted))
        if best is None or score > best[:2]:
            best = (*score, sum(o.k_per_um(pixel_size_nm) for o in fitted) / len(fitted))
    return None if best is None else best[2]


@dataclass(frozen=True)
class PatternAdvice:
    """What to do about a model whose pattern period differs from the data's.

    Attributes
    ----------
    message
        The warning text.
    use
        The zoo model to use instead (only when the user did not name a model), else ``None``.
    """

    message: str
    use: str | None


def pattern_advice(
    data_k: float, model_k: float, model: str, named: bool, zoo: dict[str, float]
) -> PatternAdvice | None:
    """``None`` when the model's pattern frequency fits the data's, else the warning and any model to switch to."""
    if abs(model_k / data_k - 1) <= PATTERN_TOLERANCE:
        return None
    fitting = sorted((abs(k / data_k - 1), name) for name, k in zoo.items() if abs(k / data_k - 1) <= PATTERN_TOLERANCE)
    period, trained = 1000.0 / data_k, 1000.0 / model_k
    head = (
        f"the data's illumination pattern has a period of {period:.0f} nm; model {model} was trained on "
        f"{trained:.0f} nm"
    )
    if fitting:
        other = fitting[0][1]
        other_period = 1000.0 / zoo[other]
        if not named:
            return PatternAdvice(
                f"{head}: using {other} instead (trained on {other_period:.0f} nm); --model chooses another", other
            )
        return PatternAdvice(
            f"{head}, so its denoiser sees patterns it never learnt: {other} (trained on {other_period:.0f} nm) "
            f"fits, --model {other}",
            None,
        )
    return PatternAdvice(
        f"{head}, so its denoiser sees patterns it never learnt, and no installed model fits: train one on your "
        "pattern (microrestore train rdl-sim, docs/methods/rdl-sim.md), or reconstruct with --method wiener",
        None,
    )
