"""``evaluate --figure`` and the demo figure: shown as scored, titled with the method and its scores, a
labelled display range, comb-free histograms of integer data, saturation only when there is any."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore import metrics
from microrestore.errors import InputError
from microrestore.metrics.figure import histogram_edges


def _field(shape: tuple[int, int] = (64, 64)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    gt = 200 + 3000 * np.exp(-((yy - 30) ** 2 + (xx - 25) ** 2) / 60.0) + 800 * (np.sin(xx / 3) > 0.8)
    noisy = rng.poisson(gt).astype(np.uint16)
    dim = (0.4 * gt + 50).astype(np.uint16)  # right up to its intensity scale
    return noisy, dim, gt.astype(np.float32)


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.texts)


def test_panels_are_shown_as_scored_and_the_title_gives_method_and_scores() -> None:
    noisy, dim, gt = _field()
    fig = metrics.draw_evaluation_figure({"care": dim}, gt, noisy, title="care vs truth.tif")
    full = fig.axes[2]  # input full, input zoom, then care
    scale, offset = metrics.affine_fit(dim, gt)
    np.testing.assert_allclose(np.asarray(full.images[0].get_array()), dim * scale + offset, rtol=1e-6)
    assert "fitted" in full.get_title() and full.get_title().startswith("care")
    scores = metrics.evaluate(dim, gt)
    text = _texts(fig)
    assert "care vs truth.tif" in text
    assert f"care: PSNR {scores['psnr_affine']:.2f} dB, SSIM {scores['ssim_affine']:.3f}" in text
    assert "input: PSNR" in text and "affine fit" in text
    # raw panels on request, with the raw scores
    raw = metrics.draw_evaluation_figure({"care": dim}, gt, noisy, title="t", fit="none")
    np.testing.assert_array_equal(np.asarray(raw.axes[2].images[0].get_array()), dim)
    assert f"PSNR {scores['psnr']:.2f} dB" in _texts(raw)
    with pytest.raises(InputError, match="fit must be"):
        metrics.draw_evaluation_figure(dim, gt, fit="log")  # type: ignore[arg-type]


def test_display_range_is_a_labelled_colour_bar() -> None:
    noisy, dim, gt = _field()
    fig = metrics.draw_evaluation_figure(dim, gt, noisy)
    bar = fig.axes[-2]
    label = bar.get_xlabel()
    lo, hi = np.percentile(gt, [0.5, 99.8])
    assert "display range" in label and f"{lo:.4g}" in label and f"{hi:.4g}" in label


def test_integer_histograms_have_no_comb() -> None:
    rng = np.random.default_rng(0)
    counts = rng.integers(100, 5000, size=(128, 128)).astype(np.uint16)  # flat over 4900 values, 256 bins
    edges = histogram_edges(counts, 256)
    hist, _ = np.histogram(counts, bins=edges)
    widths = np.diff(edges)
    assert np.all(widths == widths[0]) and widths[0] == round(widths[0])  # whole counts per bin
    assert np.allclose(edges % 1, 0.5)  # bins centred on the values
    inner = hist[1:-1] / widths[0]
    assert inner.std() / inner.mean() < 0.25  # flat data, flat histogram (a linspace comb gives 0.5 and more)
    stepped = (counts // 20 * 20).astype(np.uint16)  # counts stored as multiples of 20
    edges = histogram_edges(stepped, 256)
    assert np.diff(edges)[0] % 20 == 0
    hist, _ = np.histogram(stepped, bins=edges)
    assert hist[1:-1].min() > 0  # no empty bins between the occupied values
    floats = histogram_edges(rng.random((32, 32)).astype(np.float32), 64)
    assert len(floats) == 65


def test_saturation_is_noted_only_when_there_is_any(tmp_path: Path) -> None:
    noisy, dim, gt = _field()
    fig = metrics.draw_evaluation_figure(dim, gt, noisy)
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert legend == ["input", "prediction", "ground truth"]
    assert not any("saturated" in t for t in legend)


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The arguments of the last ``metrics.evaluation_figure`` call (which still draws the figure)."""
    found: dict = {}
    real = metrics.evaluation_figure

    def spy(path, pred, gt, **kwargs):
        found.update(pred=pred, **kwargs)
        return real(path, pred, gt, **kwargs)

    monkeypatch.setattr(metrics, "evaluation_figure", spy)
    return found


def test_evaluate_figure_cli_labels_the_method(cli, tmp_path: Path, seen: dict) -> None:
    noisy, dim, gt = _field()
    for name, array in (("in.tif", noisy), ("out.tif", dim), ("truth.tif", gt)):
        tifffile.imwrite(tmp_path / name, array)
    args = ("evaluate", tmp_path / "out.tif", tmp_path / "truth.tif", "--input", tmp_path / "in.tif")
    result = cli(*args, "--figure", tmp_path / "fig.png", "--label", "care")
    assert result.exit_code == 0, result.output
    assert list(seen["pred"]) == ["care"] and seen["title"].startswith("care vs truth.tif")
    assert seen["fit"] == "affine" and set(seen["scores"]) == {"care", "input"}
    assert (tmp_path / "fig.png").stat().st_size > 1000
    result = cli(*args, "--figure", tmp_path / "fig2.png", "--figure-fit", "log")
    assert result.exit_code == 2 and "--figure-fit" in result.stderr and not (tmp_path / "fig2.png").exists()


def test_demo_figure_shows_every_method_it_ran(cli, tmp_path: Path, seen: dict) -> None:
    from microrestore.cli import demo

    result = cli("demo", "-o", tmp_path / "demo", "--device", "cpu")
    assert result.exit_code == 0, result.output
    names = list(seen["pred"])
    assert names[0] == demo.DEMO_METHOD and any(n.startswith(demo.BASELINE_METHOD) for n in names)
    assert set(seen["scores"]) == {*names, "input"}
