"""What plugins register, and the bookkeeping behind the ``register(...)`` callbacks.

The core owns name clashes and provenance: a plugin hands over a :class:`Method` (or a reader, a writer, a
command) and the registry records which plugin it came from. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from microrestore.errors import InputError, MicrorestoreError, PluginError, Terminated

if TYPE_CHECKING:
    import numpy as np
    from pydantic import BaseModel

    from microrestore.io.images import ImageData

Task = Literal["denoise", "deblur", "sim", "restore"]
TASKS: tuple[str, ...] = ("denoise", "deblur", "sim", "restore")


@dataclass
class PredictOptions:
    """Options common to every method's inference.

    Attributes
    ----------
    device
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    tile
        Tile edge in pixels for tiled inference; ``None`` chooses from available memory.
    overlap
        Overlap between neighbouring tiles in pixels (blended with a smooth window).
    batch_size
        Tiles per forward pass; ``None`` chooses (1 on a CPU, where batching gains nothing and costs memory;
        4 on a GPU).
    params
        Method-specific options (``--set key=value``), validated by the method's ``predict_schema``.
    on_progress
        Called as ``on_progress(done, total)`` while an image is processed (the CLI's progress bar).
    precision
        Network inference precision: ``fp32`` (default: intensities are data), ``bf16``, ``fp16`` (CUDA) or
        ``auto`` (bf16 on CUDA devices that support it) under autocast.
    compile
        Compile the network with ``torch.compile`` on first use (falls back to eager mode with a warning when
        compilation fails).
    tta
        Test-time augmentation: run the network on the 8 rotations and flips of each tile (in YX) and average
        the results mapped back (8x the time; averages out a GAN's hallucinated texture and a network's
        orientation bias). Network methods only.
    trust_remote_code
        Run a foreign bioimage.io package whose weights need Python code that it ships or names
        (``--trust-remote-code``); without it such packages are refused (see ``docs/security.md``).
    """

    device: str = "auto"
    tile: int | None = None
    overlap: int = 32
    batch_size: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    on_progress: Callable[[int, int], None] | None = None
    precision: str = "fp32"
    compile: bool = False
    tta: bool = False
    trust_remote_code: bool = False

    def report(self, done: int, total: int) -> None:
        """Forward progress to :attr:`on_progress` when set."""
        if self.on_progress is not None:
            self.on_progress(done, total)


@dataclass
class TrainRequest:
    """Everything ``microrestore train`` hands to a method's ``train`` callable.

    Attributes
    ----------
    source, target
        Input files (already expanded from folders and globs); ``target`` is empty for unpaired or
        self-supervised methods that take one set.
    output
        The model folder to write.
    config
        Method configuration values (from ``--config`` and ``--set``), validated by ``config_schema``.
    steps
        Override of the configured number of training steps.
    resume
        Continue from the last checkpoint in ``output``.
    device
        Device string, as for :class:`PredictOptions`.
    axes
        Axes of the training images when their metadata does not say.
    progress
        Show the live training display.
    max_seconds
        Stop training after this many seconds (with a checkpoint and a saved model) even if fewer steps were
        run; ``None``: no time limit. The learning-rate schedule still spans the configured steps.
    """

    source: list[Path]
    output: Path
    target: list[Path] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None
    resume: bool = False
    device: str = "auto"
    axes: str | None = None
    progress: bool = True
    max_seconds: float | None = None


@runtime_checkable
class Predictor(Protocol):
    """A loaded model (or a model-free algorithm) ready to restore images."""

    def predict(self, image: ImageData, out: Any = None) -> np.ndarray:
        """Restore ``image``; return float32 in the input's units.

        When ``out`` is given (an array or an :class:`~microrestore.engine.outputs.OutputSink` of the
        image's shape), results are written into it as ``out[index] = float32_block`` and ``out`` is
        returned: this lets the core stream into a memory-mapped file of the input's dtype.
        """
        ...


@dataclass
class Method:
    """A restoration method, as a plugin registers it.

    Attributes
    ----------
    name
        Command-line name (``--method NAME``), lower case with dashes.
    task
        ``denoise``, ``deblur``, ``sim`` or ``restore``.
    summary
        One line for ``microrestore methods``.
    load
        ``load(model, options) -> Predictor``; ``model`` is a zoo id, a path, or ``None`` for the default.
    train
        ``train(request) -> Path`` or ``None`` for methods that need no training.
    config_schema
        Pydantic model of the training configuration.
    predict_schema
        Pydantic model of the method's inference options (``--set key=value`` on restore commands).
    default_model
        Zoo id or path of the model used when ``--model`` is not given.
    needs_model
        ``False`` for classical methods that run without weights.
    self_supervised
        ``True`` when ``train`` learns from source images alone (no targets) and the model it writes can be
        loaded by ``load``: ``restore --self-supervised`` then trains on each input itself before restoring it.
    self_supervised_config
        Training configuration values a one-shot ``--self-supervised`` run starts from when the user gives no
        configuration file: a network sized for a CPU and a step count that fits the default time budget (the
        user's ``--set`` keys still override single values). Empty: the method's own defaults.
    citation
        Reference for the method.
    """

    name: str
    task: Task
    summary: str
    load: Callable[[str | Path | None, PredictOptions], Predictor]
    train: Callable[[TrainRequest], Path] | None = None
    config_schema: type[BaseModel] | None = None
    predict_schema: type[BaseModel] | None = None
    default_model: str | None = None
    needs_model: bool = True
    self_supervised: bool = False
    self_supervised_config: dict[str, Any] = field(default_factory=dict)
    citation: str = ""
    plugin: str = ""
    plugin_version: str = ""

    @property
    def plugin_label(self) -> str:
        """The plugin's name and version, for messages."""
        return f"{self.plugin} {self.plugin_version}".strip()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise PluginError(f"method {self.name!r}: task {self.task!r} is not one of {', '.join(TASKS)}")


def call_plugin(plugin: str, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a plugin's function; an unexpected exception becomes a :class:`PluginError` naming the plugin.

    microrestore's own errors (bad input, exit status 2), interruptions and memory errors pass unchanged; any
    other exception is a bug of the plugin, reported as ``plugin NAME VERSION failed in WHAT: Type: message``
    (exit status 1) with the original exception chained for ``--debug``.

    Parameters
    ----------
    plugin
        The plugin's name and version (e.g. ``"care 0.1.0"``).
    what
        What was called (``"care.load"``, ``"reader ome-zarr"``, ...).
    function, *args, **kwargs
        The call.
    """
    try:
        return function(*args, **kwargs)
    except (MicrorestoreError, MemoryError, Terminated):
        raise
    except SystemExit as exc:  # sys.exit() inside a plugin must not end the CLI silently
        label = plugin.strip() or "(unknown plugin)"
        raise PluginError(f"plugin {label} failed in {what}: it called sys.exit({exc.code!r})") from exc
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError":  # torch's: the CLI says "out of memory" with a hint
            raise
        text = " ".join(str(exc).split())
        label = plugin.strip() or "(unknown plugin)"
        raise PluginError(f"plugin {label} failed in {what}: {type(exc).__name__}: {text}") from exc


class PluginPredictor:
    """A plugin's predictor whose ``predict`` reports unexpected exceptions with the plugin's name.

    Other attributes are those of the wrapped predictor.
    """

    def __init__(self, predictor: Any, plugin: str, method: str) -> None:
        self.predictor = predictor
        self.plugin = plugin
        self.method = method

    def predict(self, image: Any, out: Any = None) -> Any:
        """``predictor.predict(image, out)`` through :func:`call_plugin`.

        When ``out`` is an :class:`~microrestore.engine.outputs.OutputSink`, a predictor that did not write
        every value of it (one that ignores ``out`` and returns its own array, or fills only part) is
        reported with the plugin's name instead of leaving uninitialised memory in the output.
        """
        what = f"{self.method} predict"
        result = call_plugin(self.plugin, what, self.predictor.predict, image, out=out)
        check = getattr(out, "check_filled", None)
        if check is not None:
            check(self.plugin, what, getattr(image, "path", None))
        return result

    def __getattr__(self, name: str) -> Any:
        if name == "predictor":
            raise AttributeError(name)
        return getattr(self.predictor, name)


@dataclass
class Reader:
    """A reader for an extra image format."""

    name: str
    suffixes: tuple[str, ...]
    read: Callable[..., ImageData]
    plugin: str = ""


@dataclass
class Writer:
    """A writer for an extra image format.

    ``open_streamed(path, shape, dtype, axes, pixel_size)``, when given, returns a context manager yielding
    a writable array of the new file: the core then streams large predictions into it block by block (and
    publishes ``path`` by renaming it into place when the block ends without error).
    """

    name: str
    suffixes: tuple[str, ...]
    write: Callable[..., Path]
    plugin: str = ""
    open_streamed: Callable[..., Any] | None = None


@dataclass
class Registry:
    """Everything registered by the loaded plugins."""

    methods: dict[str, Method] = field(default_factory=dict)
    readers: list[Reader] = field(default_factory=list)
    writers: list[Writer] = field(default_factory=list)
    commands: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)

    def add_method(self, method: Method, plugin: str, version: str) -> None:
        """Record ``method``; a second method with the same name is refused with the plugins' names."""
        if not isinstance(method, Method):
            got = type(method).__name__
            raise PluginError(f"plugin {plugin} registered {got}, not a microrestore Method")
        existing = self.methods.get(method.name)
        if existing is not None:
            raise PluginError(
                f"plugin {plugin} registers method {method.name!r}, already registered by {existing.plugin}"
            )
        method.plugin, method.plugin_version = plugin, version
        self.methods[method.name] = method

    def method(self, name: str, task: str | None = None) -> Method:
        """Return the method called ``name``; unknown names get the list of known ones."""
        found = self.methods.get(name)
        if found is None:
            from microrestore.suggest import did_you_mean

            known = ", ".join(sorted(self.methods)) or "none (are the plugins installed?)"
            raise InputError(f"unknown method {name!r}{did_you_mean(name, self.methods)}; known methods: {known}")
        if task is not None and found.task != task and task != "restore":
            raise InputError(
                f"method {name!r} is a {found.task} method, not {task}; use 'microrestore {found.task}' "
                "or 'microrestore restore'"
            )
        return found

    def reader_for(self, path: Path) -> Reader | None:
        """Return the plugin reader whose suffix matches ``path``, if any."""
        return _match_suffix(self.readers, path)

    def writer_for(self, path: Path) -> Writer | None:
        """Return the plugin writer whose suffix matches ``path``, if any."""
        return _match_suffix(self.writers, path)


def _match_suffix(items: Sequence[Reader] | Sequence[Writer], path: Path) -> Any:
    name = path.name.lower()
    for item in items:
        if any(name.endswith(s.lower()) for s in item.suffixes):
            return item
    return None
