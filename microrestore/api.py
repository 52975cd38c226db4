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
from microrestore.validation import validate_params

#: Images above this many bytes (input file or float32 output) are streamed through memory-mapped files.
STREAM_BYTES = 64 * 2**20

#: Training time of a one-shot ``--self-supervised`` run on the method's CPU-sized configuration, when neither
#: steps nor seconds are given: with inference, a 32 x 128 x 128 movie takes under 5 minutes on two cores.
SELF_SUPERVISED_SECONDS = 180.0

#: A one-shot training stopped by its time budget before this share of its steps is reported as too short.
FEW_STEPS_SHARE = 0.5


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
    non_finite: int = 0
    sigma: Path | None = None
    estimated_rmse: float | None = None


def sigma_path(output: str | Path) -> Path:
    """Where ``--uncertainty`` writes the uncertainty map of ``output``: ``<name>_sigma.tif`` beside it.

    ``<name>`` is the output's name without its extensions (``cell.ome.tif`` gives ``cell_sigma.tif``).
    """
    output = Path(output)
    return output.with_name(output.name.split(".")[0] + "_sigma.tif")


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
        Stop each input's training after this many seconds (training only: inference follows); ``None``:
        :data:`SELF_SUPERVISED_SECONDS` when ``defaults`` is on and no ``steps`` are given, else no limit.
    defaults
        Start from the method's one-shot configuration (``Method.self_supervised_config``: a network sized for
        a CPU) under ``config``; ``False`` (e.g. with a configuration file): the method's own defaults.
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
    defaults: bool = True


def self_supervised_budget(method: Method, plan: SelfSupervised) -> tuple[dict[str, Any], int | None, float | None]:
    """The configuration, steps and training seconds of a one-shot ``--self-supervised`` run.

    Parameters
    ----------
    method
        The self-supervised method.
    plan
        What the user asked for.

    Returns
    -------
    tuple
        ``(config, steps, max_seconds)``: ``plan.config`` over the method's one-shot configuration (when
        ``plan.defaults``); the steps given; the seconds given, else :data:`SELF_SUPERVISED_SECONDS` when
        ``plan.defaults`` is on and no steps were given (in ``steps`` or the configuration), else ``None``.
    """
    preset = dict(method.self_supervised_config) if plan.defaults else {}
    config = {**preset, **plan.config}
    seconds = plan.max_seconds
    if seconds is None and plan.defaults and plan.steps is None and "steps" not in plan.config:
        seconds = SELF_SUPERVISED_SECONDS
    return config, plan.steps, seconds


def few_steps_warning(method: str, source: Path, model: Path, seconds: float | None) -> str | None:
    """A warning when the time budget stopped a one-shot training before :data:`FEW_STEPS_SHARE` of its steps.

    Parameters
    ----------
    method
        The method's name.
    source
        The input the model was trained on.
    model
        The trained model folder (its ``provenance`` holds ``steps`` and ``steps_run``).
    seconds
        The training time budget.

    Returns
    -------
    str or None
        One line naming the steps run and what to do, or ``None``.
    """
    from microrestore.engine.modeldir import read_model_config

    provenance = read_model_config(model)[0].get("provenance") or {}
    steps, run = provenance.get("steps"), provenance.get("steps_run")
    if not isinstance(steps, int) or not isinstance(run, int) or seconds is None or run >= FEW_STEPS_SHARE * steps:
        return None
    return (
        f"{source.name}: {method} trained only {run} of {steps} steps in its {seconds:g} s budget, so the result "
        "may be barely denoised; give more time (--train-seconds), fewer steps (--train-steps, the learning rate "
        "then decays in time), a smaller network (--set), or a GPU (--device cuda)"
    )


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


def check_image(image: Any) -> None:
    """Refuse empty images, non-numeric or complex data and NaN or Inf, naming the file.

    See :func:`microrestore.io.images.check_image` (here so that a test can wrap the check of every input).
    """
    from microrestore.io.images import check_image as check

    check(image)


def output_dtype(image_dtype: np.dtype[Any], requested: str | None) -> np.dtype[Any]:
    """The dtype predictions are written in: see :func:`microrestore.io.working_dtype` (``None``: ``same``).

    With ``auto`` an integer input's results are written as float32 first; :func:`settled_output` then gives
    the input's dtype back when that loses nothing.
    """
    from microrestore.io import working_dtype

    return working_dtype(image_dtype, requested if requested else None)[0]


