"""Evaluation figure: input, prediction and ground truth side by side, zoomed crops and intensity histograms.

The layout follows Fig. 2b of the c²GAN paper: the same display range for every panel (from the ground
truth's 0.5 and 99.8 percentiles), a zoomed crop of a detailed region, and histograms of the raw intensities
on a log scale, whose legend gives each image's number of saturated pixels. matplotlib is imported inside
:func:`evaluation_figure` only, and the figure is drawn with the Agg canvas directly, so the caller's
pyplot backend and state are never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy import ndimage

from microrestore.errors import InputError
from microrestore.metrics.quality import saturation_count

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_evaluation_figure", "evaluation_figure", "figure_size", "middle_plane"]

_PANEL_IN = 3.0  # width of one image panel, inches
_GAP_IN = 0.15
_MARGIN_IN = 0.35
_TITLE_IN = 0.45
_LABEL_IN = 0.3  # room above each image panel for its label
_HIST_RATIO = 0.75  # histogram height relative to a panel's width
_HIST_LABEL_IN = 0.5  # room below the histogram for its axis label


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
        2 (prediction, ground truth) or 3 (with the input).
    title : bool
        Whether a title line is drawn.

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
        + _HIST_LABEL_IN
    )
    return width, height


def evaluation_figure(
    path: str | Path,
    pred: ArrayLike,
    gt: ArrayLike,
    input: ArrayLike | None = None,
    *,
    title: str | None = None,
    zoom: int | tuple[int, int, int, int] | None = None,
    bins: int = 256,
    cmap: str = "gray",
    saturation_dtype: DTypeLike | None = None,
    dpi: int = 100,
) -> Path:
    """Write a PNG comparing input, prediction and ground truth.

    Parameters
    ----------
    path : str or Path
        Output PNG; written under a temporary name and renamed into place.
    pred, gt : array_like
        Prediction and ground truth, 2D and of the same shape (use :func:`middle_plane` for stacks).
    input : array_like, optional
        The degraded input, same shape; its column is left out when not given.
    title : str, optional
        A line above the panels.
    zoom : int or tuple of int, optional
        The zoom crop: ``(y, x, height, width)``, or a square size placed automatically on the ground
        truth's most textured region (highest local variance); default a quarter of the smaller side.
    bins : int
        Number of histogram bins, shared by the three histograms.
    cmap : str
        matplotlib colormap of the image panels.
    saturation_dtype : dtype-like, optional
        Dtype whose limits define saturation in the legend; by default each image's own dtype when it is an
        integer type, else ``uint16`` (pixels that would clip at 65535).
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
        pred, gt, input, title=title, zoom=zoom, bins=bins, cmap=cmap, saturation_dtype=saturation_dtype
    )
    from microrestore.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def draw_evaluation_figure(
    pred: ArrayLike,
    gt: ArrayLike,
    input: ArrayLike | None = None,
    *,
    title: str | None = None,
    zoom: int | tuple[int, int, int, int] | None = None,
    bins: int = 256,
    cmap: str = "gray",
    saturation_dtype: DTypeLike | None = None,
) -> Figure:
    """Draw the figure of :func:`evaluation_figure` on an Agg canvas without saving it.

    Parameters
    ----------
    pred, gt, input : array_like
        As for :func:`evaluation_figure`.
    title, zoom, bins, cmap, saturation_dtype
        As for :func:`evaluation_figure`.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (not registered with pyplot), e.g. for display in a notebook.

    Raises
    ------
    InputError
        On images that are not 2D, differ in shape, or hold NaN, or on a zoom box that does not fit.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    g = _as_image(gt, "ground truth")
    images: list[tuple[str, np.ndarray]] = []
    if input is not None:
        images.append(("input", _as_image(input, "input")))
    images.append(("prediction", _as_image(pred, "prediction")))
    images.append(("ground truth", g))
    for name, img in images:
        if img.shape != g.shape:
            raise InputError(f"{name} shape {img.shape} does not match ground truth shape {g.shape}")
    if bins < 2:
        raise InputError(f"bins must be at least 2, got {bins}")

    zy, zx, zh, zw = _zoom_box(g, zoom)
    lo, hi = (float(v) for v in np.percentile(g, [0.5, 99.8]))
    if not hi > lo:
        lo, hi = float(g.min()), float(g.max())
        if not hi > lo:
            hi = lo + 1.0

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
        fig.text(0.5, 1 - (_MARGIN_IN + _TITLE_IN / 2) / height, title, ha="center", va="center", fontsize=13)
    colors = {"input": "0.45", "prediction": "tab:orange", "ground truth": "tab:blue"}
    full_y = top + _LABEL_IN
    zoom_y = full_y + _PANEL_IN * r_full + _GAP_IN + _LABEL_IN
    for i, (name, img) in enumerate(images):
        x0 = _MARGIN_IN + i * (_PANEL_IN + _GAP_IN)
        ax = fig.add_axes(rect(x0, full_y, _PANEL_IN, _PANEL_IN * r_full))
        ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        ax.add_patch(Rectangle((zx - 0.5, zy - 0.5), zw, zh, fill=False, edgecolor="yellow", linewidth=1.2))
        ax.set_title(name, fontsize=11, color=colors[name] if name != "input" else "black")
        ax.set_axis_off()
        axz = fig.add_axes(rect(x0, zoom_y, _PANEL_IN, _PANEL_IN * r_zoom))
        axz.imshow(img[zy : zy + zh, zx : zx + zw], cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        axz.set_title(f"zoom y={zy}:{zy + zh}, x={zx}:{zx + zw}", fontsize=8)
        axz.set_axis_off()

    hist_y = zoom_y + _PANEL_IN * r_zoom + _GAP_IN + 0.1
    hist_w = n * _PANEL_IN + (n - 1) * _GAP_IN
    axh = fig.add_axes(rect(_MARGIN_IN + 0.5, hist_y, hist_w - 0.5, _PANEL_IN * _HIST_RATIO))
    vmin = min(float(img.min()) for _, img in images)
    vmax = max(float(img.max()) for _, img in images)
    if not vmax > vmin:
        vmax = vmin + 1.0
    edges = np.linspace(vmin, vmax, bins + 1)
    if any(img.dtype.kind in "iu" for _, img in images) and vmax - vmin < 4 * bins:
        # Integer counts: one bin per integer (or a whole number of them), else empty bins comb the plot.
        step = max(1, int(np.ceil((vmax - vmin + 1) / bins)))
        edges = np.arange(np.floor(vmin) - 0.5, np.ceil(vmax) + step + 0.5, step)
    for name, img in images:
        counts, _ = np.histogram(img, bins=edges)
        dt = np.dtype(
            saturation_dtype if saturation_dtype is not None else (img.dtype if img.dtype.kind in "iu" else np.uint16)
        )
        limit = np.iinfo(dt).max if dt.kind in "iu" else "inf"
        n_sat = saturation_count(img, dt)
        axh.stairs(counts, edges, color=colors[name], linewidth=1.3, label=f"{name} ({n_sat} saturated at {limit})")
    axh.set_yscale("log")
    axh.set_ylim(bottom=0.8)
    axh.set_xlim(vmin, vmax)
    axh.set_xlabel("intensity")
    axh.set_ylabel("pixels")
    axh.legend(fontsize=8, frameon=False)
    return fig
