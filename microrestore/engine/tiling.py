"""Streamed tiled inference that reproduces whole-image inference.

The design, in one place:

- **Tiles.** Along each spatial axis tiles start at ``0, stride, 2 stride, ...`` with
  ``stride = tile - overlap``; the last start is the first whose tile reaches the end of the axis, so tiles may
  reach past the end. ``tile``, ``overlap`` and ``halo`` are rounded to multiples of the network's
  ``multiple`` (tile down, overlap and halo up), so every tile start is a multiple of it.
- **Reading.** A tile is read as the index window ``[start - halo, start + tile + halo)``; indices outside the
  image are mirrored (reflect-101, e.g. ``-1 -> 1``, ``n -> n - 2``) as a function of the *global* index. Only
  the in-image hull of the window is sliced from the source, so a ``np.memmap`` is never loaded whole.
- **Reference.** Whole-image inference (:func:`predict_whole`) is the same procedure with a single tile
  covering the image rounded up to ``multiple``: reflect-pad by ``halo`` and up to the multiple, run, crop.
  For a network whose output pixels depend only on inputs within ``receptive_radius`` (and whose pooling
  grid is aligned, which the rounding above guarantees), every tile's central ``[start, start + tile)`` output
  then equals the reference once ``halo >= receptive_radius``: tiled == whole up to float rounding.
- **Blending.** Overlapping outputs are combined with a separable window that is 1 inside and a raised-cosine
  ramp across each overlap *with another tile* (strictly positive, and the two ramps of an overlap sum to 1),
  normalised by the summed weights. Because the tile grid is a product grid the summed weights are the product
  of per-axis sums, so the normaliser is kept as one 1D array per axis. Non-local networks (instance norm,
  channel attention, FNSM) differ slightly from tile to tile; the ramps hide the seams.
- **Streaming.** Tiles are processed in raster order, one band of tiles (same start along the first spatial
  axis) at a time. The accumulator holds ``tile`` rows of the first axis at full extent along the others; when a
  band is done the rows no later tile touches (``stride`` rows, or the rest at the end) are normalised,
  post-processed and written to ``out`` (any array, e.g. a ``np.memmap`` of the input's dtype) or handed to a
  ``sink``. Peak memory is ``O(tile x width)`` plus one batch of windows, independent of the image height.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from functools import reduce
from typing import Any

import numpy as np
import torch

from microrestore.errors import MicrorestoreError

__all__ = [
    "TilePlan",
    "available_memory",
    "choose_tile",
    "predict_tiled",
    "predict_whole",
    "read_window",
    "reflect_index",
]

IntOrSeq = int | Sequence[int]
Sink = Callable[[tuple[slice, ...], np.ndarray], Any]


def _ceil_to(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _per_axis(value: IntOrSeq, ndim: int, name: str, minimum: int) -> tuple[int, ...]:
    values = (int(value),) * ndim if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
    if len(values) != ndim:
        raise ValueError(f"{name} needs one value or {ndim} (one per spatial axis), got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return values


def reflect_index(index: np.ndarray, n: int) -> np.ndarray:
    """Map global indices into ``[0, n)`` by reflect-101 mirroring, periodically for any distance.

    Parameters
    ----------
    index
        Integer indices, possibly negative or ``>= n``.
    n
        Size of the axis.

    Returns
    -------
    numpy.ndarray
        Indices in ``[0, n)``: ``-1 -> 1``, ``n -> n - 2``, period ``2 (n - 1)``; all 0 when ``n == 1``.
    """
    index = np.asarray(index)
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    m = np.mod(index, period)
    return np.where(m >= n, period - m, m)


class TilePlan:
    """Tile layout of an image: starts, read windows and blending weights along each spatial axis.

    Parameters
    ----------
    shape
        Spatial shape of the image (2 or 3 axes; any number works).
    tile
        Tile size (one value or one per axis), rounded down to a multiple of ``multiple`` (at least one
        multiple) and capped at the axis rounded up to ``multiple``.
    overlap
        Overlap of neighbouring tiles, rounded up to a multiple of ``multiple`` and capped at
        ``tile - multiple`` (0 where one tile covers the axis).
    halo
        Context read on each side of a tile, rounded up to a multiple of ``multiple``.
    multiple
        Size multiple the network needs (``size_multiple``), one value or one per axis.

    Attributes
    ----------
    shape, tile, overlap, halo, multiple, stride : tuple of int
        Per-axis values after rounding; ``stride = tile - overlap``.
    """

    def __init__(
        self, shape: Sequence[int], tile: IntOrSeq, overlap: IntOrSeq = 0, halo: IntOrSeq = 0, multiple: IntOrSeq = 1
    ) -> None:
        self.shape = tuple(int(n) for n in shape)
        nd = len(self.shape)
        if nd == 0 or min(self.shape) < 1:
            raise ValueError(f"shape must have positive sizes, got {tuple(shape)}")
        self.multiple = _per_axis(multiple, nd, "multiple", 1)
        tiles = _per_axis(tile, nd, "tile", 1)
        overlaps = _per_axis(overlap, nd, "overlap", 0)
        halos = _per_axis(halo, nd, "halo", 0)
        t_out, o_out, h_out = [], [], []
        for n, t, o, h, m in zip(self.shape, tiles, overlaps, halos, self.multiple, strict=True):
            extent = _ceil_to(n, m)
            t = min(max(m, t // m * m), extent)
            o = 0 if t >= n else min(_ceil_to(o, m), t - m)
            t_out.append(t)
            o_out.append(o)
            h_out.append(_ceil_to(h, m))
        self.tile = tuple(t_out)
        self.overlap = tuple(o_out)
        self.halo = tuple(h_out)
        self.stride = tuple(t - o for t, o in zip(self.tile, self.overlap, strict=True))
        self._starts = tuple(self._axis_starts(a) for a in range(nd))

    def __repr__(self) -> str:
        return (
            f"TilePlan(shape={self.shape}, tile={self.tile}, overlap={self.overlap}, halo={self.halo}, "
            f"multiple={self.multiple})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TilePlan):
            return NotImplemented
        return repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.shape)

    def _axis_starts(self, axis: int) -> tuple[int, ...]:
        n, t, s = self.shape[axis], self.tile[axis], self.stride[axis]
        starts = [0]
        while starts[-1] + t < n:
            starts.append(starts[-1] + s)
        return tuple(starts)

    def starts(self, axis: int) -> tuple[int, ...]:
        """Tile starts along ``axis`` (global pixel indices)."""
        return self._starts[axis]

    @property
    def grid(self) -> tuple[int, ...]:
        """Number of tiles along each axis."""
        return tuple(len(s) for s in self._starts)

    @property
    def n_tiles(self) -> int:
        """Total number of tiles."""
        return math.prod(self.grid)

    @property
    def window_shape(self) -> tuple[int, ...]:
        """Spatial shape of each read window, ``tile + 2 halo``."""
        return tuple(t + 2 * h for t, h in zip(self.tile, self.halo, strict=True))

    def read_indices(self, axis: int, start: int) -> np.ndarray:
        """Source indices of the window ``[start - halo, start + tile + halo)`` along ``axis`` (mirrored)."""
        h = self.halo[axis]
        return reflect_index(np.arange(start - h, start + self.tile[axis] + h), self.shape[axis])

    def blend_weights(self, axis: int, k: int) -> np.ndarray:
        """Blending weights (float32, length ``tile``) of the ``k``-th tile along ``axis``.

        1 in the interior; a raised-cosine ramp ``sin^2(pi (j + 1/2) / (2 overlap))`` up across the overlap
        with the previous tile and down across the overlap with the next; never 0.
        """
        t, o = self.tile[axis], self.overlap[axis]
        w = np.ones(t, dtype=np.float64)
        if o > 0:
            ramp = np.sin(np.pi * (np.arange(o) + 0.5) / (2 * o)) ** 2
            if k > 0:
                w[:o] *= ramp
            if k < len(self._starts[axis]) - 1:
                w[t - o :] *= ramp[::-1]
        return w.astype(np.float32)

    def normaliser(self, axis: int) -> np.ndarray:
        """Sum of the blending weights of all tiles along ``axis`` at each pixel (float32, length ``shape``)."""
        n = self.shape[axis]
        total = np.zeros(n, dtype=np.float64)
        for k, s in enumerate(self._starts[axis]):
            length = min(self.tile[axis], n - s)
            total[s : s + length] += self.blend_weights(axis, k)[:length]
        return total.astype(np.float32)


def read_window(image: Any, plan: TilePlan, starts: Sequence[int]) -> np.ndarray:
    """Read one tile's window (halo included, mirrored outside the image) from ``image``.

    Parameters
    ----------
    image
        ``(C, *spatial)`` array of any dtype, e.g. a ``np.memmap``; only the in-image hull of the window is
        sliced from it.
    plan
        The tile plan.
    starts
        Tile start along each spatial axis.

    Returns
    -------
    numpy.ndarray
        ``(C, *plan.window_shape)`` in the image's dtype.
    """
    indices = [plan.read_indices(a, s) for a, s in enumerate(starts)]
    hull = tuple(slice(int(i.min()), int(i.max()) + 1) for i in indices)
    block = np.asarray(image[(slice(None), *hull)])
    for axis, (idx, sl) in enumerate(zip(indices, hull, strict=True)):
        local = idx - sl.start
        if local.size != block.shape[axis + 1] or np.any(local != np.arange(local.size)):
            block = np.take(block, local, axis=axis + 1)
    return block


def available_memory(device: torch.device | str = "cpu") -> int:
    """Free memory in bytes: CUDA free memory for a CUDA device, else available host memory (psutil)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available)