def output_sink(image_dtype: np.dtype[Any], shape: tuple[int, ...], requested: str | None, array: Any = None) -> Any:
    """An :class:`~microrestore.engine.outputs.OutputSink` for ``--dtype requested`` (in memory unless ``array``).

    Under ``auto`` an in-memory sink of an integer input tracks whether every restored value is an integer
    that fits the input's dtype; a given ``array`` (streamed to disk) keeps its dtype.
    """
    from microrestore.engine.outputs import OutputSink
    from microrestore.io import working_dtype

    dtype, narrow = working_dtype(image_dtype, requested if requested else None)
    if array is not None:
        return OutputSink(array)
    return OutputSink(np.empty(shape, dtype=dtype), np.dtype(image_dtype) if narrow else None)


def settled_output(sink: Any) -> np.ndarray:
    """The sink's array, in the input's integer dtype when ``auto`` found every value an integer that fits it."""
    if sink.integral and sink.integers_of is not None:
        from microrestore.io import to_dtype

        return to_dtype(sink.array, sink.integers_of)[0]
    return sink.array


def requested_dtype(predictor: Predictor, requested: str | None) -> str | None:
    """``--dtype`` for ``predictor``'s output: ``float32`` in place of ``auto`` for outputs in other units.

    That is a predictor with ``output_in_input_units`` False (a foreign bioimage.io model, whose output is often
    0..1 and would turn into 0 and 1 in an integer type); otherwise ``requested`` unchanged.
    """
    if requested in (None, "auto") and not getattr(predictor, "output_in_input_units", True):
        return "float32"
    return requested


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
    uncertainty: bool = False,
    warn: Callable[[str], None] | None = None,
    **params: Any,
) -> Any:
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
        ``"float32"`` (default); ``"auto"``: float32, or the input's dtype where that loses nothing (float32 and
        float64 inputs; integer inputs whose restored values are all integers that fit); ``"same"`` for the
        input's dtype (integer outputs are rounded); or any numpy dtype name. A foreign bioimage.io model's
        output is float32 under ``auto``.
    self_supervised
        Train the (self-supervised) method on ``image`` itself first, instead of loading ``model``.
    trust_remote_code
        Allow a foreign bioimage.io ``model`` whose weights need Python code that the package ships or names
        (refused otherwise; see ``docs/security.md``).
    uncertainty
        Also return a per-pixel uncertainty map (standard deviation in the input's units, float32), estimated
        from restorations of independent splits of the image and calibrated to its estimated error (see
        :mod:`microrestore.assess`); the result is then ``(restored, sigma)``.
    warn
        Hears the domain guard's warnings (an input unlike the model's training data) and a one-shot training
        cut short by its time budget (default: domain warnings are not checked; the budget one goes to
        :func:`warnings.warn`).
    **params
        Method-specific options (as ``--set key=value``).

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        The restored image, or ``(restored, sigma)`` with ``uncertainty``.
    """
    image = _as_image(image, axes)
    check_image(image)
    options = options or PredictOptions()
    options.params = {**options.params, **params}
    options.trust_remote_code = options.trust_remote_code or trust_remote_code
    found = get_method(method)
    if uncertainty and self_supervised is not None:
        raise InputError("uncertainty maps are not available with self-supervised training on the input")
    if self_supervised is None:
        predictor = load_predictor(found, model, options)
        _domain_warnings(predictor, image, warn)
        sink = output_sink(image.data.dtype, image.data.shape, requested_dtype(predictor, dtype))
        predictor.predict(image, out=sink)
        restored = settled_output(sink)
        if uncertainty:
            return restored, _sigma_of(image, predictor, restored)
        return restored
    sink = output_sink(image.data.dtype, image.data.shape, dtype)
    _check_self_supervised(found, model)
    import tempfile

    from microrestore.io import write_image

    with tempfile.TemporaryDirectory(prefix="microrestore-ssl-") as tmp:
        # Training reads files: hand it the array as one (with its axes and pixel sizes).
        source = write_image(Path(tmp) / "input.tif", image.data, image.axes, pixel_size=image.pixel_size)
        with _self_supervised_model(found, source, self_supervised, options, warn=warn, name=image.path) as trained:
            load_predictor(found, trained, options).predict(image, out=sink)
    return settled_output(sink)


def _as_image(image: np.ndarray | Any, axes: str | None) -> Any:
    """``image`` as an :class:`~microrestore.io.ImageData` (a plain 2D array is ``YX``), checked."""
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
    return image


def _predictor_restorer(predictor: Predictor, image: Any) -> Callable[[np.ndarray], np.ndarray]:
    """A restoration of arrays shaped and laid out like ``image`` by a loaded ``predictor`` (float32 out)."""
    from microrestore.io import ImageData

    def run(array: np.ndarray) -> np.ndarray:
        sink = output_sink(np.dtype(np.float32), array.shape, "float32")
        predictor.predict(ImageData(np.asarray(array, np.float32), image.axes, pixel_size=image.pixel_size), out=sink)
        return np.asarray(sink.array)

    return run


def _assessment(image: Any, predictor: Predictor, name: str, output: np.ndarray | None = None, **kw: Any) -> Any:
    """:func:`microrestore.assess.assess_restoration` of ``predictor`` on ``image`` (errors as InputError)."""
    from microrestore.assess import assess_restoration
    from microrestore.engine.noise_model import NoiseEstimationError

    data = np.asarray(image.data)
    try:
        return assess_restoration(data, _predictor_restorer(predictor, image), name, output=output, **kw)
    except NoiseEstimationError as exc:
        raise InputError(f"cannot assess the restoration: {exc}", image.path) from None


def _sigma_of(image: Any, predictor: Predictor, restored: np.ndarray) -> np.ndarray:
    """The uncertainty map of ``restored`` (see :func:`restore`'s ``uncertainty``)."""
    result = _assessment(image, predictor, getattr(predictor, "method", "method"), np.asarray(restored, np.float32))
    return np.asarray(result.sigma, np.float32)


def restorer(
    method: str,
    *,
    model: str | Path | None = None,
    axes: str = "YX",
    options: PredictOptions | None = None,
    **params: Any,
) -> Callable[[np.ndarray], np.ndarray]:
    """Load ``method`` once and return a function restoring arrays with ``axes`` (float32, input units).

    Parameters
    ----------
    method
        Registered method name.
    model
        Zoo id or model folder; ``None`` uses the method's default.
    axes
        Axes of the arrays it will be given.
    options
        Device, tiling and batch options.
    **params
        Method-specific options (as ``--set key=value``).

    Returns
    -------
    callable
        ``array -> restored array``.
    """
    from microrestore.io import ImageData
    from microrestore.io.axes import normalize_axes

    options = options or PredictOptions()
    options.params = {**options.params, **params}
    predictor = load_predictor(get_method(method), model, options)
    template = ImageData(np.zeros((1,) * len(axes), np.float32), normalize_axes(axes, (1,) * len(axes)))
    return _predictor_restorer(predictor, template)


def assess(
    image: np.ndarray | Any,
    method: str,
    *,
    model: str | Path | None = None,
    axes: str | None = None,
    options: PredictOptions | None = None,
    repeats: int = 2,
    seed: int = 0,
    uncertainty: bool = True,
    **params: Any,
) -> Any:
    """How good is ``method``'s restoration of ``image``, without a ground truth.

    Parameters
    ----------
    image
        A numpy array (give ``axes`` unless 2D) or an :class:`~microrestore.io.ImageData`, in the camera's units.
    method, model, options, **params
        As in :func:`restore`.
    axes
        Axes of a plain array.
    repeats
        Random splits per split strength (3 strengths): the method runs ``3 * repeats + 1`` times.
    seed
        Seed of the splits.
    uncertainty
        Build the per-pixel uncertainty map.

    Returns
    -------
    microrestore.assess.Assessment
        The camera and noise model, ``error.estimated_rmse`` with its interval and PSNR, the uncertainty map
        (``sigma``), the unsupported-structure map and the restored image (``output``).
    """
    image = _as_image(image, axes)
    options = options or PredictOptions()
    options.params = {**options.params, **params}
    predictor = load_predictor(get_method(method), model, options)
    return _assessment(image, predictor, method, repeats=repeats, seed=seed, uncertainty=uncertainty)


def compare_candidates(task: str = "denoise") -> list[str]:
    """Methods of ``task`` that run without a user model (a default model, or none needed), cheapest first."""
    from microrestore.plugins import get_registry

    found = [m for m in get_registry().methods.values() if m.task == task]
    usable = [m for m in found if not m.needs_model or m.default_model is not None]
    return [m.name for m in sorted(usable, key=lambda m: (m.needs_model, m.name))]


def compare(
    image: np.ndarray | Any,
    methods: Sequence[str] | None = None,
    *,
    axes: str | None = None,
    options: PredictOptions | None = None,
    budget: float | None = None,
    repeats: int = 2,
    seed: int = 0,
    models: dict[str, str | Path] | None = None,
    on_method: Callable[[str], None] | None = None,
) -> Any:
    """Assess several methods on ``image`` with the same splits and rank them by estimated error.

    Parameters
    ----------
    image
        A numpy array (give ``axes`` unless 2D) or an :class:`~microrestore.io.ImageData`.
    methods
        Method names (default: :func:`compare_candidates`, the denoising methods that need no user model).
    axes
        Axes of a plain array.
    options
        Device, tiling and batch options (shared).
    budget
        Seconds for the whole comparison; methods that would exceed it are skipped (see
        :func:`microrestore.assess.compare_restorations`).
    repeats, seed
        As in :func:`assess`.
    models
        Method name to a model, for methods that should not use their default.
    on_method
        Called with each method's name before it runs.

    Returns
    -------
    microrestore.assess.Comparison
        Each method's assessment, the ranking with its recommendation and confidence, and skipped methods.
    """
    import copy

    from microrestore.assess import compare_restorations
    from microrestore.engine.noise_model import NoiseEstimationError

    image = _as_image(image, axes)
    names = list(methods) if methods else compare_candidates()
    for name in names:
        get_method(name)  # unknown names: one line before anything runs
    base = options or PredictOptions()

    def factory(name: str) -> Callable[[], Callable[[np.ndarray], np.ndarray]]:
        def make() -> Callable[[np.ndarray], np.ndarray]:
            own = copy.copy(base)
            own.params = dict(base.params)
            return _predictor_restorer(load_predictor(get_method(name), (models or {}).get(name), own), image)

        return make

    try:
        return compare_restorations(
            np.asarray(image.data),
            {name: factory(name) for name in names},
            budget=budget,
            repeats=repeats,
            seed=seed,
            on_method=on_method,
        )
    except NoiseEstimationError as exc:
        raise InputError(f"cannot assess restorations: {exc}", image.path) from None


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
    method: Method,
    source: Path,
    plan: SelfSupervised,
    options: PredictOptions,
    axes: str | None = None,
    warn: Callable[[str], None] | None = None,
    name: Path | None = None,
) -> Iterator[Path]:
    """Train ``method`` on ``source`` alone; yield the model folder (temporary unless ``plan.save_models``).

    ``warn`` (default: :func:`warnings.warn`) hears when the time budget left the training short; ``name`` is
    the input's name in that message (default: ``source``).
    """
    import tempfile

    config, steps, seconds = self_supervised_budget(method, plan)
    with contextlib.ExitStack() as stack:
        if plan.save_models is not None:
            folder = Path(plan.save_models) / source.stem
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="microrestore-model-"))) / "model"
        request = TrainRequest(
            source=[source],
            output=folder,
            config=config,
            steps=steps,
            device=options.device,
            axes=axes,
            progress=plan.progress,
            max_seconds=seconds,
        )
        assert method.train is not None
        trained = method.train(request)
        message = few_steps_warning(method.name, name or source, trained, seconds)
        if message is not None:
            if warn is None:
                import warnings

                warnings.warn(message, stacklevel=3)
            else:
                warn(message)
        yield trained


