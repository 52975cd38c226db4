"""The library facade: restore, train and evaluate from Python with the same behaviour as the CLI.

Examples
--------
>>> from microrestore import api
>>> restored = api.restore(image_array, method="nl-means", axes="YX")  # doctest: +SKIP
>>> api.restore_files(["in.tif"], "out.tif", method="care", model="model/")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError
from microrestore.plugins.registry import Method, PredictOptions, Predictor, TrainRequest

#: Images above this many bytes (input file or float32 output) are streamed through memory-mapped files.
STREAM_BYTES = 64 * 2**20


@dataclass
class RestoreResult:
    """What restoring one file produced."""

    input: Path
    output: Path
    shape: tuple[int, ...]
    dtype: str
    seconds: float
    out_of_range: int
    streamed: bool


@dataclass
class SelfSupervised:
    """Train a self-supervised method on each input itself before restoring it (``--self-supervised``).

    Attributes
    ----------
    config
        The method's training configuration (as ``microrestore train --set``).
    steps
        Training steps (default: the configuration's).
    max_seconds
        Stop each input's training after this many seconds (a bounded budget); ``None``: no time limit.
    save_models
        Keep each input's trained model in ``save_models/<input file stem>`` (default: a temporary folder,
        deleted afterwards).
    progress
        Show the training display.
    """

    config: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    max_seconds: float | None = None
    save_models: Path | None = None
    progress: bool = True


def get_method(name: str, task: str | None = None) -> Method:
    """Return the registered method ``name`` (checking it serves ``task`` when given)."""
    from microrestore.plugins import get_registry

    return get_registry().method(name, task)


def load_predictor(method: Method, model: str | Path | None, options: PredictOptions) -> Predictor:
    """Load ``method``'s model (or its default) and return a predictor."""
    if model is None and method.needs_model and method.default_model is None:
        hint = " or use --self-supervised to train on the input itself" if method.self_supervised else ""
        raise InputError(
            f"method {method.name!r} has no default model yet; train one with "
            f"'microrestore train {method.name} ...' and pass it with --model{hint}"
        )
    if method.predict_schema is not None:
        options.params = validate_params(method, options.params)
    elif options.params:
        raise InputError(f"method {method.name!r} takes no --set options (got {', '.join(options.params)})")
    if method.needs_model:
        from microrestore.bioimage.importer import is_bioimage_package

        if is_bioimage_package(model, method=method.name):
            # any bioimage.io package (rdf.yaml, or a zip that does not carry this method's model folder) runs
            # through bioimageio.core; microrestore's own exports load natively through the method
            from microrestore.bioimage.importer import load_bioimage_predictor

            if options.tta:
                raise InputError(f"--tta is not available for bioimage.io packages run by bioimageio.core ({model})")
            return load_bioimage_predictor(model, options)
    from microrestore.plugins.registry import PluginPredictor, call_plugin

    predictor = call_plugin(method.plugin_label, f"{method.name} load", method.load, model, options)
    if options.tta:
        from microrestore.engine.predictor import NetworkPredictor

        if not isinstance(predictor, NetworkPredictor):
            raise InputError(
                f"--tta averages a network over rotations and flips; method {method.name!r} does not run one "
                "through the tiled network predictor"
            )
    return PluginPredictor(predictor, method.plugin_label, method.name)


def validate_params(method: Method, params: dict[str, Any]) -> dict[str, Any]:
    """Validate method options against its ``predict_schema``; one-line error on a bad key or value."""
    from microrestore.configs import validate

    assert method.predict_schema is not None
    return validate(method.predict_schema, params, f"--set for method {method.name!r}").model_dump()


def check_image(image: Any) -> None:
    """Refuse empty images and images holding NaN or Inf, naming the file."""
    from microrestore.io import check_finite

    if image.data.size == 0 or 0 in image.data.shape:
        raise InputError(f"empty image (shape {tuple(image.data.shape)})", image.path)
    if not (np.issubdtype(image.data.dtype, np.number) or image.data.dtype == bool):
        raise InputError(f"unsupported pixel type {image.data.dtype}", image.path)
    check_finite(image)


def output_dtype(image_dtype: np.dtype[Any], requested: str | None) -> np.dtype[Any]:
    """The dtype to write: the input's by default (``same``), else the requested one."""
    from microrestore.io import parse_dtype

    dtype = parse_dtype(requested if requested else None)
    if dtype is None:
        dtype = np.dtype(image_dtype)
        return np.dtype(np.float32) if dtype.kind == "b" or dtype == np.dtype(np.float16) else dtype
    return dtype


