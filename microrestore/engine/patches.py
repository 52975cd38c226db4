"""Random training patches from lists of (memory-mapped) images.

Layout: every image is a channel-first array ``(C, *spatial)`` — ``(C, Y, X)`` for 2D, ``(C, Z, Y, X)`` for
3D — and ``patch_shape`` gives the spatial patch size only. All images of one list must have the same number
of channels; their spatial sizes may differ. Batches come out as float32 ``(B, C, *patch_shape)``.

Only the patches themselves (and small strided subsamples for normalisation and the foreground map) are read,
so images may be :class:`numpy.memmap` views of files larger than memory. All randomness comes from the
:class:`numpy.random.Generator` passed to :meth:`PatchSampler.sample`, so ``sample(step_rng(seed, s), b)`` is a
pure function of the step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microrestore.engine.normalization import Normalizer, NormParams
from microrestore.errors import InputError

#: Values looked at when building an image's foreground map.
_FOREGROUND_SAMPLES = 1 << 22


def _describe(array: np.ndarray) -> str | None:
    name = getattr(array, "filename", None)
    return str(name) if name else None


@dataclass
class _Side:
    """One list of images (sources or targets) with what sampling needs to know about it."""

    arrays: list[np.ndarray]
    patch: tuple[int, ...]
    params: list[NormParams] | None
    normalizer: Normalizer | None
    weights: np.ndarray
    foreground: list[np.ndarray] | None = None  # per image: (N, ndim) grid indices of foreground starts
    stride: tuple[int, ...] = ()

    def read(self, index: int, start: Sequence[int]) -> np.ndarray:
        array = self.arrays[index]
        window = (slice(None), *(slice(s, s + p) for s, p in zip(start, self.patch, strict=True)))
        patch = np.asarray(array[window], dtype=np.float32)
        if self.normalizer is not None and self.params is not None:
            patch = self.normalizer.apply(patch, self.params[index])
        return patch


def _check_arrays(arrays: Sequence[np.ndarray], patch: tuple[int, ...], name: str) -> list[np.ndarray]:
    items = list(arrays)
    if not items:
        raise InputError(f"no {name} images to sample patches from")
    channels = set()
    for i, array in enumerate(items):
        if array.ndim != len(patch) + 1:
            raise InputError(
                f"{name} image {i} has shape {tuple(array.shape)}; expected channel-first (C, *spatial) with "
                f"{len(patch)} spatial axes to match the patch shape {patch}",
                _describe(array),
            )
        if any(n < p for n, p in zip(array.shape[1:], patch, strict=True)):
            raise InputError(
                f"{name} image {i} has spatial shape {tuple(array.shape[1:])}, smaller than the patch {patch}",
                _describe(array),
            )
        channels.add(int(array.shape[0]))
    if len(channels) != 1:
        raise InputError(f"{name} images have different numbers of channels: {sorted(channels)}")
    return items


def _box_mean(image: np.ndarray, window: Sequence[int]) -> np.ndarray:
    """Mean over every fully contained window (valid box filter) via cumulative sums."""
    out = image.astype(np.float64)
    for axis, w in enumerate(window):
        csum = np.cumsum(out, axis=axis)
        zero = np.zeros_like(np.take(csum, [0], axis=axis))
        csum = np.concatenate([zero, csum], axis=axis)
        n = out.shape[axis]
        out = (np.take(csum, range(w, n + 1), axis=axis) - np.take(csum, range(0, n - w + 1), axis=axis)) / w
    return out


def _foreground_starts(
    array: np.ndarray, patch: tuple[int, ...], stride: tuple[int, ...], percentile: float
) -> np.ndarray:
    """Grid indices ``j`` (patch start ``j * stride``) of windows whose local mean is above a threshold.

    The map is built on a strided view of the image averaged over channels, so only a small part of the
    file is read.
    """
    view = array[(slice(None), *(slice(0, None, s) for s in stride))]
    coarse = np.asarray(view, dtype=np.float32).mean(axis=0)
    # Samples j*s .. j*s + (w-1)*s of a window lie inside every patch started in [j*s - (s-1), j*s].
    window = tuple(max(1, min(c, (p - s) // s + 1)) for p, s, c in zip(patch, stride, coarse.shape, strict=True))
    local = _box_mean(coarse, window)
    # Starts must stay inside the image: j * stride <= n - p.
    limit = tuple(
        min(m, (n - p) // s + 1) for m, n, p, s in zip(local.shape, array.shape[1:], patch, stride, strict=True)
    )
    local = local[tuple(slice(0, m) for m in limit)]
    # Windows brighter on average than the percentile of the pixels: with sparse objects (threshold at the
    # background level) every window that overlaps an object. Dense images may have no such window; then the
    # brightest windows (at or above the same percentile of the windows' means) are used.
    above = local > np.percentile(coarse, percentile)
    if not above.any():
        above = local >= np.percentile(local, percentile)
    return np.argwhere(above)


def _check_sampling(
    patch_shape: Sequence[int],
    patch: tuple[int, ...],
    paired: bool,
    targets: Sequence[np.ndarray] | None,
    foreground_bias: float,
    foreground_percentile: float,
    scale: int | Sequence[int],
) -> tuple[int, ...]:
    """Refuse impossible sampling settings; return the scale per spatial axis."""
    if not patch or any(p < 1 for p in patch):
        raise InputError(f"invalid patch shape {tuple(patch_shape)}")
    if not 0.0 <= foreground_bias <= 1.0:
        raise InputError(f"foreground_bias must be between 0 and 1, got {foreground_bias}")
    if not 0.0 <= foreground_percentile <= 100.0:
        raise InputError(f"foreground_percentile must be between 0 and 100, got {foreground_percentile}")
    if not paired and targets is None:
        raise InputError("unpaired sampling needs target images")
    factors = (int(scale),) * len(patch) if isinstance(scale, (int, np.integer)) else tuple(int(s) for s in scale)
    if len(factors) != len(patch) or any(f < 1 for f in factors):
        raise InputError(f"scale must be a positive integer or one per spatial axis, got {scale}")
    if not paired and any(f != 1 for f in factors):
        raise InputError("scale applies to paired sampling only")
    return factors


def _check_pairs(src_arrays: list[np.ndarray], tgt_arrays: list[np.ndarray], factors: tuple[int, ...]) -> None:
    """One target per source, each of the source's spatial shape times the scale."""
    if len(tgt_arrays) != len(src_arrays):
        raise InputError(
            f"paired training needs one target per source; got {len(src_arrays)} sources and {len(tgt_arrays)} targets"
        )
    for i, (s, t) in enumerate(zip(src_arrays, tgt_arrays, strict=True)):
        expected = tuple(n * f for n, f in zip(s.shape[1:], factors, strict=True))
        if tuple(t.shape[1:]) != expected:
            raise InputError(
                f"pair {i}: target spatial shape {tuple(t.shape[1:])} does not match the source's "
                f"{tuple(s.shape[1:])}" + (f" times the scale {factors}" if any(f != 1 for f in factors) else ""),
                _describe(t),
            )