def planned_outputs(inputs: Sequence[str | Path], output: str | Path) -> list[tuple[Path, Path]]:
    """``(input, output)`` file pairs of :func:`restore_files` (folders, globs expanded; output folders made)."""
    from microrestore.io import expand_inputs, inputs_are_many, plan_outputs

    items = [str(i) for i in inputs]
    paths = expand_inputs(items)
    return list(zip(paths, plan_outputs(paths, Path(output), many=inputs_are_many(items))))


def restore_files(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    method: str,
    task: str | None = None,
    model: str | Path | None = None,
    axes: str | None = None,
    options: PredictOptions | None = None,
    dtype: str | None = "auto",
    overwrite: bool = True,
    on_file: Callable[[int, int, Path], None] | None = None,
    warn: Callable[[str], None] | None = None,
    self_supervised: SelfSupervised | None = None,
    allow_nonfinite: bool = False,
    trust_remote_code: bool = False,
    uncertainty: bool = False,
) -> list[RestoreResult]:
    """Restore files (paths, folders or globs) into ``output`` (a file for one input, else a folder).

    The model is loaded once. Each output is written under a temporary name and renamed when complete, so
    an interrupted run never leaves a partial file, and ``overwrite=False`` resumes it: outputs that exist are
    finished and skipped. Outputs keep the input's units, axes and pixel sizes. ``dtype="auto"`` (the default)
    writes float32, or the input's dtype where that loses nothing (float32/float64 inputs; integer inputs whose
    restored values are all integers that fit, decided for outputs held in memory; outputs streamed to disk
    are float32 then); ``"same"`` the input's dtype, rounded; values that do not fit the dtype are reported
    through ``warn``. A foreign bioimage.io model's output is always float32 under
    ``auto``.

    ``trust_remote_code`` allows a foreign bioimage.io ``model`` whose weights need Python code that the
    package ships or names (refused otherwise; see ``docs/security.md``).

    Under torchrun (``WORLD_SIZE`` > 1) each process restores every ``WORLD_SIZE``-th file starting at its
    ``RANK`` (on GPU ``LOCAL_RANK`` when the device is CUDA); the processes share no state, so a file a
    process finished is never redone by another.

    With ``self_supervised``, a self-supervised method is first trained on each input itself (its own model,
    within the given budget), then restores it; ``on_file`` is called before that training.

    A result holding NaN or infinite values is not written: a :class:`~microrestore.errors.MicrorestoreError`
    names the output (and no file is left), unless ``allow_nonfinite`` (then ``warn`` says how many).

    With ``uncertainty`` each output gets a per-pixel uncertainty map (float32, input units) written to
    :func:`sigma_path` (see :func:`restore`); both are computed before either file is written, in memory.
    """
    from microrestore.io import read_image
    from microrestore.io.atomic import clean_stale_temps
    from microrestore.io.images import check_writable

    options = options or PredictOptions()
    options.trust_remote_code = options.trust_remote_code or trust_remote_code
    found = get_method(method, task)
    pairs = planned_outputs(inputs, output)
    from microrestore.engine.ranks import env_world, shard_items

    _, world, local_rank = env_world()
    if world > 1:  # under torchrun: this process takes every world-th file, on its own GPU
        pairs = shard_items(pairs)
        if options.device.strip().lower() in ("auto", "cuda") or options.device.strip().lower().startswith("cuda:"):
            import torch

            if torch.cuda.is_available():
                options.device = f"cuda:{local_rank % torch.cuda.device_count()}"
    if not overwrite:

        def finished(dst: Path) -> bool:  # outputs appear only when complete; with --uncertainty, the map too
            return dst.exists() and (not uncertainty or sigma_path(dst).exists())

        done = [dst for _, dst in pairs if finished(dst)]
        clean_stale_temps(done)  # and leftovers of killed runs that wrote them are no longer needed
        pairs = [(src, dst) for src, dst in pairs if not finished(dst)]
    if not pairs:
        return []
    if uncertainty and self_supervised is not None:
        raise InputError("--uncertainty is not available with --self-supervised")
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
        check_writable(dst, tuple(image.data.shape), output_dtype(image.data.dtype, dtype), image.axes)
        if uncertainty:
            results.append(_restore_with_sigma(predictor, image, dst, dtype, warn, allow_nonfinite))
            continue
        if self_supervised is None:
            results.append(_restore_one(predictor, image, dst, dtype, warn, allow_nonfinite))
            continue
        with _self_supervised_model(found, src, self_supervised, options, axes, warn) as trained:
            own = load_predictor(found, trained, options)
            results.append(_restore_one(own, image, dst, dtype, warn, allow_nonfinite))
    return results


