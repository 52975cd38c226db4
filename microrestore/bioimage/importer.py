"""Run a bioimage.io model package (``.zip`` or ``rdf.yaml``) as a microrestore predictor.

The package's own pre- and post-processing run inside ``bioimageio.core``; microrestore only loops over the
image's other axes (T, Z for 2D models, C for one-channel models), hands each plane to the model as one sample,
and writes the result into the caller's output. Large planes are tiled by ``bioimageio.core`` with the halo
the package declares. A package exported by microrestore whose output is in normalised units
(``config.microrestore.output_units: normalized``) is mapped back to the input's units with the input plane's
percentiles, so that its result equals ``microrestore`` prediction with the original model folder.

A package is code as well as data: ``pytorch_state_dict`` weights name a Python callable (a ``.py`` file shipped
in the package, or any importable module) that ``bioimageio.core`` runs to build the network, and Keras and
TensorFlow formats can carry code too. Weights that need no code (:data:`CODE_FREE_FORMATS`) are preferred
when the package has them; the others run only with ``trust_remote_code`` (``--trust-remote-code``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError, MicrorestoreError
from microrestore.plugins.registry import PredictOptions

#: ``--model bioimageio:ID`` runs a model of the bioimage.io collection by its id (online, or from the cache).
BIOIMAGEIO_PREFIX = "bioimageio:"
#: Largest tile edge handed to the model on a CPU (the halo included).
CPU_TILE = 512
#: Weight formats that run without Python code from the package (TorchScript's own interpreter, ONNX), in order
#: of preference. Any other format runs only with ``trust_remote_code``.
CODE_FREE_FORMATS = ("torchscript", "onnx")
#: The order ``bioimageio.core`` itself tries weight formats in, used for trusted packages without code-free
#: weights.
TRUSTED_ORDER = (
    "pytorch_state_dict",
    "tensorflow_saved_model_bundle",
    "torchscript",
    "onnx",
    "keras_v3",
    "keras_hdf5",
)


def is_bioimage_package(model: str | Path | None, method: str | None = None) -> bool:
    """Whether ``model`` is a foreign bioimage.io package, to be run through ``bioimageio.core``.

    True for ``bioimageio:ID`` (a model of the bioimage.io collection), an ``rdf.yaml``, a ``*.bioimageio.yaml``
    and a ``.zip``, except a ``.zip`` that carries
    microrestore's own model folder (``config.yaml`` + ``weights.safetensors``, as ``microrestore export``
    attaches them) for ``method`` (any method when None): that one is loaded natively by
    :func:`microrestore.zoo.resolve_model` (exact microrestore prediction, output in the input's units).
    This is the one place that decides; it never imports bioimageio.
    """
    if model is None:
        return False
    if str(model).startswith(BIOIMAGEIO_PREFIX):
        return True
    path = Path(model).expanduser()
    name = path.name.lower()
    if name.endswith(".zip"):
        from microrestore.zoo.package import has_microrestore_model

        return not has_microrestore_model(path, method)
    return name == "rdf.yaml" or name.endswith("bioimageio.yaml")


def _needs_code(fmt: str, entry: Any) -> str:
    """What running weights ``entry`` of format ``fmt`` executes, in words (for the refusal)."""
    arch = getattr(entry, "architecture", None)
    if arch is not None and getattr(arch, "source", None) is not None:
        return f"{fmt} weights import the Python file {arch.source} shipped in the package"
    if arch is not None and getattr(arch, "import_from", None) is not None:
        return f"{fmt} weights call {arch.import_from}.{arch.callable} with arguments from the package"
    return f"{fmt} weights can carry code that their library runs"


def choose_weights(descr: Any, source: Any = None, trust_remote_code: bool = False) -> str:
    """The weight format to run ``descr`` (a spec 0.5 ``ModelDescr``) with.

    The first of :data:`CODE_FREE_FORMATS` the package has; else, with ``trust_remote_code``, the first of
    :data:`TRUSTED_ORDER` it has.

    Raises
    ------
    InputError
        The package's weights all need code from the package and ``trust_remote_code`` is False (``source``
        is named in the message).
    """
    present = {fmt: getattr(descr.weights, fmt, None) for fmt in (*CODE_FREE_FORMATS, *TRUSTED_ORDER)}
    present = {fmt: entry for fmt, entry in present.items() if entry is not None}
    for fmt in CODE_FREE_FORMATS:
        if fmt in present:
            return fmt
    if not present:
        raise InputError("the bioimage.io package has no weights in a format microrestore can run", source)
    if not trust_remote_code:
        first = next(f for f in TRUSTED_ORDER if f in present)
        raise InputError(
            f"refusing to run code from a bioimage.io package: its {_needs_code(first, present[first])} and it has "
            "no torchscript or onnx weights; pass --trust-remote-code (trust_remote_code=True in Python) only if "
            "you trust the package's author",
            source,
        )
    return next(f for f in TRUSTED_ORDER if f in present)


def _sizes(axis: Any) -> tuple[int, int]:
    """``(minimum, step)`` of an input axis size (a fixed size gives step 0)."""
    from bioimageio.spec.model import v0_5

    size = axis.size
    if isinstance(size, int):
        return int(size), 0
    if isinstance(size, v0_5.ParameterizedSize):
        return int(size.min), int(size.step)
    raise MicrorestoreError(f"unsupported size of input axis {axis.id!r}: {type(size).__name__}")


def _block_edge(n: int, minimum: int, step: int, limit: int) -> int:
    """Largest valid size ``minimum + k * step`` up to ``min(n, limit)`` (``minimum`` when ``n`` is smaller)."""
    if step == 0:
        return minimum
    cap = min(n, max(limit, minimum))
    if cap < minimum:
        return minimum
    return minimum + (cap - minimum) // step * step


class BioimagePredictor:
    """A bioimage.io model (spec 0.5) with one image input and one image output, run plane by plane.

    Parameters
    ----------
    descr
        The loaded ``bioimageio.spec.model.v0_5.ModelDescr``.
    options
        Device and tile options (``options.tile``: tile edge in pixels, halo included; ``None``: whole planes up
        to 512 px on a CPU, 1024 px on a GPU); ``options.trust_remote_code`` allows weights that need code from
        the package (see :func:`choose_weights`).
    source
        Where the package came from, for messages.

    Attributes
    ----------
    weights_format
        The weight format that runs (chosen by :func:`choose_weights`).
    output_in_input_units
        True for packages exported by microrestore with normalised output (mapped back to the input's units);
        False for other packages, whose output is in the model's own units (often 0..1): callers write it as
        float32 unless asked otherwise, never cast into the input's integer type.
    """

    def __init__(self, descr: Any, options: PredictOptions, source: Path | None = None) -> None:
        from bioimageio.spec.model import v0_5

        if not isinstance(descr, v0_5.ModelDescr):
            raise InputError(
                f"only bioimage.io model descriptions of format 0.5 are supported (got {type(descr).__name__})",
                source,
            )
        ours = (descr.config.model_dump() if descr.config is not None else {}).get("microrestore") or {}
        if ours.get("pipeline_stage"):
            raise InputError(
                f"this package is the {ours.get('network')!r} network stage of the {ours.get('method')} pipeline, not "
                f"a whole model; run the pipeline with --method {ours.get('method')} and the package's zip as --model "
                "(it carries the microrestore model)",
                source,
            )
        if len(descr.inputs) != 1 or len(descr.outputs) != 1:
            raise InputError("only bioimage.io models with one input and one output tensor are supported", source)
        self.descr = descr
        self.options = options
        self.source = source
        self.input = descr.inputs[0]
        self.output = descr.outputs[0]
        in_axes = [str(a.id) for a in self.input.axes]
        out_axes = [str(a.id) for a in self.output.axes]
        self.spatial = [a for a in in_axes if a in ("z", "y", "x")]
        if self.spatial[-2:] != ["y", "x"] or [a for a in out_axes if a in ("z", "y", "x")] != self.spatial:
            raise InputError(f"not an image-to-image model: input axes {in_axes}, output axes {out_axes}", source)
        unknown = [a for a in in_axes if a not in ("batch", "channel", *self.spatial)]
        if unknown:
            raise InputError(f"unsupported input axes {unknown} (expected batch, channel, z, y, x)", source)
        self.in_axes, self.out_axes = in_axes, out_axes
        self.in_channels = 1
        for axis in self.input.axes:
            if str(axis.id) == "channel":
                self.in_channels = len(axis.channel_names)
        self.out_channels = 1
        for axis in self.output.axes:
            if str(axis.id) == "channel":
                self.out_channels = len(getattr(axis, "channel_names", [None]))
        if self.out_channels != self.in_channels:
            raise InputError(
                f"the model maps {self.in_channels} channel(s) to {self.out_channels}; only models that keep the "
                "channel count are supported",
                source,
            )
        self.size_rules = {str(a.id): _sizes(a) for a in self.input.axes if str(a.id) in self.spatial}
        self.halos = {str(a.id): int(getattr(a, "halo", 0) or 0) for a in self.output.axes}
        self.normalization = ours.get("normalization") if ours.get("output_units") == "normalized" else None
        self.output_in_input_units = self.normalization is not None
        self.weights_format = choose_weights(descr, source, bool(getattr(options, "trust_remote_code", False)))
        self._pipeline: Any = None

    def _pipeline_for(self) -> Any:
        if self._pipeline is None:
            from bioimageio.core import create_prediction_pipeline

            device = self.options.device
            devices = None if device in (None, "auto") else [device]
            try:
                self._pipeline = create_prediction_pipeline(
                    self.descr, devices=devices, weights_format=self.weights_format
                )
            except Exception as exc:
                raise MicrorestoreError(
                    f"cannot load bioimage.io model {self.source or self.descr.name}: "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
                ) from None
        return self._pipeline

    def _plan(self, shape: dict[str, int]) -> tuple[str, dict[str, int]]:
        """How to run a plane of ``shape`` (the model's spatial axes).

        Returns ``("whole", extra)`` when the plane fits in one tile: it is preprocessed whole, reflect-padded at
        the end by ``extra`` px where the size needs it, padded by the halo, run and cropped. Otherwise
        ``("blocks", edges)``: tiles of ``edges`` px (halo included, valid sizes within the plane).
        """
        limit = self.options.tile or CPU_TILE
        extra, edges = {}, {}
        for axis, n in shape.items():
            minimum, step = self.size_rules[axis]
            padded = n + 2 * self.halos.get(axis, 0)
            short = max(0, minimum - padded)
            extra[axis] = short + ((-(padded + short - minimum)) % step if step else 0)
            edges[axis] = _block_edge(n, minimum, step, limit)
        if all(n <= limit for n in shape.values()) or any(edges[a] > n for a, n in shape.items()):
            return "whole", extra
        return "blocks", edges

    def _run_plane(self, plane: np.ndarray) -> np.ndarray:
        """Run one ``(C, *spatial)`` float32 plane; returns ``(C, *spatial)`` float32 in the model's output units."""
        from bioimageio.core import Tensor
        from bioimageio.core.sample import Sample

        pipeline = self._pipeline_for()
        dims = tuple(self.in_axes)
        arr = plane if "channel" in dims else plane[0]
        if "batch" in dims:
            arr = arr[np.newaxis]
        order = [a for a in ("batch", "channel") if a in dims] + self.spatial
        arr = np.transpose(arr, [order.index(a) for a in dims])
        member = self.input.id
        shape = {a: int(arr.shape[dims.index(a)]) for a in self.spatial}
        mode, sizes = self._plan(shape)
        sample = Sample(members={member: Tensor(arr, dims=dims)}, stat={}, id="plane")
        crop = None
        try:
            if mode == "blocks":
                full = {a: sizes.get(a, int(arr.shape[i])) for i, a in enumerate(dims)}
                result = pipeline.predict_sample_with_fixed_blocking(sample, input_block_shape={member: full})
            else:
                # Preprocess first, so that per-image statistics see the plane only (core would pad first), then
                # pad by the halo and up to a valid size in one reflect (as microrestore's tiling does), run, crop.
                pipeline.apply_preprocessing(sample)
                halos = {a: self.halos.get(a, 0) for a in dims}
                crop = {a: slice(halos[a], halos[a] + int(n)) for a, n in zip(dims, arr.shape)}
                values = np.asarray(sample.members[member].data.transpose(*dims).values)
                widths = [(halos[a], halos[a] + sizes.get(a, 0)) for a in dims]
                mode_name = "reflect" if all(w[1] < n for w, n in zip(widths, values.shape)) else "symmetric"
                sample.members[member] = Tensor(np.pad(values, widths, mode=mode_name), dims=dims)
                result = pipeline.predict_sample_without_blocking(
                    sample, skip_preprocessing=True, skip_input_padding=True, skip_output_cropping=True
                )
        except MicrorestoreError:
            raise
        except Exception as exc:
            raise MicrorestoreError(
                f"bioimage.io model {self.source or self.descr.name} failed: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:500]}"
            ) from None
        tensor = result.members[self.output.id]
        order = [str(d) for d in tensor.dims]
        wanted = [a for a in ("batch", "channel", *self.spatial) if a in order]
        out = np.asarray(tensor.data.transpose(*wanted).values)
        if crop is not None:
            out = out[tuple(crop.get(a, slice(None)) for a in wanted)]
        if "batch" in wanted:
            out = out[0]
        if "channel" not in wanted:
            out = out[np.newaxis]
        return np.asarray(out, dtype=np.float32)

    def predict(self, image: Any, out: Any = None) -> np.ndarray:
        """Restore ``image`` (an ImageData) plane by plane into ``out`` or a new float32 array."""
        from microrestore.engine.normalization import normalizer_from_dict
        from microrestore.engine.predictor import AxesLayout, AxesSink

        data = image.data
        ndim = len(self.spatial)
        layout = AxesLayout.plan(image.axes, tuple(data.shape), ndim, self.in_channels, image.path)
        if out is None:
            out = np.empty(data.shape, dtype=np.float32)
        order = layout.model_order(image.axes)
        blocks = list(layout.blocks(image.axes, tuple(data.shape)))
        normalizer = normalizer_from_dict(self.normalization) if self.normalization else None
        for done, index in enumerate(blocks):
            view = np.transpose(np.asarray(data[index], dtype=np.float32), order)
            if layout.channel is None:
                view = view[np.newaxis]
            if not np.isfinite(view).all():
                raise InputError("image contains NaN or infinite values", image.path)
            result = self._run_plane(np.ascontiguousarray(view))
            if result.shape != view.shape:
                raise MicrorestoreError(f"bioimage.io model returned shape {result.shape} for an input of {view.shape}")
            if normalizer is not None:
                result = normalizer.invert(result, normalizer.fit(view))
            sink = AxesSink(out, index, order, has_channel=layout.channel is not None)
            sink[tuple(slice(None) for _ in range(result.ndim))] = result
            self.options.report(done + 1, len(blocks))
        return out


def load_bioimage_predictor(path: str | Path, options: PredictOptions | None = None) -> BioimagePredictor:
    """Load a bioimage.io model package (``.zip``, ``rdf.yaml`` or ``*.bioimageio.yaml``) as a predictor.

    Parameters
    ----------
    path
        The package or its description file. Local files only: nothing is downloaded for them.
    options
        Device and tile options; ``options.trust_remote_code`` allows packages whose weights need Python code
        they ship or name (refused otherwise; see :func:`choose_weights`).

    Returns
    -------
    BioimagePredictor
        ``predict(image, out=None)`` gives float32 in the input's units for packages exported by microrestore
        (their normalised output is mapped back), and in the model's output units for other packages.

    Raises
    ------
    InputError
        Missing file, an invalid description, a model that is not image-to-image with one input and one
        output, or weights that need code from the package without ``options.trust_remote_code``.
    MicrorestoreError
        ``bioimageio.core`` is not installed.
    """
    try:
        from bioimageio.core import load_model_description
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MicrorestoreError(
            f"running bioimage.io packages needs the bioimage extra: pip install 'microrestore[bioimage]' ({exc})"
        ) from None
    text = str(path)
    if text.startswith(BIOIMAGEIO_PREFIX):
        # a model of the bioimage.io collection by id (e.g. ``bioimageio:affable-shark``): downloaded and
        # hash-checked by bioimageio.core into its own cache; needs the network the first time
        ident = text[len(BIOIMAGEIO_PREFIX) :].strip()
        if not ident:
            raise InputError(f"{text!r}: give a bioimage.io model id after {BIOIMAGEIO_PREFIX!r}")
        source: Any = ident
    else:
        source = Path(path).expanduser()
        if not source.exists():
            raise InputError("bioimage.io package does not exist", source)
    try:
        descr = load_model_description(source, perform_io_checks=True)
    except Exception as exc:
        raise InputError(
            f"not a valid bioimage.io model: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}", source
        ) from None
    return BioimagePredictor(descr, options or PredictOptions(), source)