def predictor_dtype(predictor: Predictor, image_dtype: np.dtype[Any], requested: str | None) -> np.dtype[Any]:
    """The dtype to write ``predictor``'s output in.

    ``requested`` when given (``same`` is the input's); when not (``None``), the input's, except float32 for a
    predictor whose output is not in the input's units (``output_in_input_units`` False: a foreign bioimage.io
    model, whose output is often 0..1 and would turn into 0 and 1 in an integer type).
    """
    if requested is None and not getattr(predictor, "output_in_input_units", True):
        return np.dtype(np.float32)
    return output_dtype(image_dtype, requested)


def restore(
    image: np.ndarray | Any,
    method: str,
    *,
    model: str | Path | None = None,
    axes: str | None = None,
    options: PredictOptions | None = None,
    dtype: str | None = "float32",
    self_supervised: SelfSupervised | None = None,
    trust_remote_code: bool = False,
    **params: Any,
) -> np.ndarray:
    """Restore an in-memory image and return it (float32 in the input's units by default).

    Parameters
    ----------
    image
        A numpy array (give ``axes``) or an :class:`~microrestore.io.ImageData`.
    method
        Registered method name, e.g. ``"care"`` or ``"nl-means"``.
    model
        Zoo id or model folder; ``None`` uses the method's default.
    axes
        Axes of ``image`` when it is a plain array (``"YX"``, ``"ZYX"``, ``"TYX"``, ...).
    options
        Device, tiling and batch options.
    dtype
        ``"float32"`` (default), ``"same"`` for the input's dtype, or any numpy dtype name; ``None``: the input's,
        but float32 for a foreign bioimage.io model.
    self_supervised
        Train the (self-supervised) method on ``image`` itself first, instead of loading ``model``.
    trust_remote_code
        Allow a foreign bioimage.io ``model`` whose weights need Python code that the package ships or names
        (refused otherwise; see ``docs/security.md``).
    **params
        Method-specific options (as ``--set key=value``).
    """
    from microrestore.engine.outputs import OutputSink
    from microrestore.io import ImageData

    if not isinstance(image, ImageData):
        array = np.asarray(image)
        if axes is None:
            if array.ndim != 2:
                raise InputError(f"give axes for a {array.ndim}-dimensional array (e.g. 'ZYX' or 'TYX')")
            axes = "YX"
        from microrestore.io.axes import normalize_axes

        image = ImageData(array, normalize_axes(axes, array.shape))
    check_image(image)
    options = options or PredictOptions()
    options.params = {**options.params, **params}
    options.trust_remote_code = options.trust_remote_code or trust_remote_code
    found = get_method(method)
    if self_supervised is None:
        predictor = load_predictor(found, model, options)
        out = np.empty(image.data.shape, dtype=predictor_dtype(predictor, image.data.dtype, dtype))
        predictor.predict(image, out=OutputSink(out))
        return out
    out = np.empty(image.data.shape, dtype=output_dtype(image.data.dtype, dtype))
    sink = OutputSink(out)
    _check_self_supervised(found, model)
    import tempfile

    from microrestore.io import write_image

    with tempfile.TemporaryDirectory(prefix="microrestore-ssl-") as tmp:
        # Training reads files: hand it the array as one (with its axes and pixel sizes).
        source = write_image(Path(tmp) / "input.tif", image.data, image.axes, pixel_size=image.pixel_size)
        with _self_supervised_model(found, source, self_supervised, options) as trained:
            load_predictor(found, trained, options).predict(image, out=sink)
    return out


def _check_self_supervised(method: Method, model: str | Path | None) -> None:
    if not method.self_supervised or method.train is None:
        from microrestore.plugins import get_registry

        names = sorted(m.name for m in get_registry().methods.values() if m.self_supervised)
        raise InputError(
            f"method {method.name!r} cannot train on its input (--self-supervised); self-supervised methods: "
            f"{', '.join(names) or 'none installed'}"
        )
    if model is not None:
        raise InputError("--self-supervised trains a model on each input; do not give --model as well")