def _restore_one(
    predictor: Predictor,
    image: Any,
    dst: Path,
    dtype: str | None,
    warn: Callable[[str], None] | None,
    allow_nonfinite: bool = False,
) -> RestoreResult:
    from microrestore.io import kept_metadata, output_memmap, write_image
    from microrestore.io.lazy import is_lazy

    start = time.perf_counter()
    _domain_warnings(predictor, image, warn)
    metadata = kept_metadata(image)
    dtype = requested_dtype(predictor, dtype)
    out_dtype = output_dtype(image.data.dtype, dtype)
    nbytes = int(np.prod(image.data.shape)) * max(out_dtype.itemsize, 4)
    streamed = isinstance(image.data, np.memmap) or is_lazy(image.data) or nbytes > STREAM_BYTES
    writer = _streamed_writer(dst) if streamed else None
    if streamed and writer is not None:
        from microrestore.io.atomic import atomic_path

        with atomic_path(dst, keep_name=True, replace_folder=True) as tmp:
            with writer(tmp, image.data.shape, out_dtype, image.axes, image.pixel_size) as array:
                sink = output_sink(image.data.dtype, image.data.shape, dtype, array)
                predictor.predict(image, out=sink)
                _check_finite(sink, dst, image, predictor, allow_nonfinite)
    elif streamed and dst.name.lower().endswith((".tif", ".tiff")):
        with output_memmap(
            dst, image.data.shape, out_dtype, image.axes, pixel_size=image.pixel_size, metadata=metadata
        ) as mm:
            sink = output_sink(image.data.dtype, image.data.shape, dtype, mm)
            predictor.predict(image, out=sink)
            _check_finite(sink, dst, image, predictor, allow_nonfinite)
    else:
        streamed = False
        sink = output_sink(image.data.dtype, image.data.shape, dtype)
        predictor.predict(image, out=sink)
        _check_finite(sink, dst, image, predictor, allow_nonfinite)
        written = settled_output(sink)
        out_dtype = written.dtype
        write_image(dst, written, image.axes, pixel_size=image.pixel_size, metadata=metadata)
    if sink.non_finite and warn is not None:
        share = 100.0 * sink.non_finite / max(1, sink.size)
        kept = "kept" if out_dtype.kind == "f" else "clipped to the dtype's range (NaN to 0)"
        warn(f"{dst}: {sink.non_finite} NaN or infinite values ({share:.3g}%) {kept} (--allow-nonfinite)")
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
        non_finite=sink.non_finite,
    )


