"""Metrics against scikit-image's reference implementations, sanity cases, and the evaluation figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from microrestore import metrics
from microrestore.errors import InputError
from microrestore.metrics import quality
from microrestore.metrics.figure import figure_size

SHAPES = [(64, 80), (11, 11), (23, 31, 40), (12, 12, 12)]


def _pair(shape: tuple[int, ...], seed: int = 0, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.random(shape) + offset
    pred = gt + 0.15 * rng.standard_normal(shape) + 0.05
    return pred, gt


def _sk_ssim(pred: np.ndarray, gt: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        gt, pred, data_range=data_range, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_metrics_match_skimage(shape: tuple[int, ...]) -> None:
    pred, gt = _pair(shape)
    dr = float(gt.max() - gt.min())
    assert metrics.psnr(pred, gt) == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=dr), rel=1e-6)
    assert metrics.ssim(pred, gt) == pytest.approx(_sk_ssim(pred, gt, dr), rel=1e-6)
    assert metrics.nrmse(pred, gt) == pytest.approx(normalized_root_mse(gt, pred, normalization="min-max"), rel=1e-6)
    assert metrics.pcc(pred, gt) == pytest.approx(np.corrcoef(pred.ravel(), gt.ravel())[0, 1], rel=1e-6)


@pytest.mark.parametrize("data_range", [1.0, 3.5])
def test_explicit_data_range_and_integer_inputs(data_range: float) -> None:
    rng = np.random.default_rng(1)
    gt = rng.integers(100, 400, size=(40, 50)).astype(np.uint16)
    pred = (gt + rng.integers(0, 20, size=gt.shape)).astype(np.uint16)
    ref_psnr = peak_signal_noise_ratio(gt.astype(float), pred.astype(float), data_range=data_range)
    ref_ssim = _sk_ssim(pred.astype(float), gt.astype(float), data_range)
    assert metrics.psnr(pred, gt, data_range) == pytest.approx(ref_psnr, rel=1e-6)
    assert metrics.ssim(pred, gt, data_range) == pytest.approx(ref_ssim, rel=1e-6)


def test_large_offset_stays_accurate() -> None:
    # Camera counts sit on an offset; SSIM's variances are computed on shifted data, so nothing cancels.
    pred, gt = _pair((48, 48), seed=3, offset=1000.0)
    dr = float(gt.max() - gt.min())
    assert metrics.ssim(pred, gt) == pytest.approx(_sk_ssim(pred, gt, dr), rel=1e-6)


@pytest.mark.parametrize("shape", [(50, 37), (20, 24, 30)])
def test_streaming_in_blocks_gives_the_same_numbers(monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...]) -> None:
    pred, gt = _pair(shape, seed=5)
    whole = metrics.evaluate(pred, gt)
    monkeypatch.setattr(quality, "_BLOCK_ELEMENTS", 100)  # one row (or plane) per block
    blocked = metrics.evaluate(pred, gt)
    for key, value in whole.items():
        assert blocked[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key


def test_memmap_inputs(tmp_path: Path) -> None:
    pred, gt = _pair((30, 40), seed=2)
    mm = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.float32, shape=pred.shape)
    mm[:] = pred
    mm.flush()
    ref = metrics.evaluate(pred.astype(np.float32), gt)
    got = metrics.evaluate(np.load(tmp_path / "p.npy", mmap_mode="r"), gt)
    assert got == pytest.approx(ref)


def test_identical_images_are_perfect() -> None:
    _, gt = _pair((32, 32))
    values = metrics.evaluate(gt.copy(), gt)
    assert values["psnr"] == math.inf
    assert values["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert values["pcc"] == pytest.approx(1.0, abs=1e-12)
    assert values["nrmse"] == 0.0
    assert values["affine_scale"] == pytest.approx(1.0)
    assert values["affine_offset"] == pytest.approx(0.0, abs=1e-12)


def test_affine_copy_is_perfect_after_the_fit() -> None:
    _, gt = _pair((40, 40, 16), seed=4)
    pred = 3.7 * gt - 12.0
    scale, offset = metrics.affine_fit(pred, gt)
    assert scale == pytest.approx(1 / 3.7)
    assert offset == pytest.approx(12.0 / 3.7)
    values = metrics.evaluate(pred, gt)
    assert values["psnr"] < 0  # raw: far off
    assert values["psnr_affine"] > 200
    assert values["ssim_affine"] == pytest.approx(1.0, abs=1e-9)
    assert values["pcc_affine"] == pytest.approx(1.0, abs=1e-12)
    assert values["nrmse_affine"] < 1e-10


def test_affine_fit_matches_polyfit() -> None:
    pred, gt = _pair((30, 30), seed=8)
    scale, offset = metrics.affine_fit(pred, gt)
    ref_scale, ref_offset = np.polyfit(pred.ravel(), gt.ravel(), 1)
    assert (scale, offset) == pytest.approx((ref_scale, ref_offset), rel=1e-9)
    assert metrics.affine_fit(np.full((5, 5), 2.0), gt[:5, :5]) == pytest.approx((0.0, gt[:5, :5].mean()))


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(0.01, 100.0),
    offset=st.floats(-1000.0, 1000.0),
    seed=st.integers(0, 2**16),
)
def test_affine_metrics_ignore_the_predictions_scale(scale: float, offset: float, seed: int) -> None:
    pred, gt = _pair((16, 16), seed=seed)
    a = metrics.evaluate(pred, gt)
    b = metrics.evaluate(pred * scale + offset, gt)
    for key in ("psnr_affine", "ssim_affine", "pcc_affine", "nrmse_affine"):
        assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key
    assert -1.0 <= b["pcc"] <= 1.0


def test_evaluate_keys_and_small_images() -> None:
    pred, gt = _pair((8, 40))
    values = metrics.evaluate(pred, gt)
    assert set(values) == {
        "psnr",
        "ssim",
        "pcc",
        "nrmse",
        "psnr_affine",
        "ssim_affine",
        "pcc_affine",
        "nrmse_affine",
        "affine_scale",
        "affine_offset",
    }
    assert math.isnan(values["ssim"])  # 8 rows: smaller than the 11-pixel window
    with pytest.raises(InputError, match="at least 11"):
        metrics.ssim(pred, gt)


def test_constant_ground_truth_with_explicit_range() -> None:
    values = metrics.evaluate(np.full((12, 12), 3.0), np.full((12, 12), 2.0), data_range=1.0)
    assert values["psnr"] == pytest.approx(0.0)
    assert math.isnan(values["nrmse"]) and math.isnan(values["pcc"])
    assert values["psnr_affine"] == math.inf


def test_constant_prediction_has_undefined_pcc() -> None:
    _, gt = _pair((20, 20))
    assert math.isnan(metrics.pcc(np.ones_like(gt), gt))


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (np.zeros((4, 5)), np.zeros((5, 4)), "does not match"),
        (np.full((4, 4), np.nan), np.ones((4, 4)), "NaN"),
        (np.ones((4, 4)), np.array([[np.inf] * 4] * 4), "NaN or infinite"),
        (np.ones((4, 4)), np.ones((4, 4)), "constant"),
        (np.zeros(0), np.zeros(0), "empty"),
    ],
)
def test_input_errors(pred: np.ndarray, gt: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        metrics.psnr(pred, gt)
    assert "\n" not in str(info.value)


def test_bad_data_range() -> None:
    pred, gt = _pair((16, 16))
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(InputError, match="data_range"):
            metrics.psnr(pred, gt, bad)
        with pytest.raises(InputError, match="data_range"):
            metrics.ssim(pred, gt, bad)


def test_saturation_count() -> None:
    a = np.zeros((10, 10), np.uint16)
    a[0, :3] = 65535
    assert metrics.saturation_count(a) == 3
    assert metrics.saturation_count(a, np.uint16) == 3
    f = np.array([1.0, 65534.4, 65534.6, 70000.0, -5.0])
    assert metrics.saturation_count(f, "uint16") == 2  # 65534.6 rounds to 65535; the negative is not "saturated"
    s = np.array([-32768, 0, 32767, 5], np.int16)
    assert metrics.saturation_count(s) == 2
    assert metrics.saturation_count(np.array([1.0, np.inf]), np.float32) == 1
    with pytest.raises(InputError, match="NaN"):
        metrics.saturation_count(np.array([np.nan]), np.uint16)


# ----------------------------------------------------------------------------------------------------------
# Figure
# ----------------------------------------------------------------------------------------------------------


def _images(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    gt = 100 + 500 * np.exp(-((yy - shape[0] / 3) ** 2 + (xx - shape[1] / 2) ** 2) / 50.0)
    noisy = rng.poisson(gt).astype(np.uint16)
    pred = np.clip(gt * 1.05, 0, 65535).astype(np.uint16)
    return noisy, pred, gt.astype(np.float32)


@pytest.mark.parametrize(("shape", "with_input"), [((96, 96), True), ((64, 160), False), ((150, 60), True)])
def test_evaluation_figure_writes_a_png(tmp_path: Path, shape: tuple[int, int], with_input: bool) -> None:
    import matplotlib.image as mpimg

    noisy, pred, gt = _images(shape)
    out = metrics.evaluation_figure(tmp_path / "fig.png", pred, gt, noisy if with_input else None, title="test", dpi=50)
    assert out == tmp_path / "fig.png"
    assert out.stat().st_size > 1000
    img = mpimg.imread(out)
    width, height = figure_size(shape, (max(8, min(shape) // 4),) * 2, 3 if with_input else 2, title=True)
    assert img.shape[1] == pytest.approx(width * 50, abs=2)
    assert img.shape[0] == pytest.approx(height * 50, abs=2)
    assert img[..., :3].std() > 0.05  # not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]  # no temporary file left behind


def test_evaluation_figure_zoom_and_errors(tmp_path: Path) -> None:
    _noisy, pred, gt = _images((64, 64))
    metrics.evaluation_figure(tmp_path / "a.png", pred, gt, zoom=(10, 20, 16, 24), dpi=40)
    metrics.evaluation_figure(tmp_path / "b.png", pred, gt, zoom=20, dpi=40)
    with pytest.raises(InputError, match="does not fit"):
        metrics.evaluation_figure(tmp_path / "c.png", pred, gt, zoom=(60, 60, 16, 16))
    with pytest.raises(InputError, match="middle_plane"):
        metrics.evaluation_figure(tmp_path / "c.png", np.stack([pred, pred]), np.stack([gt, gt]))
    with pytest.raises(InputError, match="does not match"):
        metrics.evaluation_figure(tmp_path / "c.png", pred[:-1], gt)
    with pytest.raises(InputError, match="NaN"):
        metrics.evaluation_figure(tmp_path / "c.png", np.full(gt.shape, np.nan), gt)
    with pytest.raises(InputError, match="does not exist"):
        metrics.evaluation_figure(tmp_path / "missing" / "c.png", pred, gt)
    assert not (tmp_path / "c.png").exists()


def test_auto_zoom_finds_the_textured_region() -> None:
    _, _, gt = _images((64, 64))
    y, x, h, w = metrics.figure._zoom_box(gt, None)
    assert y <= 64 / 3 <= y + h and x <= 32 <= x + w  # the bright spot, not flat background


def test_figure_legend_reports_saturated_pixels() -> None:
    noisy, pred, gt = _images((48, 48))
    pred[:2, :5] = 65535
    fig = metrics.draw_evaluation_figure(pred, gt, noisy)
    legend = fig.axes[-1].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["input", "prediction (10 pixels saturated at 65535)", "ground truth"]  # only where there are
    assert fig.axes[-1].get_yscale() == "log"
    # the zoom box is drawn on each full view, which all share the ground truth's display range
    full_views = fig.axes[0:6:2]
    assert all(len(ax.patches) == 1 for ax in full_views)
    limits = {ax.images[0].get_clim() for ax in fig.axes[:6]}
    assert len(limits) == 1


def test_middle_plane() -> None:
    a = np.arange(3 * 5 * 4 * 6).reshape(3, 5, 4, 6)
    assert np.array_equal(metrics.middle_plane(a, "TZYX"), a[1, 2])
    assert np.array_equal(metrics.middle_plane(a[0, 0], "yx"), a[0, 0])
    assert np.array_equal(metrics.middle_plane(a[0, 0], "XY"), a[0, 0].T)
    with pytest.raises(InputError, match="do not describe"):
        metrics.middle_plane(a, "ZYX")
    with pytest.raises(InputError, match="must contain"):
        metrics.middle_plane(a[0], "TZY")