@contextlib.contextmanager
def _self_supervised_model(
    method: Method, source: Path, plan: SelfSupervised, options: PredictOptions, axes: str | None = None
) -> Iterator[Path]:
    """Train ``method`` on ``source`` alone; yield the model folder (temporary unless ``plan.save_models``)."""
    import tempfile

    with contextlib.ExitStack() as stack:
        if plan.save_models is not None:
            folder = Path(plan.save_models) / source.stem
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="microrestore-model-"))) / "model"
        request = TrainRequest(
            source=[source],
            output=folder,
            config=dict(plan.config),
            steps=plan.steps,
            device=options.device,
            axes=axes,
            progress=plan.progress,
            max_seconds=plan.max_seconds,
        )
        assert method.train is not None
        yield method.train(request)


def restore_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    method: str,
    task: str | None = None,
    model: str | Path | None = None,
    axes: str | None = None,
    options: PredictOptions | None = None,
    dtype: str | None = None,
    overwrite: bool = True,
    on_file: Callable[[int, int, Path], None] | None = None,
    warn: Callable[[str], None] | None = None,
    self_supervised: SelfSupervised | None = None,
    trust_remote_code: bool = False,
) -> list[RestoreResult]:
    """Restore files (paths, folders or globs) into ``output`` (a file for one input, else a folder).

    The model is loaded once. Each output is written under a temporary name and renamed when complete, so
    an interrupted run never leaves a partial file, and ``overwrite=False`` resumes it: outputs that exist are
    finished and skipped. Outputs keep the input's dtype, axes and pixel sizes unless ``dtype`` says
    otherwise (``None``, the default, keeps the input's dtype except for a foreign bioimage.io model, whose
    output goes out as float32; ``"same"`` keeps it always); values that do not fit the dtype are reported
    through ``warn``.

    ``trust_remote_code`` allows a foreign bioimage.io ``model`` whose weights need Python code that the
    package ships or names (refused otherwise; see ``docs/security.md``).

    Under torchrun (``WORLD_SIZE`` > 1) each process restores every ``WORLD_SIZE``-th file starting at its
    ``RANK`` (on GPU ``LOCAL_RANK`` when the device is CUDA); the processes share no state, so a file a
    process finished is never redone by another.

    With ``self_supervised``, a self-supervised method is first trained on each input itself (its own model,
    within the given budget), then restores it; ``on_file`` is called before that training.
    """
    from microrestore.io import expand_inputs, inputs_are_many, plan_outputs, read_image

    options = options or PredictOptions()
    options.trust_remote_code = options.trust_remote_code or trust_remote_code
    found = get_method(method, task)
    items = [str(i) for i in inputs]
    paths = expand_inputs(items)
    outputs = plan_outputs(paths, Path(output), many=inputs_are_many(items))
    pairs = list(zip(paths, outputs))
    from microrestore.engine.ranks import env_world, shard_items

    _, world, local_rank = env_world()
    if world > 1:  # under torchrun: this process takes every world-th file, on its own GPU
        pairs = shard_items(pairs)
        if options.device.strip().lower() in ("auto", "cuda") or options.device.strip().lower().startswith("cuda:"):
            import torch

            if torch.cuda.is_available():
                options.device = f"cuda:{local_rank % torch.cuda.device_count()}"
    if not overwrite:
        pairs = [(src, dst) for src, dst in pairs if not dst.exists()]  # finished: outputs appear only when complete
    if not pairs:
        return []
    if self_supervised is None:
        predictor = load_predictor(found, model, options)
    else:
        _check_self_supervised(found, model)
    results = []
    for index, (src, dst) in enumerate(pairs):
        if on_file is not None:
            on_file(index, len(pairs), src)
        big = src.stat().st_size > STREAM_BYTES
        image = read_image(src, axes=axes, memmap=True if big else None)
        check_image(image)
        if self_supervised is None:
            results.append(_restore_one(predictor, image, dst, dtype, warn))
            continue
        with _self_supervised_model(found, src, self_supervised, options, axes) as trained:
            own = load_predictor(found, trained, options)
            results.append(_restore_one(own, image, dst, dtype, warn))
    return results


