"""Synthetic fluorescent specimens ("phantoms") in 2D and 3D.

Each phantom is a fluorophore density map in [0, 1] (its brightest pixel is 1) on a pixel grid, drawn
from a :class:`numpy.random.Generator`, so the same seed gives the same specimen:

- :func:`filaments`: microtubule- or actin-like curves of random, smoothly varying curvature (the turning
  rate is an Ornstein-Uhlenbeck process), anti-aliased; in 3D they wander in z.
- :func:`puncta`: vesicle-like spots of varied size and brightness, partly clustered.
- :func:`tubules`: mitochondria-like tubes a few hundred nanometres wide with a bright membrane and a
  dimmer matrix ("hollow-ish"); in 2D the intensity is the projection through the tube.
- :func:`nuclei`: smooth irregular blobs with chromatin-like texture and darker nucleoli.
- :func:`mixed`: filaments, puncta and tubules together, a cell-like field.
- :func:`image_crops`: random crops of real (clean, high-SNR) images, so that real structures go through the
  simulated imaging and camera with an exact ground truth.

Geometry is computed in isotropic units of the lateral pixel; for 3D phantoms ``voxel_aspect`` (z voxel size
divided by the lateral pixel size) converts to the z grid, so a sphere stays a sphere in physical space.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from microrestore.errors import InputError

__all__ = ["PHANTOMS", "filaments", "image_crops", "mixed", "nuclei", "puncta", "tubules"]

Float32Array = NDArray[np.float32]
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"phantom shape must be 2 or 3 integers, got {shape!r}") from None
    if len(out) not in (2, 3) or any(s < 4 for s in out):
        raise InputError(f"phantom shape must be 2 or 3 integers of at least 4, got {shape!r}")
    return out


def _check_aspect(voxel_aspect: float) -> float:
    if not (math.isfinite(voxel_aspect) and voxel_aspect > 0):
        raise InputError(f"voxel_aspect must be a positive number, got {voxel_aspect!r}")
    return float(voxel_aspect)


def _scale(ndim: int, voxel_aspect: float) -> NDArray[np.float64]:
    """Isotropic units per voxel along each axis."""
    return np.array([voxel_aspect, 1.0, 1.0] if ndim == 3 else [1.0, 1.0])


def _extent(shape: tuple[int, ...], voxel_aspect: float) -> NDArray[np.float64]:
    return np.asarray(shape, dtype=np.float64) * _scale(len(shape), voxel_aspect)


def _sigmas(shape: tuple[int, ...], sigma_iso: float, voxel_aspect: float) -> tuple[float, ...]:
    """Gaussian widths per axis in voxels, at least half a voxel in z.

    The floor keeps thin structures from breaking into dashes on a coarse z grid; it is far below any
    widefield axial resolution.
    """
    sig = [float(sigma_iso / s) for s in _scale(len(shape), voxel_aspect)]
    if len(shape) == 3:
        sig[0] = max(sig[0], 0.5)
    return tuple(sig)


def _splat(points_vox: NDArray[np.float64], weights: NDArray[np.float64], shape: tuple[int, ...]) -> np.ndarray:
    """Deposit weighted points on the grid with multilinear (anti-aliased) weights."""
    out = np.zeros(math.prod(shape), dtype=np.float64)
    if points_vox.size == 0:
        return out.reshape(shape)
    base = np.floor(points_vox).astype(np.int64)
    frac = points_vox - base
    ndim = len(shape)
    for corner in range(1 << ndim):
        idx = np.empty_like(base)
        w = weights.copy()
        for ax in range(ndim):
            bit = (corner >> ax) & 1
            idx[:, ax] = base[:, ax] + bit
            w *= frac[:, ax] if bit else 1.0 - frac[:, ax]
        ok = np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
        if ok.any():
            flat = np.ravel_multi_index(tuple(idx[ok].T), shape)
            out += np.bincount(flat, weights=w[ok], minlength=out.size)
    return out.reshape(shape)


def _normalise(x: np.ndarray) -> Float32Array:
    x = np.maximum(x, 0.0)
    peak = float(x.max())
    if peak > 0:
        x = x / peak
    return x.astype(np.float32)


def _smooth_noise(rng: np.random.Generator, n: int, sd: float, corr_samples: float) -> NDArray[np.float64]:
    """Stationary Gaussian process of standard deviation ``sd`` and correlation ~``corr_samples``."""
    xi = rng.standard_normal(n)
    sigma = max(corr_samples, 0.5)
    # A unit-variance white noise blurred by a normalised Gaussian of width s has std (2 sqrt(π) s)^-1/2.
    return sd * ndimage.gaussian_filter1d(xi, sigma, mode="reflect") * math.sqrt(2.0 * math.sqrt(math.pi) * sigma)


def _random_curve(
    rng: np.random.Generator,
    extent: NDArray[np.float64],
    length: float,
    step: float,
    curvature: float,
    correlation: float,
    z_flatness: float = 0.3,
) -> NDArray[np.float64]:
    """Points of a smooth random curve in isotropic units, shape (N, ndim), spaced by ``step``.

    The heading turns at a rate that is a smooth stationary random process (standard deviation
    ``curvature`` radians per unit length, correlation length ``correlation``), which gives the persistent,
    gently varying bends of cytoskeletal filaments; the curve's middle point is uniform over the field. In
    3D the elevation is a slow random process around 0, of spread ``z_flatness`` radians, so curves cross
    the field while wandering up and down in z.
    """
    ndim = extent.size
    n = max(2, int(length / step))
    centre = rng.uniform(0.0, extent)
    turn = _smooth_noise(rng, n, curvature, correlation / step)
    phi = rng.uniform(0.0, 2.0 * math.pi) + np.cumsum(turn * step)
    if ndim == 2:
        d = np.stack([np.sin(phi), np.cos(phi)], axis=1)
    else:
        psi = _smooth_noise(rng, n, z_flatness, 3.0 * correlation / step)
        d = np.stack([np.sin(psi), np.cos(psi) * np.sin(phi), np.cos(psi) * np.cos(phi)], axis=1)
    steps = np.vstack([np.zeros((1, ndim)), d[:-1] * step])
    pts = np.cumsum(steps, axis=0)
    # Centre the curve on a uniformly drawn point, so that curves cross the field rather than leave it.
    return pts - pts[n // 2] + centre


def filaments(
    shape: Sequence[int],
    rng: np.random.Generator | int | None = None,
    *,
    n: int | None = None,
    width_px: float = 1.2,
    curvature: float = 0.015,
    voxel_aspect: float = 1.0,
) -> Float32Array:
    """Cytoskeleton-like filaments: smooth random curves of varied brightness.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    n : int, optional
        Number of filaments; default scales with the field (12 for 256 x 256, more for deep 3D fields).
    width_px : float
        Full width at half maximum of a filament's cross-section, lateral pixels (1.2 px is about 80 nm
        at 65 nm pixels, a labelled microtubule).
    curvature : float
        Typical turning rate in radians per pixel (1 / radius of curvature).
    voxel_aspect : float
        For 3D: z voxel size over the lateral pixel size.

    Returns
    -------
    numpy.ndarray
        float32 density in [0, 1] of ``shape``; crossings are brighter than single filaments.
    """
    shp = _check_shape(shape)
    gen = _rng(rng)
    aspect = _check_aspect(voxel_aspect)
    if not (math.isfinite(width_px) and width_px > 0):
        raise InputError(f"width_px must be positive, got {width_px!r}")
    ext = _extent(shp, aspect)
    lateral = float(max(ext[-2:]))
    if n is None:
        depth = 1.0 + (float(ext[0]) / 32.0 if len(shp) == 3 else 0.0)
        n = max(3, round(12 * (ext[-2] * ext[-1]) / 256.0**2 * depth))
    step = 0.5
    pts_all, w_all = [], []
    for _ in range(int(n)):
        length = gen.uniform(0.6, 1.5) * lateral
        pts = _random_curve(gen, ext, length, step, curvature, correlation=40.0)
        brightness = gen.uniform(0.5, 1.0)
        pts_all.append(pts / _scale(len(shp), aspect))
        w_all.append(np.full(len(pts), step * brightness))
    if not pts_all:
        return np.zeros(shp, dtype=np.float32)
    pts_vox = np.concatenate(pts_all)
    dens = _splat(pts_vox, np.concatenate(w_all), shp)
    sigma = width_px * _FWHM_TO_SIGMA
    sig = _sigmas(shp, sigma, aspect)
    return _normalise(ndimage.gaussian_filter(dens, sig, truncate=4.0))


def puncta(
    shape: Sequence[int],
    rng: np.random.Generator | int | None = None,
    *,
    n: int | None = None,
    size_px: tuple[float, float] = (1.2, 3.5),
    cluster_fraction: float = 0.4,
    voxel_aspect: float = 1.0,
) -> Float32Array:
    """Vesicle- or spot-like puncta of log-normal brightness, partly clustered.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    n : int, optional
        Number of puncta; default one per ~500 pixels of field.
    size_px : tuple of float
        Range of the spots' full width at half maximum, lateral pixels.
    cluster_fraction : float
        Fraction of the puncta placed around a few cluster centres.
    voxel_aspect : float
        For 3D: z voxel size over the lateral pixel size.

    Returns
    -------
    numpy.ndarray
        float32 density in [0, 1] of ``shape``.
    """
    shp = _check_shape(shape)
    gen = _rng(rng)
    aspect = _check_aspect(voxel_aspect)
    lo, hi = (float(v) for v in size_px)
    if not (0 < lo <= hi):
        raise InputError(f"size_px must be (min, max) with 0 < min <= max, got {size_px!r}")
    if not 0 <= cluster_fraction <= 1:
        raise InputError(f"cluster_fraction must be in [0, 1], got {cluster_fraction!r}")
    ext = _extent(shp, aspect)
    if n is None:
        n = max(5, round(float(np.prod(ext[-2:])) / 500.0 * (1.5 if len(shp) == 3 else 1.0)))
    n = int(n)
    n_cl = round(n * cluster_fraction)
    pos = gen.uniform(0.0, ext, size=(n, len(shp)))
    if n_cl:
        centres = gen.uniform(0.1 * ext, 0.9 * ext, size=(max(1, n_cl // 8), len(shp)))
        which = gen.integers(0, len(centres), size=n_cl)
        pos[:n_cl] = centres[which] + gen.normal(0.0, 0.04 * float(ext[-1]), size=(n_cl, len(shp)))
    fwhm = gen.uniform(lo, hi, size=n)
    bright = gen.lognormal(0.0, 0.4, size=n)
    out = np.zeros(shp, dtype=np.float64)
    # Spots are splatted in a few size classes, each blurred once, so the cost does not grow with n.
    n_classes = 4 if hi > lo else 1
    edges = np.linspace(lo, hi, n_classes + 1)
    cls = np.clip(np.searchsorted(edges, fwhm, side="right") - 1, 0, n_classes - 1)
    scale = _scale(len(shp), aspect)
    for c in range(n_classes):
        sel = cls == c
        if not sel.any():
            continue
        sigma = 0.5 * (edges[c] + edges[c + 1]) * _FWHM_TO_SIGMA
        sig = _sigmas(shp, sigma, aspect)
        dens = _splat(pos[sel] / scale, bright[sel], shp)
        # Peak of a unit point after the blur is 1 / ((2π)^(d/2) Π σ); undo it so brightness is the peak.
        peak_gain = (2 * math.pi) ** (len(shp) / 2) * math.prod(sig)
        out += ndimage.gaussian_filter(dens, sig, truncate=4.0) * peak_gain
    return _normalise(out)


def _tube_profile_2d(d: np.ndarray, radius: np.ndarray, wall: float, hollow: float) -> np.ndarray:
    """Projected intensity of a tube with a fluorescent wall and lumen, at distance d from its axis."""
    r_out = radius + wall / 2.0
    r_in = np.maximum(radius - wall / 2.0, 0.0)
    chord_out = 2.0 * np.sqrt(np.maximum(r_out**2 - d**2, 0.0))
    chord_in = 2.0 * np.sqrt(np.maximum(r_in**2 - d**2, 0.0))
    shell = (chord_out - chord_in) / np.maximum(2.0 * np.sqrt(np.maximum(r_out**2 - r_in**2, 1e-12)), 1e-12)
    lumen = chord_in / np.maximum(2.0 * r_in, 1e-12)
    return hollow * shell + (1.0 - hollow) * lumen


def tubules(
    shape: Sequence[int],
    rng: np.random.Generator | int | None = None,
    *,
    n: int | None = None,
    radius_px: tuple[float, float] = (2.5, 4.5),
    wall_px: float = 1.2,
    hollow: float = 0.7,
    voxel_aspect: float = 1.0,
) -> Float32Array:
    """Mitochondria-like tubes: short curved capsules with a bright wall and a dimmer interior.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    n : int, optional
        Number of tubes; default about 14 for 256 x 256.
    radius_px : tuple of float
        Range of tube radii, lateral pixels (3.5 px is about 230 nm at 65 nm pixels).
    wall_px : float
        Thickness of the labelled wall (membrane), pixels.
    hollow : float
        Fraction of the label on the wall (1: outer-membrane label, 0: matrix label).
    voxel_aspect : float
        For 3D: z voxel size over the lateral pixel size.

    Returns
    -------
    numpy.ndarray
        float32 density in [0, 1] of ``shape``. In 2D the value is the projection through the tube (so the
        edges of a hollow tube are brighter than its middle); in 3D it is the density of wall and lumen.
    """
    shp = _check_shape(shape)
    gen = _rng(rng)
    aspect = _check_aspect(voxel_aspect)
    lo, hi = (float(v) for v in radius_px)
    if not (0 < lo <= hi):
        raise InputError(f"radius_px must be (min, max) with 0 < min <= max, got {radius_px!r}")
    if not 0 <= hollow <= 1:
        raise InputError(f"hollow must be in [0, 1], got {hollow!r}")
    if not wall_px > 0:
        raise InputError(f"wall_px must be positive, got {wall_px!r}")
    ext = _extent(shp, aspect)
    if n is None:
        n = max(3, round(14 * float(np.prod(ext[-2:])) / 256.0**2))
    scale = _scale(len(shp), aspect)
    curves, radii, brights = [], [], []
    for _ in range(int(n)):
        length = gen.uniform(8.0, 0.3 * float(ext[-1]) + 10.0)
        pts = _random_curve(gen, ext, length, 0.5, curvature=0.03, correlation=20.0, z_flatness=0.2)
        curves.append(pts)
        radii.append(np.full(len(pts), gen.uniform(lo, hi)))
        brights.append(np.full(len(pts), gen.uniform(0.6, 1.0)))
    pts = np.concatenate(curves)
    radius_pts, bright_pts = np.concatenate(radii), np.concatenate(brights)
    # Candidate voxels from a cheap distance transform of the rasterised centre lines, then the exact
    # distance to the (sub-pixel) centre line with a k-d tree, so tubes are smooth at any voxel aspect.
    idx = np.rint(pts / scale).astype(np.int64)
    ok = np.all((idx >= 0) & (idx < np.asarray(shp)), axis=1)
    if not ok.any():
        return np.zeros(shp, dtype=np.float32)
    seeds = np.zeros(shp, dtype=bool)
    seeds[tuple(idx[ok].T)] = True
    reach = hi + wall_px + 2.0 + float(scale.max())
    near = ndimage.distance_transform_edt(~seeds, sampling=tuple(scale)) <= reach
    coords = np.argwhere(near) * scale
    from scipy.spatial import cKDTree  # imported here: scipy.spatial takes 0.3 s to import

    tree = cKDTree(pts)
    d_near, i_near = tree.query(coords)
    dist = np.full(shp, np.inf)
    radius = np.zeros(shp)
    bright = np.zeros(shp)
    sel = tuple(np.argwhere(near).T)
    dist[sel] = d_near
    radius[sel] = radius_pts[i_near]
    bright[sel] = bright_pts[i_near]
    if len(shp) == 2:
        prof = _tube_profile_2d(dist, radius, wall_px, hollow)
    else:
        wall = np.exp(-0.5 * ((dist - radius) / (wall_px * _FWHM_TO_SIGMA * 1.5)) ** 2)
        lumen = 1.0 / (1.0 + np.exp((dist - radius) / 0.4))
        prof = hollow * wall + (1.0 - hollow) * lumen
    img = prof * bright
    return _normalise(ndimage.gaussian_filter(img, _sigmas(shp, 0.5, aspect)))


def nuclei(
    shape: Sequence[int],
    rng: np.random.Generator | int | None = None,
    *,
    n: int | None = None,
    radius_px: tuple[float, float] = (18.0, 32.0),
    texture: float = 0.35,
    voxel_aspect: float = 1.0,
) -> Float32Array:
    """Nucleus-like blobs: smooth irregular outlines, chromatin texture and darker nucleoli.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    n : int, optional
        Number of nuclei; default fills about a third of the field.
    radius_px : tuple of float
        Range of mean radii, lateral pixels.
    texture : float
        Depth of the chromatin texture (0: uniform interior).
    voxel_aspect : float
        For 3D: z voxel size over the lateral pixel size.

    Returns
    -------
    numpy.ndarray
        float32 density in [0, 1] of ``shape``.
    """
    shp = _check_shape(shape)
    gen = _rng(rng)
    aspect = _check_aspect(voxel_aspect)
    lo, hi = (float(v) for v in radius_px)
    if not (0 < lo <= hi):
        raise InputError(f"radius_px must be (min, max) with 0 < min <= max, got {radius_px!r}")
    if not 0 <= texture <= 1:
        raise InputError(f"texture must be in [0, 1], got {texture!r}")
    ndim = len(shp)
    ext = _extent(shp, aspect)
    scale = _scale(ndim, aspect)
    r_mean = 0.5 * (lo + hi)
    if n is None:
        n = max(1, round(0.33 * float(np.prod(ext[-2:])) / (math.pi * r_mean**2)))
    # Chromatin texture: band-limited noise (two scales), shared by all nuclei.
    noise = gen.standard_normal(shp)
    tex = (
        ndimage.gaussian_filter(noise, _sigmas(shp, 1.5, aspect)) * 2.0
        + ndimage.gaussian_filter(noise, _sigmas(shp, 4.0, aspect)) * 4.0
    )
    tex = 1.0 - texture * (0.5 + 0.5 * np.tanh(tex / (tex.std() + 1e-12)))
    out = np.zeros(shp, dtype=np.float64)
    centres: list[NDArray[np.float64]] = []
    radii: list[float] = []
    for _ in range(int(n)):
        r = gen.uniform(lo, hi)
        for _try in range(30):
            c = gen.uniform(0.05 * ext, 0.95 * ext)
            if ndim == 3:
                c[0] = gen.uniform(0.3, 0.7) * ext[0]
            if all(np.linalg.norm(c - c2) > 0.85 * (r + r2) for c2, r2 in zip(centres, radii, strict=True)):
                break
        centres.append(c)
        radii.append(r)
        # Random rotation and axis ratios (ellipsoidal), and a smooth random outline.
        q, _ = np.linalg.qr(gen.standard_normal((ndim, ndim)))
        axes = gen.uniform(0.7, 1.15, size=ndim)
        if ndim == 3:
            axes[0] *= 0.6  # nuclei are flatter than wide
        freqs = gen.normal(0.0, 1.5, size=(5, ndim))
        amps = gen.normal(0.0, 0.05, size=5)
        phis = gen.uniform(0.0, 2 * math.pi, size=5)
        half = (1.4 * r * axes.max()) / scale
        lo_idx = np.maximum(np.floor(c / scale - half).astype(int), 0)
        hi_idx = np.minimum(np.ceil(c / scale + half).astype(int) + 1, np.asarray(shp))
        if np.any(hi_idx <= lo_idx):
            continue
        grids = np.meshgrid(
            *[(np.arange(a, b) * s - cc) for a, b, s, cc in zip(lo_idx, hi_idx, scale, c, strict=True)],
            indexing="ij",
        )
        v = np.stack(grids, axis=-1) @ q  # coordinates in the nucleus' own frame
        v = v / axes
        rr = np.linalg.norm(v, axis=-1)
        u = v / np.maximum(rr, 1e-9)[..., None]
        outline = r * (1.0 + np.cos(u @ freqs.T + phis) @ amps)
        inside = 1.0 / (1.0 + np.exp((rr - outline) / 0.8))
        # Nucleoli: 1-3 darker spots inside.
        dark = np.ones_like(rr)
        for _k in range(int(gen.integers(1, 4))):
            pos = gen.normal(0.0, 0.35 * r, size=ndim)
            rad = gen.uniform(0.12, 0.22) * r
            dist = np.linalg.norm(v * axes - pos, axis=-1)
            dark -= 0.45 / (1.0 + np.exp((dist - rad) / 0.8))
        box = tuple(slice(a, b) for a, b in zip(lo_idx, hi_idx, strict=True))
        bright = gen.uniform(0.6, 1.0)
        out[box] = np.maximum(out[box], bright * inside * np.clip(dark, 0.2, 1.0) * tex[box])
    return _normalise(ndimage.gaussian_filter(out, _sigmas(shp, 0.6, aspect)))


def mixed(
    shape: Sequence[int],
    rng: np.random.Generator | int | None = None,
    *,
    voxel_aspect: float = 1.0,
    weights: tuple[float, float, float] = (0.8, 0.6, 0.7),
) -> Float32Array:
    """Draw a cell-like field: filaments, puncta and tubules together.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    voxel_aspect : float
        For 3D: z voxel size over the lateral pixel size.
    weights : tuple of float
        Relative brightness of filaments, puncta and tubules.

    Returns
    -------
    numpy.ndarray
        float32 density in [0, 1] of ``shape``.
    """
    shp = _check_shape(shape)
    gen = _rng(rng)
    wf, wp, wt = (float(w) for w in weights)
    out = wf * filaments(shp, gen, voxel_aspect=voxel_aspect).astype(np.float64)
    out += wp * puncta(shp, gen, voxel_aspect=voxel_aspect, n=None)
    tub_n = max(2, round(6 * shp[-1] * shp[-2] / 256.0**2))
    out += wt * tubules(shp, gen, voxel_aspect=voxel_aspect, n=tub_n)
    return _normalise(out)


@functools.lru_cache(maxsize=8)
def _real_image(path: str, low_percentile: float, high_percentile: float) -> NDArray[np.float64]:
    """A 2D image as density: its ``low_percentile`` at 0, its ``high_percentile`` at 1 (cached per file)."""
    from microrestore.io import read_image

    image = read_image(path)
    data = np.asarray(image.data, np.float64)
    if data.ndim != 2:
        raise InputError(f"image_crops needs 2D images (YX), got axes {image.axes}", path)
    low, high = np.percentile(data, [low_percentile, high_percentile])
    if not high > low:
        raise InputError("image_crops: the image is flat (no contrast between its percentiles)", path)
    return np.clip((data - low) / (high - low), 0.0, None)


def image_crops(
    shape: Sequence[int],
    rng: np.random.Generator | int | None = None,
    *,
    images: Sequence[str],
    region: Sequence[float] = (0.0, 1.0, 0.0, 1.0),
    low_percentile: float = 1.0,
    high_percentile: float = 99.9,
    min_signal: float = 0.25,
    voxel_aspect: float = 1.0,
) -> Float32Array:
    """Crop a real image at random: real structures for the simulated microscope.

    One of ``images`` is drawn, then a ``shape`` window inside its ``region``; the crop is mapped to a density by
    the whole image's percentiles (its background at 0) and scaled so that its brightest pixel is 1. Crops whose
    99th percentile stays below ``min_signal`` (background alone) are drawn again. Give clean, high-SNR images:
    their own noise becomes part of the "truth".

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)``; 2D only.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    images : sequence of str
        Paths of 2D images (any format :func:`microrestore.io.read_image` reads).
    region : sequence of float
        ``(y0, y1, x0, x1)``, the part of each image crops come from, as fractions of its height and width
        (e.g. ``(0, 1, 0, 0.75)`` for training and ``(0, 1, 0.75, 1)`` for held-out test crops).
    low_percentile, high_percentile : float
        Percentiles of the whole image mapped to density 0 and 1 before the crop's own peak scaling.
    min_signal : float
        Least 99th percentile of a crop's density (on the whole image's scale) for it to be kept.
    voxel_aspect : float
        Accepted for the phantom interface; must be 1 (2D).

    Returns
    -------
    numpy.ndarray
        float32 density in [0, 1] of ``shape``.
    """
    shp = _check_shape(shape)
    if len(shp) != 2 or voxel_aspect != 1.0:
        raise InputError("image_crops draws 2D crops only (shape (Y, X))")
    if isinstance(images, str) or not images:
        raise InputError("image_crops needs 'images': a list of image paths")
    y0, y1, x0, x1 = (float(v) for v in region)
    if not (0.0 <= y0 < y1 <= 1.0 and 0.0 <= x0 < x1 <= 1.0):
        raise InputError(f"image_crops: region must be fractions (y0, y1, x0, x1) with y0 < y1, x0 < x1, got {region}")
    gen = _rng(rng)
    for _ in range(200):  # skip crops of background alone: their noise would be scaled up to a "structure"
        path = str(images[int(gen.integers(len(images)))])
        density = _real_image(path, float(low_percentile), float(high_percentile))
        h, w = density.shape
        top, bottom = round(y0 * h), round(y1 * h)
        left, right = round(x0 * w), round(x1 * w)
        if bottom - top < shp[0] or right - left < shp[1]:
            raise InputError(
                f"image_crops: region {bottom - top} x {right - left} px of the image is smaller than the crop {shp}",
                path,
            )
        y = int(gen.integers(top, bottom - shp[0] + 1))
        x = int(gen.integers(left, right - shp[1] + 1))
        crop = density[y : y + shp[0], x : x + shp[1]]
        if float(np.percentile(crop, 99.0)) >= min_signal:
            return _normalise(crop)
    raise InputError(f"image_crops: no crop of the images' region reaches min_signal {min_signal} (200 tries)")


PHANTOMS: dict[str, Callable[..., Float32Array]] = {
    "filaments": filaments,
    "image_crops": image_crops,
    "puncta": puncta,
    "tubules": tubules,
    "nuclei": nuclei,
    "mixed": mixed,
}
"""Phantom generators by name; each is called as ``f(shape, rng, voxel_aspect=...)``."""
