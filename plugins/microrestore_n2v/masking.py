"""Noise2Void's blind-spot masking (numpy; every random draw comes from the generator it is given)."""

from __future__ import annotations

import math

import numpy as np


def stratified_coordinates(
    spatial: tuple[int, ...], percent: float, rng: np.random.Generator, batch: int
) -> list[np.ndarray]:
    """One random pixel per box of ``(100 / percent) ** (1 / ndim)`` pixels a side, for each of ``batch`` patches.

    Parameters
    ----------
    spatial
        Patch shape.
    percent
        Share of the pixels to draw, in percent.
    rng
        The random generator.
    batch
        Number of patches.

    Returns
    -------
    list of numpy.ndarray
        Per patch, integer coordinates ``(n, ndim)`` inside the patch (at least one).
    """
    ndim = len(spatial)
    box = (100.0 / percent) ** (1.0 / ndim)
    counts = [max(1, math.ceil(n / box)) for n in spatial]
    grid = np.stack(np.meshgrid(*[np.arange(k) for k in counts], indexing="ij"), axis=-1).reshape(-1, ndim)
    points = np.floor((grid[None] + rng.random((batch, len(grid), ndim))) * box).astype(np.int64)
    limit = np.asarray(spatial)
    out = []
    for b in range(batch):
        inside = points[b][np.all(points[b] < limit, axis=1)]
        out.append(inside if len(inside) else np.minimum(points[b][:1], limit - 1))
    return out


def neighbour_coordinates(
    coords: np.ndarray, spatial: tuple[int, ...], radius: int, rng: np.random.Generator
) -> np.ndarray:
    """A random other pixel within ``radius`` (per axis) of each coordinate, reflected at the patch borders.

    The zero offset is never drawn, and reflection cannot map a pixel back onto itself, so a masked pixel never
    sees its own value (except in patches narrower than 2 pixels, which have no other pixel to take).
    """
    offsets = rng.integers(-radius, radius + 1, size=coords.shape)
    zero = np.all(offsets == 0, axis=1)
    while zero.any():  # redraw the zero offsets (few)
        offsets[zero] = rng.integers(-radius, radius + 1, size=(int(zero.sum()), coords.shape[1]))
        zero = np.all(offsets == 0, axis=1)
    limit = np.asarray(spatial) - 1
    source = np.abs(coords + offsets)  # reflect at 0
    source = np.where(source > limit, 2 * limit - source, source)  # reflect at the far border
    return np.clip(source, 0, limit)


def blind_spot_batch(
    patches: np.ndarray, rng: np.random.Generator, percent: float, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask a batch for Noise2Void: masked pixels take a random neighbour's value.

    Parameters
    ----------
    patches
        ``(B, C, *spatial)`` float32 noisy patches.
    rng
        The random generator.
    percent
        Share of pixels masked per patch, in percent.
    radius
        Neighbourhood radius of the replacement values.

    Returns
    -------
    tuple of numpy.ndarray
        ``(masked_input, target, mask)``: the input with replaced pixels, the untouched patches (the targets
        at the masked pixels) and a ``(B, 1, *spatial)`` float32 mask, 1 at the masked pixels.
    """
    batch, _, *rest = patches.shape
    spatial = tuple(int(n) for n in rest)
    masked = patches.copy()
    mask = np.zeros((batch, 1, *spatial), dtype=np.float32)
    for b, coords in enumerate(stratified_coordinates(spatial, percent, rng, batch)):
        source = neighbour_coordinates(coords, spatial, radius, rng)
        keep = np.any(source != coords, axis=1)
        coords, source = coords[keep], source[keep]
        at = tuple(coords.T)
        masked[b][(slice(None), *at)] = patches[b][(slice(None), *tuple(source.T))]
        mask[b, 0][at] = 1.0
    return masked, patches, mask