def _restore_one(
    predictor: Predictor, image: Any, dst: Path, dtype: str | None, warn: Callable[[str], None] | None
) -> RestoreResult:
    from microrestore.engine.outputs import OutputSink
    from microrestore.io import output_memmap, write_image
    from microrestore.io.lazy import is_lazy

    start = time.perf_counter()
    out_dtype = predictor_dtype(predictor, image.data.dtype, dtype)
    nbytes = int(np.prod(image.data.shape)) * max(out_dtype.itemsize, 4)
    streamed = isinstance(image.data, np.memmap) or is_lazy(image.data) or nbytes > STREAM_BYTES
    writer = _streamed_writer(dst) if streamed else None
    if streamed and writer is not None:
        from microrestore.io.atomic import atomic_path

        with atomic_path(dst, keep_name=True, replace_folder=True) as tmp:
            with writer(tmp, image.data.shape, out_dtype, image.axes, image.pixel_size) as array:
                sink = OutputSink(array)
                predictor.predict(image, out=sink)
    elif streamed and dst.name.lower().endswith((".tif", ".tiff")):
        with output_memmap(dst, image.data.shape, out_dtype, image.axes, pixel_size=image.pixel_size) as mm:
            sink = OutputSink(mm)
            predictor.predict(image, out=sink)
    else:
        streamed = False
        sink = OutputSink(np.empty(image.data.shape, dtype=out_dtype))
        predictor.predict(image, out=sink)
        write_image(dst, sink.array, image.axes, pixel_size=image.pixel_size)
    if sink.out_of_range and warn is not None:
        share = 100.0 * sink.out_of_range / max(1, int(np.prod(image.data.shape)))
        if np.issubdtype(out_dtype, np.integer):
            info = np.iinfo(out_dtype)
            span = f"the {out_dtype} range [{info.min}, {info.max}]"
        else:
            span = f"the {out_dtype} range"
        warn(
            f"{dst}: {sink.out_of_range} pixels ({share:.3g}%) fell outside {span} and were clipped; "
            "use --dtype float32 to keep them"
        )
    return RestoreResult(
        input=image.path or Path("<array>"),
        output=dst,
        shape=tuple(image.data.shape),
        dtype=str(out_dtype),
        seconds=time.perf_counter() - start,
        out_of_range=sink.out_of_range,
        streamed=streamed,
    )


def _streamed_writer(dst: Path) -> Callable[..., Any] | None:
    """The ``open_streamed`` of the plugin writer for ``dst`` (OME-Zarr), if any."""
    from microrestore.plugins import get_registry

    writer = get_registry().writer_for(dst)
    return writer.open_streamed if writer is not None else None


def train(
    method: str,
    source: Sequence[str | Path],
    output: str | Path,
    *,
    target: Sequence[str | Path] = (),
    config: dict[str, Any] | None = None,
    steps: int | None = None,
    resume: bool = False,
    device: str = "auto",
    axes: str | None = None,
    progress: bool = True,
    max_seconds: float | None = None,
) -> Path:
    """Train ``method`` on files (paths, folders or globs) and write a model folder to ``output``.

    ``max_seconds`` stops training after that many seconds (with a checkpoint and a saved model). Checkpoints
    record a fingerprint of the ``source`` and ``target`` files (see :mod:`microrestore.engine.fingerprint`);
    ``resume`` refuses a checkpoint trained on other data (swapped, replaced or changed files).
    """
    from microrestore.io import expand_inputs

    found = get_method(method)
    if found.train is None:
        raise InputError(f"method {method!r} needs no training (it has no train step)")
    from microrestore.engine.ranks import env_world

    progress = progress and env_world()[0] == 0  # several processes: rank 0 alone shows progress and notes
    request = TrainRequest(
        source=expand_inputs([str(s) for s in source]),
        target=expand_inputs([str(t) for t in target]) if target else [],
        output=Path(output),
        config=dict(config or {}),
        steps=steps,
        resume=resume,
        device=device,
        axes=axes,
        progress=progress,
        max_seconds=max_seconds,
    )
    from microrestore.engine.fingerprint import data_fingerprint, training_data
    from microrestore.plugins.registry import call_plugin

    with training_data(data_fingerprint(request.source, request.target)):
        return call_plugin(found.plugin_label, f"{found.name} train", found.train, request)


def evaluate(prediction: np.ndarray, ground_truth: np.ndarray, data_range: float | None = None) -> dict[str, float]:
    """PSNR, SSIM, PCC and NRMSE, raw and after a least-squares affine fit of prediction onto truth."""
    from microrestore import metrics

    return metrics.evaluate(np.asarray(prediction), np.asarray(ground_truth), data_range=data_range)
