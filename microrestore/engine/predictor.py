"""Inference with a trained network over images of any axes, tiled and streamed.

:class:`NetworkPredictor` is the predictor every network method can use: it loops over the image's
non-model axes (T, Z for 2D models, C when the model takes one channel), normalises with the model's saved
normalisation, runs tiled inference, maps the result back to the input's units and writes it into the
caller's output (which may be a memory-mapped file of the input's dtype).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError, MicrorestoreError
from microrestore.plugins.registry import PredictOptions


@dataclass
class AxesLayout:
    """How an image's axes map onto a model's ``(C, *spatial)`` input.

    Attributes
    ----------
    loop
        Axes iterated over (each index is one model call).
    channel
        The channel axis letter when the model takes several channels, else ``None``.
    spatial
        The model's spatial axes (``"YX"`` or ``"ZYX"``).
    """

    loop: str
    channel: str | None
    spatial: str

    @classmethod
    def plan(cls, axes: str, shape: tuple[int, ...], ndim: int, in_channels: int, path: Any = None) -> AxesLayout:
        """Choose the layout for an image with ``axes``/``shape`` and a model of ``ndim`` spatial dims."""
        spatial = "ZYX" if ndim == 3 else "YX"
        missing = [a for a in spatial if a not in axes]
        if missing:
            raise InputError(
                f"a {ndim}D model needs axes {spatial} but the image has axes {axes!r}"
                + (" (pass --axes if the metadata is wrong)" if path else ""),
                path,
            )
        channel = None
        if in_channels > 1:
            if "C" not in axes or shape[axes.index("C")] != in_channels:
                have = shape[axes.index("C")] if "C" in axes else 1
                raise InputError(f"the model takes {in_channels} channels but the image has {have}", path)
            channel = "C"
        loop = "".join(a for a in axes if a not in spatial and a != channel)
        return cls(loop=loop, channel=channel, spatial=spatial)

    def blocks(self, axes: str, shape: tuple[int, ...]) -> Iterator[tuple[Any, ...]]:
        """Yield, for each loop position, the index into the image in its own axes order."""
        loop_shape = [shape[axes.index(a)] for a in self.loop]
        for position in np.ndindex(*loop_shape):
            index: list[Any] = [slice(None)] * len(axes)
            for letter, i in zip(self.loop, position):
                index[axes.index(letter)] = i
            yield tuple(index)

    def model_order(self, axes: str) -> list[int]:
        """Permutation taking the indexed block (loop axes removed) to ``(C?, *spatial)``."""
        kept = [a for a in axes if a not in self.loop]
        wanted = ([self.channel] if self.channel else []) + list(self.spatial)
        return [kept.index(a) for a in wanted]


class AxesSink:
    """Adapter that lets tiled inference write ``(C, *spatial)`` blocks into an output in the image's order."""

    def __init__(self, out: Any, base: tuple[Any, ...], order: list[int], has_channel: bool) -> None:
        self.out = out
        self.base = base
        self.order = order
        self.inverse = list(np.argsort(order))
        self.has_channel = has_channel

    def __setitem__(self, index: tuple[Any, ...], block: np.ndarray) -> None:
        if not self.has_channel:  # tiling writes (1, *spatial); the image has no model channel axis
            index, block = index[1:], block[0]
        kept_positions = [i for i, b in enumerate(self.base) if isinstance(b, slice)]
        full = list(self.base)
        for model_dim, sub in enumerate(index):
            full[kept_positions[self.order[model_dim]]] = sub
        self.out[tuple(full)] = np.transpose(block, self.inverse)


