"""Ground-truth-free assessment: noise report, split error estimate, uncertainty, hallucination, ranking."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from microrestore.assess import (
    camera_report,
    estimate_error,
    hallucination_map,
    rank,
    split_pair,
    variance_map,
)
from microrestore.simulation import CameraModel, apply_camera, expected_counts, nuclei, tubules


def _field(photons: float, *, gain: float = 1.0, offset: float = 100.0, size: int = 96, seed: int = 3):
    """A noisy Poisson-Gaussian field and its noise-free expected counts."""
    rng = np.random.default_rng(seed)
    density = gaussian_filter(0.6 * tubules((size, size), rng) + 0.4 * nuclei((size, size), rng), 1.2)
    camera = CameraModel(photons=photons, offset=offset, gain=gain, read_noise=1.5)
    return apply_camera(density, camera, rng).astype(np.float64), np.asarray(expected_counts(density, camera), float)


def _blur(sigma: float):
    return lambda a: gaussian_filter(np.asarray(a, np.float64), sigma)


def test_camera_report_recovers_gain_and_photons() -> None:
    noisy, clean = _field(30.0, gain=2.0, offset=500.0, size=128)
    report = camera_report(noisy)
    assert report.gain == pytest.approx(2.0, rel=0.25)
    assert report.mean_variance == pytest.approx(np.mean((noisy - clean) ** 2), rel=0.12)
    assert report.photons_bright == pytest.approx(30.0, rel=0.5)
    assert report.fits in ("good", "fair")
    assert 0 < report.mean_variance_se < 0.1 * report.mean_variance
    assert report.as_dict()["fit"] == report.fits


def test_split_pair_noises_are_uncorrelated() -> None:
    rng = np.random.default_rng(0)
    var = np.full((256, 256), 4.0)
    y = 10.0 + rng.normal(0.0, 2.0, var.shape)
    y1, y2, _ = split_pair(y, var, 0.5, rng)
    n1, n2 = y1 - 10.0, y2 - 10.0
    assert abs(np.mean(n1 * n2)) < 0.1  # var 4 * (1 + a^2) and 4 * (1 + 1/a^2): correlation < 1 %
    assert np.var(n1) == pytest.approx(4.0 * 1.25, rel=0.03)
    assert np.var(n2) == pytest.approx(4.0 * 5.0, rel=0.03)
    with pytest.raises(ValueError):
        split_pair(y, var, 0.0, rng)


@pytest.mark.parametrize(("method", "sigma", "tol"), [("identity", 0.0, 0.05), ("gauss1", 1.0, 0.2)])
def test_estimate_tracks_true_rmse_of_full_dose_output(method: str, sigma: float, tol: float) -> None:
    noisy, clean = _field(20.0)
    restore = (lambda a: np.asarray(a, np.float64)) if sigma == 0 else _blur(sigma)
    est = estimate_error(noisy, restore, repeats=2, seed=1)
    true = float(np.sqrt(np.mean((restore(noisy) - clean) ** 2)))
    assert est.estimated_rmse == pytest.approx(true, rel=tol)
    assert est.rmse_interval[0] <= est.estimated_rmse <= est.rmse_interval[1]
    assert est.psnr_interval[0] <= est.psnr <= est.psnr_interval[1]
    if method == "identity":  # the identity's error is the noise: MSE proportional to the noise variance
        assert est.exponent == pytest.approx(1.0, abs=0.15)
    assert set(est.as_dict()) >= {"estimated_rmse", "rmse_interval", "psnr", "psnr_interval", "per_strength"}


def test_uncertainty_map_is_calibrated_for_a_smoother() -> None:
    noisy, clean = _field(10.0, size=128)
    est = estimate_error(noisy, _blur(1.0), repeats=2, seed=2)
    assert est.sigma is not None and est.sigma.shape == noisy.shape
    err = np.abs(est.output - clean)
    assert 0.58 <= np.mean(err <= est.sigma) <= 0.78
    assert 0.88 <= np.mean(err <= 2 * est.sigma) <= 0.99
    # self-calibrated: mean sigma^2 is the estimated MSE
    assert np.mean(est.sigma.astype(float) ** 2) == pytest.approx(est.estimated_rmse**2, rel=0.01)


def test_hallucination_map_flags_added_structure_only() -> None:
    noisy, clean = _field(30.0, size=96)
    model = camera_report(noisy)
    faithful = hallucination_map(noisy, clean, model)
    assert faithful.added < 0.005
    fake = clean.copy()
    fake[40:50, 40:50] += 6.0 * np.sqrt(variance_map(noisy, model).mean())
    flagged = hallucination_map(noisy, fake, model)
    assert flagged.added > 0.005
    assert flagged.mask[45, 45] and not flagged.mask[5, 5]
    with pytest.raises(ValueError, match="differs"):
        hallucination_map(noisy, clean[:10], model)


def test_rank_prefers_the_smaller_error_with_confidence() -> None:
    noisy, _ = _field(10.0)
    camera = camera_report(noisy)
    estimates = {
        name: estimate_error(noisy, f, camera=camera, seed=5, uncertainty=False)
        for name, f in {"identity": lambda a: np.asarray(a, float), "gauss1": _blur(1.0)}.items()
    }
    ranking = rank(estimates)
    assert ranking.order == ("gauss1", "identity")
    assert ranking.confidence > 0.9 and ranking.verdict == "clear"
    with pytest.raises(ValueError):
        rank({})


def test_compare_restorations_skips_failing_and_over_budget_methods() -> None:
    from microrestore.assess import compare_restorations

    noisy, _ = _field(10.0, size=64)

    def broken():
        raise RuntimeError("no model\nhere")

    found = compare_restorations(noisy, {"gauss1": lambda: _blur(1.0), "broken": broken}, repeats=1)
    assert list(found.assessments) == ["gauss1"] and found.ranking is not None and found.ranking.best == "gauss1"
    assert found.skipped["broken"] == "RuntimeError: no model here"
    report = found.as_dict()
    assert report["recommended"] == "gauss1" and report["methods"][0]["rank"] == 1 and report["camera"]["gain"] > 0
    late = compare_restorations(noisy, {"gauss1": lambda: _blur(1.0)}, budget=1e-9)
    assert late.ranking is None and "budget" in late.skipped["gauss1"]