def _restore_with_sigma(
    predictor: Predictor,
    image: Any,
    dst: Path,
    dtype: str | None,
    warn: Callable[[str], None] | None,
    allow_nonfinite: bool,
) -> RestoreResult:
    """Restore ``image`` and its uncertainty map in memory, then write both (``--uncertainty``)."""
    from microrestore.io import kept_metadata, write_image
    from microrestore.io.lazy import is_lazy

    start = time.perf_counter()
    if isinstance(image.data, np.memmap) or is_lazy(image.data):
        raise InputError("--uncertainty holds the image in memory; it is too large (restore it in parts)", image.path)
    _domain_warnings(predictor, image, warn)
    dtype = requested_dtype(predictor, dtype)
    sink = output_sink(image.data.dtype, image.data.shape, dtype)
    predictor.predict(image, out=sink)
    _check_finite(sink, dst, image, predictor, allow_nonfinite)
    written = settled_output(sink)
    assessed = _assessment(image, predictor, getattr(predictor, "method", "method"), np.asarray(sink.array, np.float32))
    write_image(dst, written, image.axes, pixel_size=image.pixel_size, metadata=kept_metadata(image))
    sigma = sigma_path(dst)
    write_image(sigma, np.asarray(assessed.sigma, np.float32), image.axes, pixel_size=image.pixel_size)
    return RestoreResult(
        input=image.path or Path("<array>"),
        output=dst,
        shape=tuple(image.data.shape),
        dtype=str(written.dtype),
        seconds=time.perf_counter() - start,
        out_of_range=sink.out_of_range,
        streamed=False,
        non_finite=sink.non_finite,
        sigma=sigma,
        estimated_rmse=assessed.error.estimated_rmse,
    )


def _domain_warnings(predictor: Predictor, image: Any, warn: Callable[[str], None] | None) -> None:
    """Tell ``warn`` each line of the domain guard (:mod:`microrestore.engine.domain`) for ``image``."""
    if warn is not None and hasattr(predictor, "domain_warnings"):
        for line in predictor.domain_warnings(image):
            warn(line)


def _check_finite(sink: Any, dst: Path, image: Any, predictor: Any, allow: bool) -> None:
    """Refuse to publish ``dst`` when the result holds NaN or Inf (before its file is renamed into place)."""
    if not allow:
        sink.check_finite(dst, image.path, getattr(predictor, "method", None))


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
    if not source:
        raise InputError(f"no training images given to {method!r} (give source files, folders or globs)")
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
