"""The library facade: restore, train and evaluate from Python with the same behaviour as the CLI.

Examples
--------
>>> from microrestore import api
>>> restored = api.restore(image_array, method="nl-means", axes="YX")  # doctest: +SKIP
>>> api.restore_files(["in.tif"], "out.tif", method="care", model="model/")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


def get_method(name: str, task: str | None = None) -> Method:
    """Return the registered method ``name`` (checking it serves ``task`` when given)."""
    from microrestore.plugins import get_registry

    return get_registry().method(name, task)


def load_predictor(method: Method, model: str | Path | None, options: PredictOptions) -> Predictor:
    """Load ``method``'s model (or its default) and return a predictor."""
    if model is None and method.needs_model and method.default_model is None:
        raise InputError(
            f"method {method.name!r} has no default model yet; train one with "
            f"'microrestore train {method.name} ...' and pass it with --model"
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

            return load_bioimage_predictor(model, options)
    return method.load(model, options)


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


def restore(
    image: np.ndarray | Any,
    method: str,
    *,
    model: str | Path | None = None,
    axes: str | None = None,
    options: PredictOptions | None = None,
    dtype: str | None = "float32",
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
        ``"float32"`` (default), ``"same"`` for the input's dtype, or any numpy dtype name.
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
    found = get_method(method)
    predictor = load_predictor(found, model, options)
    out = np.empty(image.data.shape, dtype=output_dtype(image.data.dtype, dtype))
    sink = OutputSink(out)
    predictor.predict(image, out=sink)
    return out


def restore_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    method: str,
    task: str | None = None,
    model: str | Path | None = None,
    axes: str | None = None,
    options: PredictOptions | None = None,
    dtype: str | None = "same",
    overwrite: bool = True,
    on_file: Callable[[int, int, Path], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[RestoreResult]:
    """Restore files (paths, folders or globs) into ``output`` (a file for one input, else a folder).

    The model is loaded once. Each output is written under a temporary name and renamed when complete, so
    an interrupted run never leaves a partial file. Outputs keep the input's dtype, axes and pixel sizes
    unless ``dtype`` says otherwise; values that do not fit the dtype are reported through ``warn``.
    """
    from microrestore.io import expand_inputs, inputs_are_many, plan_outputs, read_image

    options = options or PredictOptions()
    found = get_method(method, task)
    items = [str(i) for i in inputs]
    paths = expand_inputs(items)
    outputs = plan_outputs(paths, Path(output), many=inputs_are_many(items))
    predictor = load_predictor(found, model, options)
    results = []
    for index, (src, dst) in enumerate(zip(paths, outputs)):
        if on_file is not None:
            on_file(index, len(paths), src)
        if dst.exists() and not overwrite:
            continue
        big = src.stat().st_size > STREAM_BYTES
        image = read_image(src, axes=axes, memmap=True if big else None)
        check_image(image)
        results.append(_restore_one(predictor, image, dst, dtype, warn))
    return results


def _restore_one(
    predictor: Predictor, image: Any, dst: Path, dtype: str | None, warn: Callable[[str], None] | None
) -> RestoreResult:
    from microrestore.engine.outputs import OutputSink
    from microrestore.io import output_memmap, write_image

    start = time.perf_counter()
    out_dtype = output_dtype(image.data.dtype, dtype)
    nbytes = int(np.prod(image.data.shape)) * max(out_dtype.itemsize, 4)
    streamed = isinstance(image.data, np.memmap) or nbytes > STREAM_BYTES
    if streamed:
        with output_memmap(dst, image.data.shape, out_dtype, image.axes, pixel_size=image.pixel_size) as mm:
            sink = OutputSink(mm)
            predictor.predict(image, out=sink)
    else:
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
) -> Path:
    """Train ``method`` on files (paths, folders or globs) and write a model folder to ``output``."""
    from microrestore.io import expand_inputs

    found = get_method(method)
    if found.train is None:
        raise InputError(f"method {method!r} needs no training (it has no train step)")
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
    )
    return found.train(request)


def evaluate(prediction: np.ndarray, ground_truth: np.ndarray, data_range: float | None = None) -> dict[str, float]:
    """PSNR, SSIM, PCC and NRMSE, raw and after a least-squares affine fit of prediction onto truth."""
    from microrestore import metrics

    return metrics.evaluate(np.asarray(prediction), np.asarray(ground_truth), data_range=data_range)
