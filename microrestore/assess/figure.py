"""The comparison figure: the input and each method's output above their estimated error maps."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["comparison_figure"]


def comparison_figure(
    path: Path,
    image: np.ndarray,
    outputs: Mapping[str, np.ndarray],
    sigmas: Mapping[str, np.ndarray],
    *,
    noise_sd: np.ndarray | None = None,
    titles: Mapping[str, str] | None = None,
    dpi: int = 110,
) -> Path:
    """Write a PNG: the input and each output (top row, shared intensity scale), their sigma maps (bottom row).

    Parameters
    ----------
    path
        PNG file to write (atomically).
    image
        The input plane (2D).
    outputs
        Method name to its restored plane, in rank order.
    sigmas
        Method name to its uncertainty plane (same scale for all; the input's is ``noise_sd``).
    noise_sd
        The input's noise standard deviation map, shown under it.
    titles
        Method name to a caption (e.g. the estimated RMSE).
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from microrestore.io.atomic import atomic_path

    names = list(outputs)
    cols = len(names) + 1
    fig = Figure(figsize=(2.4 * cols, 5.0))
    FigureCanvasAgg(fig)
    low, high = np.percentile(np.asarray(image, np.float64), [0.5, 99.8])
    maps = [np.asarray(s, np.float64) for s in sigmas.values()]
    if noise_sd is not None:
        maps.append(np.asarray(noise_sd, np.float64))
    top = float(np.percentile(np.concatenate([m.ravel() for m in maps]), 99.5)) if maps else 1.0
    shown = None
    panels = [("input", np.asarray(image), noise_sd)] + [(n, outputs[n], sigmas.get(n)) for n in names]
    for i, (name, picture, sigma) in enumerate(panels):
        ax = fig.add_subplot(2, cols, i + 1)
        ax.imshow(picture, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        caption = name if titles is None or name not in titles else f"{name}\n{titles[name]}"
        ax.set_title(caption, fontsize=8)
        ax.axis("off")
        ax = fig.add_subplot(2, cols, cols + i + 1)
        ax.axis("off")
        if sigma is not None:
            shown = ax.imshow(sigma, cmap="magma", vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_title("noise sd" if name == "input" else "estimated error (sigma)", fontsize=7)
    if shown is not None:
        fig.colorbar(shown, ax=fig.axes[-1], fraction=0.046, pad=0.04)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