class NetworkPredictor:
    """Predictor for a single network trained on normalised images.

    Parameters
    ----------
    network
        The torch module, in eval mode, mapping ``(B, C_in, *spatial)`` to ``(B, C_out, *spatial)``.
    normalization
        Dict form of the model's normaliser (see :mod:`microrestore.engine.normalization`).
    options
        Device, tile, overlap and batch options.
    ndim
        Spatial dims of the model (2 or 3).
    in_channels, out_channels
        Channels of the network.
    output_normalization
        Dict form of a *fixed* normaliser that maps the network's output back to the output's units, when it
        differs from the input's (an A -> B model whose domains have their own intensity scales). Default:
        the input's normaliser, with the parameters fitted on the input.
    output_range
        ``(low, high)`` the output is kept within (e.g. the exact image of a tanh output layer, so that float
        rounding cannot leave it). Unlike ``output_transform`` it can be written in bioimage.io terms.
    output_transform
        Optional mapping applied to each denormalised block (e.g. clamp at zero for a method that says so). A
        model with one cannot be exported to bioimage.io (the mapping is opaque).
    """

    def __init__(
        self,
        network: Any,
        normalization: dict[str, Any],
        options: PredictOptions,
        *,
        ndim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        output_normalization: dict[str, Any] | None = None,
        output_range: tuple[float, float] | None = None,
        output_transform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        import torch

        from microrestore.engine.device import resolve_device, resolve_precision
        from microrestore.engine.normalization import normalizer_from_dict

        self.device = resolve_device(options.device)
        self.precision = resolve_precision(self.device, options.precision)
        self.network = network.to(self.device).eval()
        # channels_last lets oneDNN/cuDNN pick their fast 2D convolution kernels (about 2x on CPU).
        self.memory_format = torch.channels_last if ndim == 2 else torch.contiguous_format
        self.network = self.network.to(memory_format=self.memory_format)
        self.normalizer = normalizer_from_dict(normalization)
        self.options = options
        self.ndim = ndim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.output_normalizer = None if output_normalization is None else normalizer_from_dict(output_normalization)
        if self.output_normalizer is not None and self.output_normalizer.per_image:
            raise ValueError("output_normalization must be a fixed normaliser (the output has no statistics)")
        self.output_range = None if output_range is None else (float(output_range[0]), float(output_range[1]))
        self.output_transform = output_transform
        self.multiple = int(getattr(network, "size_multiple", 1))
        radius = int(getattr(network, "receptive_radius", options.overlap))
        self.halo = -(-radius // self.multiple) * self.multiple
        # A local network (output depends only on inputs within its receptive radius) is exact with the halo
        # alone, so its tiles need no blending overlap; instance norm, attention or FFT layers need one.
        self.is_local = bool(getattr(network, "is_local", False))
        self.batch_size = options.batch_size or (1 if self.device.type == "cpu" else 4)
        self._torch = torch
        self._compiled: Any = None
        self._tile_cap: int | None = None  # lowered after an out-of-memory error, for the images that follow
        #: What the model was trained on (``provenance.domain``), checked by :meth:`domain_warnings`.
        self.domain: dict[str, Any] | None = None
        self.model_name = "the model"

    def domain_warnings(self, image: Any) -> list[str]:
        """Lines saying how ``image`` differs from the model's training data (see :mod:`microrestore.engine.domain`)."""
        from microrestore.engine.domain import check

        return check(self.domain, image, self.model_name)

    @classmethod
    def from_spec(
        cls,
        network: Any,
        spec: dict[str, Any],
        normalization: dict[str, Any],
        options: PredictOptions,
        **kwargs: Any,
    ) -> NetworkPredictor:
        """Build a predictor whose dimensions and channels come from the network's saved ``spec``."""
        return cls(
            network,
            normalization,
            options,
            ndim=int(spec.get("ndim", 2)),
            in_channels=int(spec.get("in_channels", 1)),
            out_channels=int(spec.get("out_channels", 1)),
            **kwargs,
        )

    def plan_tiles(self, spatial_shape: list[int]) -> tuple[tuple[int, ...], int]:
        """Tile size per spatial axis and blending overlap for an image of ``spatial_shape``.

        Tiles are balanced so that equal tiles cover each axis without overhanging it (a 2048 px axis with a
        512 px limit gets four 512 px tiles, not five).
        """
        from microrestore.engine.tiling import choose_tile

        overlap = 0 if self.is_local else self.options.overlap
        if self.options.tile is None:
            # On a CPU, tiles of about 512 px run faster per pixel than larger ones (cache); on a GPU the
            # memory budget decides.
            limit = 512 if self.device.type == "cpu" else 1024
            tile = choose_tile(
                spatial_shape,
                self.ndim,
                multiple=self.multiple,
                halo=self.halo,
                batch_size=self.batch_size,
                device=self.device,
                max_tile=limit,
            )
        else:
            tile = (self.options.tile,) * len(spatial_shape)
        if self._tile_cap is not None:
            tile = tuple(min(int(t), self._tile_cap) for t in tile)
        m = self.multiple
        balanced = []
        for size, limit_t in zip(spatial_shape, tile):
            limit_t = max(m, min(int(limit_t), -(-size // m) * m))
            ov = min(overlap, limit_t - m)
            count = max(1, -(-(size - ov) // (limit_t - ov)))
            per_tile = -(-(size + (count - 1) * ov) // count)
            balanced.append(max(-(-per_tile // m) * m, ov + m))
        return tuple(balanced), overlap

    def to_output_units(self, block: np.ndarray, params: Any) -> np.ndarray:
        """Map a block of network output to the output's units (``params``: the input normaliser's fit)."""
        if self.output_normalizer is not None:
            result = self.output_normalizer.invert(block)
            if self.output_range is not None:
                result = np.clip(result, *self.output_range, out=result)
            back = getattr(self.normalizer, "restore_units", None)
            if back is not None:  # a calibrated input: the output comes back from the reference camera's units
                result = back(result, params)
        else:
            result = self.normalizer.invert(block, params)
            if self.output_range is not None:
                result = np.clip(result, *self.output_range, out=result)
        return self.output_transform(result) if self.output_transform else result

    def forward(self, batch: Any) -> Any:
        """Run the network on a batch of normalised tiles (under autocast for bf16/fp16, compiled if asked).

        With ``options.tta`` the result is the mean over the 8 rotations and flips of the tiles in YX, each
        output mapped back to the tile's orientation.
        """
        if not self.options.tta:
            return self._forward_once(batch)
        torch = self._torch
        total = None
        for turns in range(4):
            for flip in (False, True):
                view = torch.rot90(batch, turns, dims=(-2, -1))
                view = torch.flip(view, dims=(-1,)) if flip else view
                result = self._forward_once(view)
                result = torch.flip(result, dims=(-1,)) if flip else result
                result = torch.rot90(result, -turns, dims=(-2, -1))
                total = result if total is None else total + result
        return total / 8.0

    def _forward_once(self, batch: Any) -> Any:
        from microrestore.engine.device import autocast_context

        network = self._compiled_network() if self.options.compile else self.network
        with autocast_context(self.device, self.precision):
            result = network(batch.contiguous(memory_format=self.memory_format))
        return result.float() if result.dtype != self._torch.float32 else result

    def _compiled_network(self) -> Any:
        if self._compiled is None:
            try:
                self._compiled = self._torch.compile(self.network)
            except Exception as exc:  # no compiler for this platform: eager mode still gives the result
                warnings.warn(f"torch.compile failed ({type(exc).__name__}: {exc}); running uncompiled", stacklevel=2)
                self._compiled = self.network
        return self._compiled

    def predict(self, image: Any, out: Any = None) -> np.ndarray:
        """Restore ``image`` (an ImageData) into ``out`` or a new float32 array."""
        from microrestore.engine.tiling import predict_tiled

        data = image.data
        if self.out_channels != self.in_channels and self.in_channels > 1:
            raise InputError("models that change the channel count need an explicit output layout", image.path)
        layout = AxesLayout.plan(image.axes, tuple(data.shape), self.ndim, self.in_channels, image.path)
        if out is None:
            out = np.empty(data.shape, dtype=np.float32)
        params = self.normalizer.fit(data)
        order = layout.model_order(image.axes)
        blocks = list(layout.blocks(image.axes, tuple(data.shape)))

        def pre(block: np.ndarray) -> np.ndarray:
            normalised = self.normalizer.apply(block, params)
            check_normalised_range(normalised, block, image.path)
            return normalised

        def post(block: np.ndarray) -> np.ndarray:
            return self.to_output_units(block, params)

        spatial_shape = [int(data.shape[image.axes.index(a)]) for a in layout.spatial]
        tile, overlap = self.plan_tiles(spatial_shape)
        for done, index in enumerate(blocks):
            view = np.transpose(data[index], order)
            if layout.channel is None:
                view = view[np.newaxis]
            sink = AxesSink(out, index, order, has_channel=layout.channel is not None)

            def report(tiles_done: int, tiles_total: int, block: int = done) -> None:
                self.options.report(block * tiles_total + tiles_done, len(blocks) * tiles_total)

            while True:
                counts = _sink_counts(out)
                try:
                    predict_tiled(
                        self.forward,
                        view,
                        out_channels=self.out_channels,
                        tile=tile,
                        overlap=overlap,
                        halo=self.halo,
                        multiple=self.multiple,
                        batch_size=self.batch_size,
                        device=self.device,
                        preprocess=pre,
                        postprocess=post,
                        sink=sink,
                        progress=report,
                    )
                    break
                except Exception as exc:
                    if not is_out_of_memory(exc):
                        raise
                    # Run the block again with half the batch, or half the tile: every row is rewritten, and
                    # the sink's counts of out-of-range values go back to where they were before the block.
                    _set_sink_counts(out, counts)
                    tile = self._back_off(tile, overlap, exc)
        return out

    def _back_off(self, tile: tuple[int, ...], overlap: int, exc: BaseException) -> tuple[int, ...]:
        """After an out-of-memory error: halve the batch, else the tile; raise when both are at their minimum."""
        release_memory(self.device)
        if self.batch_size > 1:
            self.batch_size //= 2
            _note(f"out of memory: retrying with --batch-size {self.batch_size}")
            return tile
        smallest = max(self.multiple, overlap + self.multiple, 16)
        largest = max(tile)
        if largest <= smallest:
            raise MicrorestoreError(
                f"out of {self.device.type} memory even with {largest} px tiles and batch size 1; free memory or "
                "use a smaller model"
            ) from exc
        cap = max(smallest, largest // 2 // self.multiple * self.multiple)
        self._tile_cap = cap
        _note(f"out of memory: retrying with {cap} px tiles")
        return tuple(min(int(t), cap) for t in tile)


#: Largest magnitude a normalised input value may have (the normalisation maps the data to about 0..1).
MAX_NORMALISED = 1e6


def check_normalised_range(normalised: np.ndarray, raw: np.ndarray, path: Any = None) -> None:
    """Refuse input values a million times beyond the range the model normalises the image to.

    A network spreads each input value over its receptive field: one corrupt pixel of 3e38 in an image of
    hundreds turned 12 % of a CARE result into values of 1e36..1e38, written with exit status 0. Such a
    value is far outside anything the model was trained on (normalised data spans about 0..1, a saturated
    16-bit pixel in a dim image a few thousand), so the image is refused with the value, naming the file.

    Parameters
    ----------
    normalised
        The normalised tile the network would get.
    raw
        The same tile in the image's units (for the message).
    path
        The image file.

    Raises
    ------
    InputError
        A normalised value beyond :data:`MAX_NORMALISED` (or not finite).
    """
    with np.errstate(invalid="ignore"):
        peak = float(np.max(np.abs(normalised))) if normalised.size else 0.0
    if peak <= MAX_NORMALISED:
        return
    value = float(np.asarray(raw).flat[int(np.nanargmax(np.abs(np.asarray(normalised, dtype=np.float64))))])
    raise InputError(
        f"pixel value {value:.3g} is {peak:.3g} times the intensity range the model normalises the image to "
        "(more than 1e6): a network spreads such a value over its receptive field; replace the hot or "
        "corrupt pixel (e.g. by its neighbours' median) first",
        path,
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says a device (or the host allocator) ran out of memory."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def release_memory(device: Any) -> None:
    """Give cached blocks back after an out-of-memory error (CUDA), so that a smaller retry can succeed."""
    import gc

    import torch

    gc.collect()
    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _sink_counts(out: Any) -> tuple[int, int, int] | None:
    from microrestore.engine.outputs import OutputSink

    return out.counts() if isinstance(out, OutputSink) else None


def _set_sink_counts(out: Any, counts: tuple[int, int, int] | None) -> None:
    if counts is not None:
        out.set_counts(counts)


def _note(message: str) -> None:
    print(f"microrestore: {message}", file=sys.stderr, flush=True)


def load_network_model(
    model: str | Path | None, options: PredictOptions, *, method: str, default_model: str | None
) -> tuple[Any, Any]:
    """Load a single-network model (folder, zoo id or microrestore package) into a tiled predictor.

    The loading every one-network method shares (CARE, rdl-denoise, n2v): a model folder, zoo id
    (``default_model`` when ``model`` is ``None``) or ``.zip`` exported by microrestore is rebuilt from its
    network spec ``net``. (Foreign bioimage.io packages never get here: :func:`microrestore.api.load_predictor`
    runs them through ``bioimageio.core``.)

    Parameters
    ----------
    model
        Model folder, zoo id, package path, or ``None`` for ``default_model``.
    options
        Inference options.
    method
        The method the model must have been trained with.
    default_model
        Zoo id or path used when ``model`` is ``None``.

    Returns
    -------
    tuple
        ``(predictor, bundle)``: the :class:`NetworkPredictor` and the
        :class:`~microrestore.engine.modeldir.ModelBundle`.
    """
    from microrestore.engine.modeldir import load_model
    from microrestore.nn import build_network
    from microrestore.zoo import resolve_model

    reference = model or default_model
    if reference is None:
        raise InputError(f"method {method!r} has no default model; pass --model")
    bundle = load_model(resolve_model(reference), expected_method=method)
    network = bundle.build("net", build_network)
    predictor = NetworkPredictor.from_spec(network, bundle.network_specs["net"], bundle.normalization, options)
    predictor.domain = bundle.provenance.get("domain") or None
    predictor.model_name = str(reference)
    return predictor, bundle