def choose_tile(
    spatial_shape: Sequence[int],
    ndim: int | None = None,
    budget_bytes: int | None = None,
    channels_hint: int = 64,
    *,
    multiple: IntOrSeq = 1,
    halo: IntOrSeq = 0,
    batch_size: int = 1,
    device: torch.device | str = "cpu",
    overhead: float = 4.0,
    max_tile: int = 1024,
) -> tuple[int, ...]:
    """Choose the largest cubic-ish tile whose batch of windows fits a memory budget.

    The estimate is ``batch_size * prod(tile + 2 halo) * channels_hint * 4 bytes * overhead``: ``channels_hint``
    float32 feature maps per pixel, times ``overhead`` for the maps alive at once (skips, concatenations,
    scratch). Axes shorter than the tile get the whole axis and leave the budget to the others.

    Parameters
    ----------
    spatial_shape
        Spatial shape of the image.
    ndim
        Number of spatial axes; checked against ``spatial_shape`` when given.
    budget_bytes
        Memory budget; default a quarter of :func:`available_memory` on ``device``.
    channels_hint
        Typical feature channels of the network at full resolution.
    multiple, halo
        As in :class:`TilePlan` (tiles are multiples of ``multiple``; the halo is part of each window).
    batch_size
        Tiles per forward pass.
    device
        Device whose memory sets the default budget.
    overhead
        Safety factor of the estimate.
    max_tile
        Upper bound of the tile edge (larger tiles are not faster, and the band buffer grows with them).

    Returns
    -------
    tuple of int
        Tile size per axis (at least one ``multiple``).
    """
    shape = tuple(int(n) for n in spatial_shape)
    nd = len(shape)
    if ndim is not None and ndim != nd:
        raise ValueError(f"ndim={ndim} but the spatial shape {shape} has {nd} axes")
    mult = _per_axis(multiple, nd, "multiple", 1)
    halos = tuple(_ceil_to(h, m) for h, m in zip(_per_axis(halo, nd, "halo", 0), mult, strict=True))
    if budget_bytes is None:
        budget_bytes = available_memory(device) // 4
    per_pixel = max(1, batch_size) * max(1, channels_hint) * 4 * overhead
    extents = tuple(_ceil_to(n, m) for n, m in zip(shape, mult, strict=True))

    def tiles_for(edge: int) -> tuple[int, ...]:
        return tuple(min(max(m, edge // m * m), e) for m, e in zip(mult, extents, strict=True))

    def cost(edge: int) -> float:
        return math.prod(t + 2 * h for t, h in zip(tiles_for(edge), halos, strict=True)) * per_pixel

    lo, hi = 1, max(1, min(max(extents), max_tile))
    if cost(lo) > budget_bytes:
        return tiles_for(lo)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget_bytes:
            lo = mid
        else:
            hi = mid - 1
    return tiles_for(lo)


def _outer(vectors: Sequence[np.ndarray]) -> np.ndarray:
    return reduce(np.multiply.outer, vectors)


def _writer(
    out: Any, sink: Any, out_channels: int, spatial: tuple[int, ...]
) -> tuple[Callable[[tuple[slice, ...], np.ndarray], Any], Any]:
    """Where finished rows go: ``(write(index, block), out)``, ``out`` a new array when neither is given."""
    if out is not None and sink is not None:
        raise ValueError("give either out or sink, not both")
    if sink is None:
        if out is None:
            out = np.empty((out_channels, *spatial), dtype=np.float32)
        if tuple(out.shape) != (out_channels, *spatial):
            raise ValueError(f"out has shape {tuple(out.shape)}, expected {(out_channels, *spatial)}")
        return out.__setitem__, out
    if callable(sink):
        return sink, out
    if hasattr(sink, "__setitem__"):
        return sink.__setitem__, out
    raise TypeError("sink must be a callable sink(index, block) or support sink[index] = block")


class _Band:
    """The accumulator of one band of tile rows: blended network outputs until the band's rows are final.

    Each tile's centre (its halo cropped) is weighted by the blending window and added; when a band of tiles
    is done, the rows before the next band's start are divided by the summed weights, post-processed, written
    and shifted out, so memory holds one band, never the image.
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        plan: TilePlan,
        out_channels: int,
        device: torch.device | str,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.forward, self.plan, self.out_channels, self.progress = forward, plan, out_channels, progress
        self.device = torch.device(device)
        nd = plan.ndim
        self.starts = [plan.starts(a) for a in range(nd)]
        self.weights = [[plan.blend_weights(a, k) for k in range(len(self.starts[a]))] for a in range(nd)]
        self.norms = [plan.normaliser(a) for a in range(nd)]
        self.rows = min(plan.tile[0], plan.shape[0])
        self.acc = np.zeros((out_channels, self.rows, *plan.shape[1:]), dtype=np.float32)
        self.crop = (slice(None), *(slice(h, h + t) for h, t in zip(plan.halo, plan.tile, strict=True)))
        self.expected = (out_channels, *plan.window_shape)
        self.done, self.max_batch_bytes = 0, 0
        self.flushes: list[tuple[int, int]] = []

    def run_batch(self, windows: list[np.ndarray], keys: list[tuple[int, ...]], band_start: int) -> None:
        """Run the network on a batch of windows and add each result to the band."""
        batch = np.stack(windows)
        self.max_batch_bytes = max(self.max_batch_bytes, batch.nbytes)
        result = self.forward(torch.from_numpy(batch).to(self.device))
        if not isinstance(result, torch.Tensor) or tuple(result.shape[1:]) != self.expected:
            got = tuple(result.shape) if isinstance(result, torch.Tensor) else type(result).__name__
            raise MicrorestoreError(
                f"the network returned {got} for a batch of {tuple(batch.shape)}; expected "
                f"(B, {self.out_channels}, *window) with window {self.plan.window_shape}"
            )
        result_np = result.detach().to("cpu", torch.float32).numpy()
        for b, key in enumerate(keys):
            self._add(result_np[b][self.crop], key, band_start)
        self.done += len(keys)
        if self.progress is not None:
            self.progress(self.done, self.plan.n_tiles)

    def _add(self, core: np.ndarray, key: tuple[int, ...], band_start: int) -> None:
        """Add one tile's weighted centre at its place in the band."""
        plan, spatial = self.plan, self.plan.shape
        acc_index: list[slice] = [slice(None)]
        core_index: list[slice] = [slice(None)]
        ws = []
        for axis, k in enumerate(key):
            s = self.starts[axis][k]
            length = min(plan.tile[axis], spatial[axis] - s)
            offset = s - band_start if axis == 0 else s
            acc_index.append(slice(offset, offset + length))
            core_index.append(slice(0, length))
            ws.append(self.weights[axis][k][:length])
        self.acc[tuple(acc_index)] += core[tuple(core_index)] * _outer(ws)

    def flush(
        self,
        i0: int,
        postprocess: Callable[[np.ndarray], np.ndarray] | None,
        write: Callable[[tuple[slice, ...], np.ndarray], Any],
    ) -> None:
        """Normalise, post-process and write the rows before the next band's start; shift them out."""
        s0, n0, rest = self.starts[0][i0], self.plan.shape[0], self.plan.shape[1:]
        end = self.starts[0][i0 + 1] if i0 + 1 < len(self.starts[0]) else n0
        rows = end - s0
        block = self.acc[:, :rows] / _outer([self.norms[0][s0:end], *self.norms[1:]])
        if postprocess is not None:
            block = postprocess(block)
        write((slice(None), slice(s0, end), *(slice(0, n) for n in rest)), block)
        self.flushes.append((s0, end))
        if rows < self.rows:
            self.acc[:, : self.rows - rows] = self.acc[:, rows:]
        self.acc[:, self.rows - rows :] = 0

    def stats(self) -> dict[str, Any]:
        """What the run held in memory, for tests and benchmarks."""
        return {
            "plan": self.plan,
            "n_tiles": self.plan.n_tiles,
            "accumulator_shape": tuple(self.acc.shape),
            "accumulator_bytes": int(self.acc.nbytes),
            "max_batch_bytes": int(self.max_batch_bytes),
            "flushes": self.flushes,
        }


def _band_batches(
    image: Any,
    plan: TilePlan,
    starts: Sequence[Sequence[int]],
    i0: int,
    batch_size: int,
    preprocess: Callable[[np.ndarray], np.ndarray] | None,
) -> Iterator[tuple[list[np.ndarray], list[tuple[int, ...]]]]:
    """The windows of the tiles of band ``i0`` (read, pre-processed, float32), in batches of ``batch_size``."""
    windows: list[np.ndarray] = []
    keys: list[tuple[int, ...]] = []
    for combo in itertools.product(*(range(len(s)) for s in starts[1:])):
        key = (i0, *combo)
        window = read_window(image, plan, [starts[a][k] for a, k in enumerate(key)])
        if preprocess is not None:
            window = preprocess(window)
        windows.append(np.ascontiguousarray(window, dtype=np.float32))
        keys.append(key)
        if len(windows) >= batch_size:
            yield windows, keys
            windows, keys = [], []
    if windows:
        yield windows, keys


def _run(
    forward: Callable[[torch.Tensor], torch.Tensor],
    image: Any,
    plan: TilePlan,
    *,
    out_channels: int,
    batch_size: int,
    device: torch.device | str,
    preprocess: Callable[[np.ndarray], np.ndarray] | None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None,
    out: Any,
    sink: Any,
    progress: Callable[[int, int], None] | None,
    stats: dict[str, Any] | None,
) -> Any:
    write, out = _writer(out, sink, out_channels, plan.shape)
    band = _Band(forward, plan, out_channels, device, progress)
    with torch.inference_mode():
        for i0, s0 in enumerate(band.starts[0]):
            for windows, keys in _band_batches(image, plan, band.starts, i0, batch_size, preprocess):
                band.run_batch(windows, keys, s0)
            band.flush(i0, postprocess, write)
    if stats is not None:
        stats.update(band.stats())
    return None if sink is not None else out


def _check_image(image: Any) -> tuple[int, ...]:
    shape = tuple(int(n) for n in image.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"image must be (C, Y, X) or (C, Z, Y, X), got shape {shape}")
    return shape[1:]


def predict_tiled(
    forward: Callable[[torch.Tensor], torch.Tensor],
    image: Any,
    *,
    out_channels: int,
    tile: IntOrSeq | None = None,
    overlap: IntOrSeq = 32,
    halo: IntOrSeq = 0,
    multiple: IntOrSeq = 1,
    batch_size: int = 4,
    device: torch.device | str = "cpu",
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    out: Any = None,
    sink: Sink | Any = None,
    progress: Callable[[int, int], None] | None = None,
    channels_hint: int = 64,
    stats: dict[str, Any] | None = None,
) -> Any:
    """Run ``forward`` over ``image`` tile by tile, streaming the blended result into ``out`` or ``sink``.

    Parameters
    ----------
    forward
        Maps a float32 batch ``(B, C_in, *window)`` on ``device`` to ``(B, out_channels, *window)``; put a
        network in eval mode first. Runs under ``torch.inference_mode()``.
    image
        ``(C_in, Y, X)`` or ``(C_in, Z, Y, X)`` array of any dtype, e.g. a ``np.memmap`` (never loaded whole).
    out_channels
        Channels of the network output.
    tile
        Tile size (int or per axis) of the *output* region of each tile; ``None`` chooses it with
        :func:`choose_tile` from the free memory of ``device``.
    overlap
        Overlap between neighbouring tiles, blended with raised-cosine ramps.
    halo
        Context read on each side of a tile and cropped from its output; use at least the network's
        ``receptive_radius`` for tiled == whole-image results.
    multiple
        The network's ``size_multiple``; tile, overlap and halo are rounded to multiples of it.
    batch_size
        Tiles per forward pass (tiles of one band are batched together).
    device
        Where ``forward`` runs; outputs come back to the CPU as float32.
    preprocess
        Applied to each read window (``(C_in, *window)`` in the image's dtype) before it becomes float32, e.g.
        normalisation. It must act pixel by pixel (with parameters fitted on the whole image) for tiled ==
        whole.
    postprocess
        Applied to each flushed float32 block ``(out_channels, rows, *rest)`` before writing, e.g.
        denormalisation or clipping.
    out
        Output array ``(out_channels, *spatial)`` of any dtype (a memmap works); blocks are written with
        ``out[index] = block``, so integer outputs truncate: round and clip in ``postprocess`` or use ``sink``.
    sink
        Instead of ``out``: ``sink(index, block)`` (or an object supporting ``sink[index] = block``) receives
        each finished block, ``index`` being a tuple of slices ``(channels, rows, *full extents)``.
    progress
        ``progress(tiles_done, tiles_total)`` after each forward pass.
    channels_hint
        Feature channels for the automatic tile size.
    stats
        When given, filled with ``plan``, ``n_tiles``, ``accumulator_shape``, ``accumulator_bytes``,
        ``max_batch_bytes`` and ``flushes`` (the ``(start, end)`` rows of each write).

    Returns
    -------
    numpy.ndarray or None
        ``out`` (a new float32 array when neither ``out`` nor ``sink`` is given); ``None`` with a ``sink``.
    """
    spatial = _check_image(image)
    if tile is None:
        tile = choose_tile(
            spatial, channels_hint=channels_hint, multiple=multiple, halo=halo, batch_size=batch_size, device=device
        )
    plan = TilePlan(spatial, tile, overlap, halo, multiple)
    return _run(
        forward,
        image,
        plan,
        out_channels=out_channels,
        batch_size=max(1, int(batch_size)),
        device=device,
        preprocess=preprocess,
        postprocess=postprocess,
        out=out,
        sink=sink,
        progress=progress,
        stats=stats,
    )


def predict_whole(
    forward: Callable[[torch.Tensor], torch.Tensor],
    image: Any,
    *,
    out_channels: int,
    halo: IntOrSeq = 0,
    multiple: IntOrSeq = 1,
    device: torch.device | str = "cpu",
    preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    out: Any = None,
    sink: Sink | Any = None,
    progress: Callable[[int, int], None] | None = None,
    stats: dict[str, Any] | None = None,
) -> Any:
    """Whole-image inference: the reference that :func:`predict_tiled` reproduces.

    The image is reflect-padded (reflect-101) by ``halo`` on each side and at the end up to a multiple of
    ``multiple``, run in one forward pass, and cropped. It is :func:`predict_tiled` with a single tile, so it
    shares its reading, cropping and writing code; memory scales with the whole image.

    Parameters
    ----------
    forward, image, out_channels, halo, multiple, device, preprocess, postprocess, out, sink, progress, stats
        As in :func:`predict_tiled`.

    Returns
    -------
    numpy.ndarray or None
        As :func:`predict_tiled`.
    """
    spatial = _check_image(image)
    mult = _per_axis(multiple, len(spatial), "multiple", 1)
    tile = tuple(_ceil_to(n, m) for n, m in zip(spatial, mult, strict=True))
    plan = TilePlan(spatial, tile, 0, halo, multiple)
    return _run(
        forward,
        image,
        plan,
        out_channels=out_channels,
        batch_size=1,
        device=device,
        preprocess=preprocess,
        postprocess=postprocess,
        out=out,
        sink=sink,
        progress=progress,
        stats=stats,
    )
