"""Fast non-local means (Buades et al. 2005) with the offset-wise box-filter scheme of Darbon et al. (2008).

For each offset ``d`` of the search window the squared difference between the image and the image shifted by
``d`` is box-filtered once, which gives the patch distance of every pixel to its neighbour at ``d`` in
O(pixels) whatever the patch size. The weights of ``d`` and ``-d`` are the same numbers read at shifted
positions, so only half of the offsets are computed.
"""

from __future__ import annotations

import numpy as np

#: Patches whose weight is below ``exp(-WEIGHT_CUTOFF)`` (0 in float32) count as dissimilar.
WEIGHT_CUTOFF = 110.0


def nl_means(
    image: np.ndarray,
    *,
    patch_size: int = 5,
    search_size: int = 13,
    h: float = 0.8,
    sigma: float = 1.0,
) -> np.ndarray:
    """Denoise a 2D image with additive noise of standard deviation ``sigma``.

    Parameters
    ----------
    image
        2D array (any real dtype); computed in float32.
    patch_size
        Edge of the square patches compared (odd).
    search_size
        Edge of the square search window (odd).
    h
        Filtering strength, in units of ``sigma``: the weight of a neighbour is
        ``exp(-max(d2 - 2 sigma^2, 0) / (h sigma)^2)`` with ``d2`` the mean squared difference of the patches.
    sigma
        Standard deviation of the noise (1 after a variance-stabilising transform).

    Returns
    -------
    numpy.ndarray
        float32 array of the image's shape.

    Notes
    -----
    Squared pixel differences are capped at ``patch_size**2 * (2 sigma^2 + WEIGHT_CUTOFF (h sigma)^2)``
    before the box filter. A patch holding a capped difference has a weight below ``exp(-WEIGHT_CUTOFF)``,
    which is 0 in float32 exactly as it is without the cap, so the result is unchanged; but a single huge
    pixel (a 3e38 hot or corrupt value) no longer overflows float32 to ``inf``, whose ``inf - inf`` in the
    box filter's running sums turned the whole image into NaN. The huge pixel is kept as it is (no
    neighbour resembles it) and its neighbours are denoised without it. Cheaper than float64 throughout.
    """
    from scipy.ndimage import uniform_filter

    u = np.asarray(image, dtype=np.float32)
    if u.ndim != 2:
        raise ValueError(f"nl_means works on 2D planes, got shape {u.shape}")
    if patch_size < 1 or patch_size % 2 == 0 or search_size < 1 or search_size % 2 == 0:
        raise ValueError("patch_size and search_size must be odd positive integers")
    if sigma <= 0 or h <= 0:
        return u.copy()
    rp, rs = patch_size // 2, search_size // 2
    n_rows, n_cols = u.shape
    pad = 2 * rs + rp
    padded = _reflect_pad(u, pad)
    # Patch distances are needed on the image extended by rs on every side (for the mirrored offsets).
    a = rs  # first padded row/col of the region whose box sums cover the extended image
    ext_rows, ext_cols = n_rows + 2 * rs, n_cols + 2 * rs
    reference = padded[a : a + ext_rows + 2 * rp, a : a + ext_cols + 2 * rp]
    inv_h2 = np.float32(1.0 / (h * sigma) ** 2)
    bias = np.float32(2.0 * sigma**2)
    cap = np.float32(patch_size**2 * (2.0 * sigma**2 + WEIGHT_CUTOFF * (h * sigma) ** 2))

    acc = np.zeros((n_rows, n_cols), dtype=np.float32)
    wsum = np.zeros((n_rows, n_cols), dtype=np.float32)
    wmax = np.zeros((n_rows, n_cols), dtype=np.float32)
    diff = np.empty_like(reference)
    for dy in range(0, rs + 1):
        for dx in range(-rs, rs + 1):
            if dy == 0 and dx <= 0:
                continue
            shifted = padded[a + dy : a + dy + ext_rows + 2 * rp, a + dx : a + dx + ext_cols + 2 * rp]
            with np.errstate(over="ignore", invalid="ignore"):  # inf from a huge pixel is capped next
                np.subtract(reference, shifted, out=diff)
                np.square(diff, out=diff)
            np.minimum(diff, cap, out=diff)
            dist = uniform_filter(diff, patch_size, mode="constant")
            if rp:
                dist = dist[rp:-rp, rp:-rp]
            # weight of the pair (x, x + d) for every x of the extended image
            np.subtract(dist, bias, out=dist)
            np.maximum(dist, 0.0, out=dist)
            np.multiply(dist, -inv_h2, out=dist)
            weight = np.exp(dist, out=dist)
            # x receives u(x + d) with weight w(x, x + d)
            w_fwd = weight[rs : rs + n_rows, rs : rs + n_cols]
            v_fwd = padded[pad + dy : pad + dy + n_rows, pad + dx : pad + dx + n_cols]
            acc += w_fwd * v_fwd
            wsum += w_fwd
            np.maximum(wmax, w_fwd, out=wmax)
            # x receives u(x - d) with weight w(x - d, x)
            w_bwd = weight[rs - dy : rs - dy + n_rows, rs - dx : rs - dx + n_cols]
            v_bwd = padded[pad - dy : pad - dy + n_rows, pad - dx : pad - dx + n_cols]
            acc += w_bwd * v_bwd
            wsum += w_bwd
            np.maximum(wmax, w_bwd, out=wmax)
    # The centre pixel gets the largest weight of its neighbours (Buades et al.), not 1.
    if rs == 0:
        wmax[:] = 1.0
    np.maximum(wmax, np.float32(1e-6), out=wmax)
    acc += wmax * u
    wsum += wmax
    return acc / np.maximum(wsum, np.float32(1e-12))


def _reflect_pad(u: np.ndarray, pad: int) -> np.ndarray:
    """Reflect-pad ``u`` by ``pad`` on every side, repeating the reflection for planes smaller than ``pad``."""
    if min(u.shape) == 1:
        return np.pad(u, pad, mode="edge")
    return np.pad(u, pad, mode="reflect")