def _augmentations(patch: tuple[int, ...], factors: tuple[int, ...], augment: bool) -> tuple[int, ...]:
    """The flips and rotations a patch may get: rotations by 90 degrees need a square YX patch (and scale)."""
    square = len(patch) >= 2 and patch[-1] == patch[-2] and factors[-1] == factors[-2]
    if not augment:
        return (0,)
    if square:
        return tuple(range(8))
    if len(patch) >= 2:
        return (0, 2, 4, 6)
    return (0, 4)


class PatchSampler:
    """Draw random (paired or unpaired) patches from lists of channel-first images.

    Parameters
    ----------
    sources
        Input images, each ``(C, *spatial)``; numpy arrays or memory maps.
    targets
        Target images, or ``None`` (self-supervised methods that build their targets themselves). Paired:
        one per source with the same spatial shape (times ``scale``). Unpaired: any number, any sizes.
    patch_shape
        Spatial patch size of the sources, e.g. ``(128, 128)`` or ``(16, 64, 64)``.
    paired
        Cut source and target patches at the same place (``True``) or draw them independently from their
        own lists (``False``, CycleGAN-style unpaired training).
    augment
        Apply one of the 8 rotations/flips in the YX plane (the last two axes; 3D data are never rotated
        out of plane). With a non-square YX patch only the 4 operations that keep its shape are used. In
        paired mode source and target get the same operation.
    foreground_bias
        Fraction (0 to 1) of patches drawn where the image is bright: the local mean over the patch window
        (of the target in paired mode, of the image itself otherwise) is above the
        ``foreground_percentile`` of the image's (downsampled, channel-averaged) pixels; when no window is,
        the brightest windows at or above that percentile of all windows' means are used (CSBDeep-like patch
        filtering). The rest are drawn uniformly.
    foreground_percentile
        Percentile that sets the foreground threshold.
    source_normalizer, target_normalizer
        Normalisers applied to every patch; per-image normalisers are fitted on each whole image (strided
        subsample) once, dataset-level ones on all images of the list together.
    source_params, target_params
        Fitted dataset-level parameters to use instead of fitting (e.g. those stored with a model).
    scale
        Target pixels per source pixel along each spatial axis in paired mode (super-resolution), e.g. 2.

    Raises
    ------
    InputError
        Empty lists, wrong dimensionality, mixed channel counts, an image smaller than the patch, paired lists
        of different lengths or mismatched shapes.

    Attributes
    ----------
    source_params, target_params
        The parameters used for every image (``None`` without a normaliser).
    """

    def __init__(
        self,
        sources: Sequence[np.ndarray],
        targets: Sequence[np.ndarray] | None,
        patch_shape: Sequence[int],
        *,
        paired: bool = True,
        augment: bool = True,
        foreground_bias: float = 0.0,
        foreground_percentile: float = 90.0,
        source_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        source_params: NormParams | None = None,
        target_params: NormParams | None = None,
        scale: int | Sequence[int] = 1,
    ) -> None:
        patch = tuple(int(p) for p in patch_shape)
        factors = _check_sampling(patch_shape, patch, paired, targets, foreground_bias, foreground_percentile, scale)
        self.patch_shape = patch
        self.paired = paired
        self.augment = augment
        self.foreground_bias = float(foreground_bias)
        self.scale = factors
        target_patch = tuple(p * f for p, f in zip(patch, factors, strict=True))

        src_arrays = _check_arrays(sources, patch, "source")
        tgt_arrays = _check_arrays(targets, target_patch, "target") if targets is not None else None
        if paired and tgt_arrays is not None:
            _check_pairs(src_arrays, tgt_arrays, factors)

        self._source = self._make_side(src_arrays, patch, source_normalizer, source_params)
        self._target = (
            self._make_side(tgt_arrays, target_patch, target_normalizer, target_params)
            if tgt_arrays is not None
            else None
        )
        self.source_params = self._source.params
        self.target_params = self._target.params if self._target is not None else None
        self._ops: tuple[int, ...] = _augmentations(patch, factors, augment)
        if self.foreground_bias > 0:
            self._find_foreground(src_arrays, tgt_arrays, target_patch, foreground_percentile)

    def _find_foreground(
        self,
        src_arrays: list[np.ndarray],
        tgt_arrays: list[np.ndarray] | None,
        target_patch: tuple[int, ...],
        percentile: float,
    ) -> None:
        """Where the foreground patches start, per image (paired: from the clean target, in source coordinates)."""
        if self.paired and self._target is not None:
            stride = self._stride(self.patch_shape, src_arrays)
            t_stride = tuple(s * f for s, f in zip(stride, self.scale, strict=True))
            fg = [_foreground_starts(t, target_patch, t_stride, percentile) for t in tgt_arrays or []]
            self._source.foreground, self._source.stride = fg, stride
            return
        for side in (self._source, self._target):
            if side is not None:
                side.stride = self._stride(side.patch, side.arrays)
                side.foreground = [_foreground_starts(a, side.patch, side.stride, percentile) for a in side.arrays]

    @staticmethod
    def _make_side(
        arrays: list[np.ndarray], patch: tuple[int, ...], normalizer: Normalizer | None, params: NormParams | None
    ) -> _Side:
        fitted: list[NormParams] | None = None
        if normalizer is not None:
            if params is not None:
                fitted = [params] * len(arrays)
            elif normalizer.per_image:
                fitted = [normalizer.fit(a) for a in arrays]
            else:
                fitted = [normalizer.fit(arrays)] * len(arrays)
        positions = np.array(
            [math.prod(n - p + 1 for n, p in zip(a.shape[1:], patch, strict=True)) for a in arrays], dtype=np.float64
        )
        return _Side(arrays, patch, fitted, normalizer, positions / positions.sum())

    @staticmethod
    def _stride(patch: tuple[int, ...], arrays: list[np.ndarray]) -> tuple[int, ...]:
        """Grid step of the foreground map: a quarter patch, coarser for images too big to scan."""
        stride = [max(1, p // 4) for p in patch]
        largest = max(math.prod(a.shape) for a in arrays)
        while largest / math.prod(stride) > _FOREGROUND_SAMPLES:
            axis = int(np.argmin([s / p for s, p in zip(stride, patch, strict=True)]))
            stride[axis] *= 2
        return tuple(stride)

    def _draw_start(self, side: _Side, rng: np.random.Generator, index: int, foreground: bool) -> tuple[int, ...]:
        spatial = side.arrays[index].shape[1:]
        if foreground and side.foreground is not None and len(side.foreground[index]):
            cell = side.foreground[index][rng.integers(len(side.foreground[index]))]
            return tuple(
                int(min(max(j * s - rng.integers(s), 0), n - p))
                for j, s, n, p in zip(cell, side.stride, spatial, side.patch, strict=True)
            )
        return tuple(int(rng.integers(n - p + 1)) for n, p in zip(spatial, side.patch, strict=True))

    def _transform(self, patch: np.ndarray, op: int) -> np.ndarray:
        if op == 0:
            return patch
        if patch.ndim >= 3:
            patch = np.rot90(patch, k=op % 4, axes=(-2, -1))
        if op >= 4:
            patch = patch[..., ::-1]
        return patch

    def _fill(self, side: _Side, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Draw ``batch_size`` patches independently from ``side``."""
        out = np.empty((batch_size, side.arrays[0].shape[0], *side.patch), dtype=np.float32)
        for b in range(batch_size):
            index = int(rng.choice(len(side.arrays), p=side.weights))
            start = self._draw_start(side, rng, index, rng.random() < self.foreground_bias)
            op = self._ops[rng.integers(len(self._ops))]
            out[b] = self._transform(side.read(index, start), op)
        return out

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw a batch.

        Parameters
        ----------
        rng
            The only source of randomness (e.g. ``step_rng(seed, step)``).
        batch_size
            Number of patches.

        Returns
        -------
        tuple of numpy.ndarray
            ``(source, target)``: float32 ``(B, C_source, *patch_shape)`` and ``(B, C_target, *target_patch)``
            (``target_patch`` is ``patch_shape`` times ``scale``), or ``None`` without targets.
        """
        if batch_size < 1:
            raise InputError(f"batch size must be positive, got {batch_size}")
        if not self.paired:
            assert self._target is not None
            return self._fill(self._source, rng, batch_size), self._fill(self._target, rng, batch_size)
        side = self._source
        source = np.empty((batch_size, side.arrays[0].shape[0], *side.patch), dtype=np.float32)
        target = None
        if self._target is not None:
            target = np.empty((batch_size, self._target.arrays[0].shape[0], *self._target.patch), dtype=np.float32)
        for b in range(batch_size):
            index = int(rng.choice(len(side.arrays), p=side.weights))
            start = self._draw_start(side, rng, index, rng.random() < self.foreground_bias)
            op = self._ops[rng.integers(len(self._ops))]
            source[b] = self._transform(side.read(index, start), op)
            if target is not None and self._target is not None:
                t_start = tuple(s * f for s, f in zip(start, self.scale, strict=True))
                target[b] = self._transform(self._target.read(index, t_start), op)
        return source, target

    __call__ = sample


def split_validation(
    arrays: Sequence[np.ndarray], fraction: float, seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out part of the training images for validation.

    With two or more images, whole images are held out: ``round(fraction * n)`` of them (at least one, and
    at least one left for training), chosen at random from ``seed``. With a single image, the last
    ``fraction`` of its Y axis (the second-to-last axis) becomes the validation image; both parts are views,
    so memory maps stay unread.

    The choice depends only on the number of images, their Y sizes, ``fraction`` and ``seed``, so calling it
    with the same arguments on a list of sources and on the matching list of targets (same shapes) splits
    the pairs consistently.

    Parameters
    ----------
    arrays
        Channel-first images ``(C, *spatial)``.
    fraction
        Share held out, between 0 and 1 (exclusive).
    seed
        Seed of the random choice of images.

    Returns
    -------
    tuple of list of numpy.ndarray
        ``(train, validation)``.

    Raises
    ------
    InputError
        ``fraction`` out of range, no images, or a single image too small to split.
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"validation fraction must be between 0 and 1, got {fraction}")
    items = list(arrays)
    if not items:
        raise InputError("no images to split into training and validation sets")
    if len(items) >= 2:
        n_val = min(len(items) - 1, max(1, round(fraction * len(items))))
        order = np.random.default_rng([int(seed), 0x5A11]).permutation(len(items))
        held = set(order[:n_val].tolist())
        return (
            [a for i, a in enumerate(items) if i not in held],
            [a for i, a in enumerate(items) if i in held],
        )
    image = items[0]
    if image.ndim < 2:
        raise InputError(f"cannot split an image of shape {tuple(image.shape)} spatially", _describe(image))
    ny = image.shape[-2]
    n_val = max(1, round(fraction * ny))
    if n_val >= ny:
        raise InputError(
            f"image with {ny} rows is too small to hold out {fraction:.0%} for validation", _describe(image)
        )
    return [image[..., : ny - n_val, :]], [image[..., ny - n_val :, :]]


def fit_patch_shape(patch_shape: Sequence[int], arrays: Sequence[np.ndarray]) -> tuple[int, ...]:
    """Shrink a spatial patch shape to fit the smallest of channel-first ``arrays``.

    For self-supervised training on a single small image. The two last (YX) sizes shrink together, so a square
    patch stays square (and keeps all 8 rotations and flips).

    Parameters
    ----------
    patch_shape
        Wanted spatial patch size, e.g. ``(64, 64)`` or ``(16, 64, 64)``.
    arrays
        Images ``(C, *spatial)``.

    Returns
    -------
    tuple of int
        The patch shape, each size at most the smallest image's.
    """
    patch = [int(p) for p in patch_shape]
    smallest = [min(int(a.shape[1 + i]) for a in arrays) for i in range(len(patch))]
    fitted = [min(p, n) for p, n in zip(patch, smallest, strict=True)]
    if len(fitted) >= 2 and patch[-1] == patch[-2]:
        fitted[-1] = fitted[-2] = min(fitted[-1], fitted[-2])
    return tuple(fitted)


def training_sampler(
    sources: Sequence[np.ndarray],
    targets: Sequence[np.ndarray] | None,
    patch_shape: Sequence[int],
    *,
    augment: bool,
    foreground_bias: float,
    validation_fraction: float,
    seed: int,
    validation_size: int,
) -> tuple[PatchSampler, tuple[np.ndarray, np.ndarray | None] | None]:
    """A paired training sampler and a fixed validation batch drawn from held-out images.

    ``validation_fraction`` of the images (or, with one image, of its Y extent; see :func:`split_validation`) is
    held out, unless that is 0 or leaves a validation part smaller than the patch: then every image trains and
    there is no validation batch.

    Parameters
    ----------
    sources, targets
        Channel-first images; ``targets`` pairs with ``sources`` (``None`` for methods that build their own).
    patch_shape
        Spatial patch size.
    augment, foreground_bias
        As for :class:`PatchSampler` (the validation batch is never augmented).
    validation_fraction
        Share held out (0: none).
    seed
        Seed of the split and of the validation batch.
    validation_size
        Patches in the validation batch.

    Returns
    -------
    tuple
        ``(sampler, validation_batch)``; ``validation_batch`` is ``None`` without held-out images.
    """
    patch = tuple(int(p) for p in patch_shape)
    train_src, val_src = list(sources), []
    train_tgt, val_tgt = (list(targets) if targets is not None else None), None
    single_too_small = len(train_src) == 1 and train_src[0].shape[-2] < 2 * patch[-2]
    if validation_fraction > 0 and not single_too_small:
        split_src, held_src = split_validation(sources, validation_fraction, seed)
        if all(n >= p for n, p in zip(held_src[0].shape[1:], patch, strict=True)):
            train_src, val_src = split_src, held_src
            if targets is not None:
                train_tgt, val_tgt = split_validation(targets, validation_fraction, seed)
    sampler = PatchSampler(train_src, train_tgt, patch, paired=True, augment=augment, foreground_bias=foreground_bias)
    if not val_src:
        return sampler, None
    val_sampler = PatchSampler(val_src, val_tgt, patch, paired=True, augment=False, foreground_bias=0.0)
    return sampler, val_sampler.sample(np.random.default_rng([int(seed), 7]), validation_size)
