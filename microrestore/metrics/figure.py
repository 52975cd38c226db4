"""Evaluation figure: input, predictions and ground truth side by side, zoomed crops and intensity histograms.

The layout follows Fig. 2b of the c²GAN paper: the same display range for every panel (from the ground
truth's 0.5 and 99.8 percentiles, drawn as a labelled colour bar), a zoomed crop of a detailed region, and
histograms on a log scale. The panels are shown as they are scored: with ``fit="affine"`` (the default) each
prediction and the input are mapped by their least-squares affine fit onto the ground truth (CARE's
convention, the ``*_affine`` scores of :func:`~microrestore.metrics.evaluate`), so a prediction that is
right up to its intensity scale does not look dim; the title gives each method's scores. Histograms of
integer images are binned on whole numbers of counts (mapped through the fit), so they show no comb, and are
normalised by the bin width (pixels per unit intensity) so that images binned differently compare. A
legend entry notes saturated pixels only when there are any. matplotlib is imported inside the drawing
function only, and the figure is drawn with the Agg canvas directly, so the caller's pyplot backend and state
are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy import ndimage

from microrestore.errors import InputError
from microrestore.metrics.quality import affine_fit, evaluate, saturation_count

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_evaluation_figure", "evaluation_figure", "figure_size", "middle_plane"]

_PANEL_IN = 3.0  # width of one image panel, inches
_GAP_IN = 0.15
_MARGIN_IN = 0.35
_TITLE_IN = 0.75  # two lines: the title, then the scores
_LABEL_IN = 0.3  # room above each image panel for its label
_HIST_RATIO = 0.75  # histogram height relative to a panel's width
_HIST_LABEL_IN = 0.5  # room below the histogram for its axis label
_CBAR_IN = 0.6  # the colour bar of the display range and its label


def middle_plane(array: ArrayLike, axes: str) -> np.ndarray:
    """Return the middle ``YX`` plane of an image with any number of extra axes.

    Parameters
    ----------
    array : array_like
        The image, e.g. a ``ZYX`` stack or a ``TCZYX`` hyperstack.
    axes : str
        One letter per dimension of ``array`` (from ``TCZYXS``), containing ``Y`` and ``X``.

    Returns
    -------
    numpy.ndarray
        The 2D plane in ``(Y, X)`` order, taken at the middle index (``n // 2``) of every other axis.

    Raises
    ------
    InputError
        When ``axes`` does not describe ``array``.
    """
    arr = np.asarray(array)
    axes = axes.upper()
    if len(axes) != arr.ndim or len(set(axes)) != len(axes):
        raise InputError(f"axes {axes!r} do not describe an array of shape {arr.shape}")
    if "Y" not in axes or "X" not in axes:
        raise InputError(f"axes {axes!r} must contain Y and X")
    index = tuple(slice(None) if a in "YX" else n // 2 for a, n in zip(axes, arr.shape, strict=True))
    plane = arr[index]
    rest = [a for a in axes if a in "YX"]
    return plane if rest == ["Y", "X"] else plane.T


def _as_image(a: ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2D image, got shape {arr.shape}; pass middle_plane(array, axes) for stacks")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must be a real numeric image, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return arr


def _zoom_box(gt: np.ndarray, zoom: int | tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """``(y, x, height, width)`` of the zoom crop: given, or the most textured square of ``gt``."""
    h, w = gt.shape
    if isinstance(zoom, tuple | list):
        if len(zoom) != 4:
            raise InputError(f"zoom must be (y, x, height, width), got {zoom!r}")
        y, x, zh, zw = (int(v) for v in zoom)
        if zh < 2 or zw < 2 or y < 0 or x < 0 or y + zh > h or x + zw > w:
            raise InputError(f"zoom box {zoom!r} does not fit in an image of shape {gt.shape}")
        return y, x, zh, zw
    size = max(8, min(h, w) // 4) if zoom is None else int(zoom)
    if size < 2 or size > min(h, w):
        raise InputError(f"zoom size {size} must be between 2 and the image's smaller side {min(h, w)}")
    g = gt.astype(np.float64)
    mean = ndimage.uniform_filter(g, size, mode="nearest")
    var = ndimage.uniform_filter(g * g, size, mode="nearest") - mean * mean
    # uniform_filter centres a window of even size at index (size // 2); keep crops inside the image.
    c = size // 2
    valid = var[c : h - size + c + 1, c : w - size + c + 1]
    iy, ix = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(iy), int(ix), size, size


def _panel_ratio(shape_yx: tuple[int, ...]) -> float:
    """Height over width of a panel showing an image of ``shape_yx``, kept within [0.3, 3]."""
    return min(3.0, max(0.3, shape_yx[0] / shape_yx[1]))


def figure_size(
    shape_yx: tuple[int, int], zoom_shape: tuple[int, int], n_images: int = 3, title: bool = False
) -> tuple[float, float]:
    """Size in inches of the figure that :func:`evaluation_figure` draws.

    Parameters
    ----------
    shape_yx : tuple of int
        Shape of the images.
    zoom_shape : tuple of int
        ``(height, width)`` of the zoom crop.
    n_images : int
        Number of image columns: the predictions, the ground truth and, when given, the input.
    title : bool
        Whether the title lines (title and scores) are drawn.

    Returns
    -------
    tuple of float
        ``(width, height)``.
    """
    r_full = _panel_ratio(shape_yx)
    r_zoom = _panel_ratio(zoom_shape)
    width = 2 * _MARGIN_IN + n_images * _PANEL_IN + (n_images - 1) * _GAP_IN
    height = (
        2 * _MARGIN_IN
        + (_TITLE_IN if title else 0.0)
        + 2 * _LABEL_IN
        + _PANEL_IN * (r_full + r_zoom + _HIST_RATIO)
        + 2 * _GAP_IN
        + _CBAR_IN
        + _HIST_LABEL_IN
    )
    return width, height


Predictions = ArrayLike | Mapping[str, ArrayLike]


def evaluation_figure(
    path: str | Path,
    pred: Predictions,
    gt: ArrayLike,
    input: ArrayLike | None = None,
    *,
    title: str | None = None,
    zoom: int | tuple[int, int, int, int] | None = None,
    bins: int = 256,
    cmap: str = "gray",
    saturation_dtype: DTypeLike | None = None,
    fit: Literal["affine", "none"] = "affine",
    scores: Mapping[str, Mapping[str, float]] | None = None,
    dpi: int = 100,
) -> Path:
    """Write a PNG comparing the input, one or more predictions and the ground truth.

    Parameters
    ----------
    path : str or Path
        Output PNG; written under a temporary name and renamed into place.
    pred : array_like or mapping of str to array_like
        The prediction, or several by name (e.g. ``{"care": a, "nl-means": b}``), each a column; 2D and of
        the ground truth's shape (use :func:`middle_plane` for stacks).
    gt : array_like
        Ground truth.
    input : array_like, optional
        The degraded input, same shape; its column is left out when not given.
    title : str, optional
        The first line above the panels (e.g. the method); the scores follow on a second line. ``None``:
        neither line is drawn.
    zoom : int or tuple of int, optional
        The zoom crop: ``(y, x, height, width)``, or a square size placed automatically on the ground
        truth's most textured region (highest local variance); default a quarter of the smaller side.
    bins : int
        Largest number of histogram bins per image (integer images use whole-count bins, so fewer).
    cmap : str
        matplotlib colormap of the image panels.
    saturation_dtype : dtype-like, optional
        Dtype whose limits define saturation in the legend; by default each image's own dtype when it is an
        integer type, else ``uint16`` (pixels that would clip at 65535).
    fit : {"affine", "none"}
        ``affine``: show each prediction and the input after its least-squares affine fit onto the ground
        truth (as the ``*_affine`` scores); ``none``: their raw values.
    scores : mapping, optional
        Scores per image name (``{"care": metrics.evaluate(...), "input": ...}``) for the title, e.g. those
        of the whole stack when the panels show its middle plane; default: computed on the panels.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        On images that are not 2D, differ in shape, or hold NaN, on a zoom box that does not fit, or when
        the output folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError("folder of the figure does not exist", path=path.parent)
    fig = draw_evaluation_figure(
        pred,
        gt,
        input,
        title=title,
        zoom=zoom,
        bins=bins,
        cmap=cmap,
        saturation_dtype=saturation_dtype,
        fit=fit,
        scores=scores,
    )
    from microrestore.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _score_line(names: list[str], scores: Mapping[str, Mapping[str, float]], fit: str) -> str:
    """``care: PSNR 28.1 dB, SSIM 0.812 | input: ...`` with the affine or raw scores, as the panels show."""
    suffix = "_affine" if fit == "affine" else ""
    parts = []
    for name in names:
        values = scores.get(name)
        if not values:
            continue
        psnr_value, ssim_value = values.get(f"psnr{suffix}", np.nan), values.get(f"ssim{suffix}", np.nan)
        parts.append(f"{name}: PSNR {psnr_value:.2f} dB, SSIM {ssim_value:.3f}")
    how = "after a least-squares affine fit onto the ground truth" if fit == "affine" else "raw values"
    return " | ".join(parts) + f"  ({how})" if parts else ""


def _fitted(img: np.ndarray, gt: np.ndarray, fit: str) -> tuple[float, float]:
    """``(scale, offset)`` that map ``img`` onto ``gt`` for display: the affine fit, or the identity."""
    if fit == "none":
        return 1.0, 0.0
    scale, offset = affine_fit(img, gt)
    if not (np.isfinite(scale) and np.isfinite(offset)) or scale == 0:
        return 1.0, 0.0
    return float(scale), float(offset)


def histogram_edges(img: np.ndarray, bins: int) -> np.ndarray:
    """Bin edges for ``img``'s own values: whole numbers of counts for integer data (no comb), else ``bins``.

    Integer images get bins of a whole number of their quantum (the greatest common divisor of the steps
    between their values: 1 for camera counts, 20 for counts stored times 20), at least ``range / bins``
    wide and centred on the values, so every bin holds the same number of possible values; float images get
    ``bins`` equal bins over their range.
    """
    lo, hi = float(img.min()), float(img.max())
    if img.dtype.kind in "biu" or (img.dtype.kind == "f" and np.array_equal(img, np.rint(img)) and hi - lo >= 1):
        values = np.unique(img).astype(np.int64)
        quantum = int(np.gcd.reduce(np.diff(values))) if values.size > 1 else 1
        step = quantum * max(1, int(np.ceil((hi - lo + quantum) / (quantum * bins))))
        return np.arange(lo - quantum / 2, hi + step, step, dtype=np.float64)
    if not hi > lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def _figure_images(
    predictions: Mapping[Any, ArrayLike], gt: ArrayLike, input: ArrayLike | None
) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """The ground truth and the named columns (input, predictions, ground truth), all 2D of one shape."""
    g = _as_image(gt, "ground truth")
    if not predictions:
        raise InputError("no prediction to show")
    images: list[tuple[str, np.ndarray]] = []
    if input is not None:
        images.append(("input", _as_image(input, "input")))
    images.extend((str(name), _as_image(p, str(name))) for name, p in predictions.items())
    images.append(("ground truth", g))
    for name, img in images:
        if img.shape != g.shape:
            raise InputError(f"{name} shape {img.shape} does not match ground truth shape {g.shape}")
    return g, images


def _display_range(g: np.ndarray) -> tuple[float, float]:
    """The ground truth's 0.5 and 99.8 percentiles (its range, or a unit span, when they coincide)."""
    lo, hi = (float(v) for v in np.percentile(g, [0.5, 99.8]))
    if not hi > lo:
        lo, hi = float(g.min()), float(g.max())
        if not hi > lo:
            hi = lo + 1.0
    return lo, hi


def _draw_histograms(
    axh: Any,
    images: list[tuple[str, np.ndarray]],
    maps: Mapping[str, tuple[float, float]],
    colors: Mapping[str, str],
    bins: int,
    saturation_dtype: DTypeLike | None,
) -> None:
    """Each column's intensity histogram (mapped like its panel, log density), saturated pixels in its label."""
    span, floor = [np.inf, -np.inf], np.inf
    for name, img in images:
        scale, offset = maps[name]
        raw_edges = histogram_edges(img, bins)
        counts, _ = np.histogram(img, bins=raw_edges)
        edges = raw_edges * scale + offset
        if scale < 0:
            edges, counts = edges[::-1], counts[::-1]
        density = counts / np.diff(edges)
        dt = np.dtype(
            saturation_dtype if saturation_dtype is not None else (img.dtype if img.dtype.kind in "iu" else np.uint16)
        )
        n_sat = saturation_count(img, dt)
        limit = np.iinfo(dt).max if dt.kind in "iu" else "inf"
        label = name + (f" ({n_sat} pixels saturated at {limit})" if n_sat else "")
        axh.stairs(density, edges, color=colors[name], linewidth=1.3, label=label)
        span = [min(span[0], float(edges[0])), max(span[1], float(edges[-1]))]
        floor = min(floor, float(density[density > 0].min(initial=np.inf)))
    axh.set_yscale("log")
    axh.set_ylim(bottom=(floor if np.isfinite(floor) else 1.0) * 0.5)
    axh.set_xlim(*span)


def draw_evaluation_figure(
    pred: Predictions,
    gt: ArrayLike,
    input: ArrayLike | None = None,
    *,
    title: str | None = None,
    zoom: int | tuple[int, int, int, int] | None = None,
    bins: int = 256,
    cmap: str = "gray",
    saturation_dtype: DTypeLike | None = None,
    fit: Literal["affine", "none"] = "affine",
    scores: Mapping[str, Mapping[str, float]] | None = None,
) -> Figure:
    """Draw the figure of :func:`evaluation_figure` on an Agg canvas without saving it.

    Parameters
    ----------
    pred, gt, input : array_like
        As for :func:`evaluation_figure` (``pred`` may map names to predictions).
    title, zoom, bins, cmap, saturation_dtype, fit, scores
        As for :func:`evaluation_figure`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not registered with pyplot), e.g. for display in a notebook. Its axes are, in order, the
        full view and the zoom of each column, the colour bar, then the histogram.

    Raises
    ------
    InputError
        On images that are not 2D, differ in shape, or hold NaN, on a zoom box that does not fit, or on an
        unknown ``fit``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    if fit not in ("affine", "none"):
        raise InputError(f"fit must be 'affine' or 'none', got {fit!r}")
    predictions = dict(pred) if isinstance(pred, Mapping) else {"prediction": pred}
    g, images = _figure_images(predictions, gt, input)
    if bins < 2:
        raise InputError(f"bins must be at least 2, got {bins}")
    shown_names = [name for name, _ in images if name != "ground truth"]
    if scores is None:
        scores = {name: evaluate(img, g) for name, img in images if name != "ground truth"}
    maps = {name: (1.0, 0.0) if name == "ground truth" else _fitted(img, g, fit) for name, img in images}

    zy, zx, zh, zw = _zoom_box(g, zoom)
    lo, hi = _display_range(g)

    n = len(images)
    width, height = figure_size(g.shape, (zh, zw), n, title is not None)
    r_full = _panel_ratio(g.shape)
    r_zoom = _panel_ratio((zh, zw))
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)

    def rect(x_in: float, y_in: float, w_in: float, h_in: float) -> tuple[float, float, float, float]:
        # y_in measured from the top of the figure, in inches
        return (x_in / width, 1 - (y_in + h_in) / height, w_in / width, h_in / height)

    top = _MARGIN_IN + (_TITLE_IN if title is not None else 0.0)
    if title is not None:
        fig.text(0.5, 1 - (_MARGIN_IN + 0.2) / height, title, ha="center", va="center", fontsize=13)
        line = _score_line(shown_names, scores, fit)
        fig.text(0.5, 1 - (_MARGIN_IN + 0.52) / height, line, ha="center", va="center", fontsize=8.5)
    palette = ["tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    colors = {"input": "0.45", "ground truth": "tab:blue"}
    for k, name in enumerate(predictions):
        colors[str(name)] = palette[k % len(palette)]
    full_y = top + _LABEL_IN
    zoom_y = full_y + _PANEL_IN * r_full + _GAP_IN + _LABEL_IN
    shown = None
    for i, (name, img) in enumerate(images):
        scale, offset = maps[name]
        view = img.astype(np.float64) * scale + offset if (scale, offset) != (1.0, 0.0) else img
        x0 = _MARGIN_IN + i * (_PANEL_IN + _GAP_IN)
        ax = fig.add_axes(rect(x0, full_y, _PANEL_IN, _PANEL_IN * r_full))
        shown = ax.imshow(view, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.add_patch(Rectangle((zx - 0.5, zy - 0.5), zw, zh, fill=False, edgecolor="yellow", linewidth=1.2))
        label = name if (scale, offset) == (1.0, 0.0) else f"{name}, fitted: {scale:.3g} x {offset:+.3g}"
        ax.set_title(label, fontsize=10 if len(label) < 34 else 8, color="black" if name == "input" else colors[name])
        ax.set_axis_off()
        axz = fig.add_axes(rect(x0, zoom_y, _PANEL_IN, _PANEL_IN * r_zoom))
        axz.imshow(view[zy : zy + zh, zx : zx + zw], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        axz.set_title(f"zoom y={zy}:{zy + zh}, x={zx}:{zx + zw}", fontsize=8)
        axz.set_axis_off()

    row_w = n * _PANEL_IN + (n - 1) * _GAP_IN
    cbar_y = zoom_y + _PANEL_IN * r_zoom + _GAP_IN
    axc = fig.add_axes(rect(_MARGIN_IN + 0.5, cbar_y, row_w - 0.5, 0.12))
    bar = fig.colorbar(shown, cax=axc, orientation="horizontal")
    bar.ax.tick_params(labelsize=7)
    bar.set_label(
        f"display range of every panel: {lo:.4g} to {hi:.4g} (ground truth's 0.5 / 99.8 percentiles"
        + ("; predictions and input affine-fitted onto it)" if fit == "affine" else ")"),
        fontsize=8,
    )

    hist_y = cbar_y + _CBAR_IN
    axh = fig.add_axes(rect(_MARGIN_IN + 0.5, hist_y, row_w - 0.5, _PANEL_IN * _HIST_RATIO))
    _draw_histograms(axh, images, maps, colors, bins, saturation_dtype)
    axh.set_xlabel("intensity (ground-truth units)" if fit == "affine" else "intensity")
    axh.set_ylabel("pixels per unit intensity")
    axh.legend(fontsize=8, frameon=False)
    return fig
