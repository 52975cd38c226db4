"""The method contract: checks a plugin author runs on their own trainable method (as datasette ships fixtures).

Describe how to train a tiny model of the method in a :class:`MethodCase` and call :func:`check_method` (or the
single checks) from a test::

    from microrestore.testing.contract import MethodCase, check_method, paired_denoise_data

    CASE = MethodCase("my-method", paired_denoise_data, {"base_filters": 4, "patch_size": 16})

    def test_contract(tmp_path):
        check_method(CASE, tmp_path)

Every check runs the ``microrestore`` command line in-process, as a user would, on a few small simulated
images:

- :func:`check_max_seconds`: ``train --max-seconds`` stops in time with a valid checkpoint, and ``--resume``
  continues from it;
- :func:`check_exact_resume`: a run stopped by its time budget and resumed ends with the same weights as an
  uninterrupted one (no kill needed: the schedule spans the configured steps whatever the budget);
- :func:`check_predict_units`: the model restores an image in the input's units (not normalised ones);
- :func:`check_domain_guard`: the model records the training domain (``provenance.domain``) the domain guard
  compares inputs with;
- :func:`check_export`: where the method is exportable and bioimageio is installed, ``export`` writes a
  package that passes bioimageio's test and holds a model card (README).

The checks use pytest's ``assert`` (run them under pytest for readable failures) and return what they measured.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MethodCase",
    "check_domain_guard",
    "check_exact_resume",
    "check_export",
    "check_max_seconds",
    "check_method",
    "check_predict_units",
    "noisy_images_data",
    "paired_denoise_data",
    "run_cli",
    "unpaired_denoise_data",
]

#: ``data(folder, ndim) -> (source files, target files)``: writes the tiny training set of a case into ``folder``.
DataFactory = Callable[[Path, int], tuple[list[Path], list[Path]]]


@dataclass
class MethodCase:
    """How to train a tiny model of one method.

    Attributes
    ----------
    method
        The registered method name.
    data
        ``data(folder, ndim)`` writes the training files into a folder and returns ``(source, target)``
        (``target`` empty for self-supervised methods).
    config
        Settings for a tiny network (``--set key=value``), small enough to train a step in well under a second.
    ndims
        Spatial dimensions the method declares (a ``ndim`` setting is given for each); ``(2,)`` when the
        method has no ``ndim`` option.
    config_3d
        Settings added for the 3D runs.
    command
        The command that restores with the model (``denoise``, ``deblur``, ``restore`` or
        ``sim reconstruct``).
    args
        Extra ``train`` arguments (e.g. ``--unpaired``).
    domain
        Whether the model records its training domain (``provenance.domain``).
    exportable
        Whether ``microrestore export`` can package the model (bioimage.io).
    """

    method: str
    data: DataFactory
    config: dict[str, Any] = field(default_factory=dict)
    ndims: tuple[int, ...] = (2,)
    config_3d: dict[str, Any] = field(default_factory=dict)
    command: tuple[str, ...] = ("restore",)
    args: tuple[str, ...] = ()
    domain: bool = True
    exportable: bool = True

    def train_args(self, source: Sequence[Path], target: Sequence[Path], output: Path, **settings: Any) -> list[str]:
        """The ``microrestore train`` arguments of this case (``settings`` override :attr:`config`)."""
        args = ["train", self.method, *[a for p in source for a in ("--source", str(p))]]
        args += [a for p in target for a in ("--target", str(p))]
        args += ["-o", str(output), "--device", "cpu", "-q", *self.args]
        for key, value in {**self.config, **settings}.items():
            args += ["--set", f"{key}={_setting(value)}"]
        return args


def _setting(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    return str(value)


@dataclass
class CliRun:
    """The result of :func:`run_cli`."""

    exit_code: int
    output: str
    seconds: float


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks are fastest so, and reductions keep one order across runs
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_cli(*args: Any) -> CliRun:
    """Run ``microrestore ARGS`` in-process; return its exit status, its output (stdout and stderr) and time."""
    from microrestore.cli.app import main

    buffer = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer), _one_thread():
        code = main([str(a) for a in args])
    return CliRun(code, buffer.getvalue(), time.perf_counter() - started)


def _train(case: MethodCase, folder: Path, output: Path, *extra: str, **settings: Any) -> CliRun:
    source, target = _data(case, folder)
    result = run_cli(*case.train_args(source, target, output, **settings), *extra)
    assert result.exit_code == 0, f"{case.method}: train failed:\n{result.output}"
    return result


def _data(case: MethodCase, folder: Path) -> tuple[list[Path], list[Path]]:
    data = folder / "data"
    marker = data / ".done"
    if not marker.is_file():
        data.mkdir(parents=True, exist_ok=True)
        files = case.data(data, int(case.config.get("ndim") or 2))
        (data / ".files").write_text(
            "\n".join(["S " + str(p) for p in files[0]] + ["T " + str(p) for p in files[1]]), encoding="utf-8"
        )
        marker.touch()
    lines = (data / ".files").read_text(encoding="utf-8").splitlines()
    return [Path(x[2:]) for x in lines if x.startswith("S ")], [Path(x[2:]) for x in lines if x.startswith("T ")]


def _checkpoint_steps(output: Path) -> int:
    """The largest step of the checkpoints under ``output`` (a method with stages keeps one folder each)."""
    from microrestore.engine.checkpoints import read_checkpoint_record

    steps = [0]
    for folder in [output, *sorted(p for p in output.iterdir() if p.is_dir())]:
        with contextlib.suppress(Exception):
            steps.append(int(read_checkpoint_record(folder / "checkpoints")["step"]))
    return max(steps)


def check_max_seconds(case: MethodCase, folder: Path, seconds: float = 2.0, slack: float = 60.0) -> float:
    """``train --steps 100000 --max-seconds SECONDS`` stops in time, saves a model, and ``--resume`` continues.

    Returns the wall time of the limited run (data loading and saving included). ``slack`` bounds what may come
    on top of the budget (loading the data, the last step, the checkpoint and the model) on a busy CI machine.
    """
    output = folder / "max-seconds"
    result = _train(case, folder, output, "--steps", "100000", "--max-seconds", seconds)
    assert result.seconds < seconds + slack, f"{case.method}: --max-seconds {seconds} ran {result.seconds:.1f} s"
    assert (output / "config.yaml").is_file(), f"{case.method}: no model saved at the time limit"
    first = _checkpoint_steps(output)
    assert 0 < first < 100_000, f"{case.method}: checkpoint at step {first} after a {seconds} s budget"
    _train(case, folder, output, "--steps", "100000", "--max-seconds", seconds, "--resume")
    assert _checkpoint_steps(output) > first, f"{case.method}: --resume did not continue from step {first}"
    return result.seconds


def _weights(output: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(output / "weights.safetensors"))


def check_exact_resume(case: MethodCase, folder: Path, steps: int = 4) -> Path:
    """A run cut short by a tiny ``--max-seconds`` and resumed ends bitwise equal to an uninterrupted run.

    Returns the uninterrupted model folder.
    """
    whole, chunked = folder / "whole", folder / "chunked"
    _train(case, folder, whole, "--steps", steps)
    _train(case, folder, chunked, "--steps", steps, "--max-seconds", "0.001")
    assert _checkpoint_steps(chunked) < steps, f"{case.method}: the 1 ms budget did not stop training"
    _train(case, folder, chunked, "--steps", steps, "--resume")
    a, b = _weights(whole), _weights(chunked)
    assert sorted(a) == sorted(b), f"{case.method}: resumed model has other networks"
    for key in a:
        assert np.array_equal(a[key], b[key]), f"{case.method}: {key} differs after resume"
    return whole


def check_predict_units(
    case: MethodCase, model: Path, image: Path, folder: Path, targets: Sequence[Path] = ()
) -> np.ndarray:
    """The model restores ``image`` through the CLI into float32 values in the input's units.

    The values must lie within a span of the range of ``image`` and, for methods that map onto their targets'
    intensities (image-to-image translation), of ``targets``: a prediction left on the network's normalised
    scale fails.
    """
    from microrestore.io import read_image

    out = folder / "restored.tif"
    args = [*case.command, str(image), "-o", str(out), "--method", case.method, "--model", str(model)]
    result = run_cli(*args, "--device", "cpu", "--dtype", "float32", "-q")
    assert result.exit_code == 0, f"{case.method}: restore failed:\n{result.output}"
    restored = np.asarray(read_image(out).data)
    assert restored.dtype == np.float32 and np.isfinite(restored).all()
    ranges = [np.percentile(np.asarray(read_image(p).data, np.float64), [0.1, 99.9]) for p in [image, *targets]]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    span = max(high - low, 1e-6)
    median = float(np.median(restored))
    assert low - span <= median <= high + span, (
        f"{case.method}: restored median {median:g} is not in the input's units ({low:g} to {high:g})"
    )
    return restored


def check_domain_guard(case: MethodCase, model: Path) -> None:
    """The model records its training domain (``provenance.domain``) for the domain guard."""
    from microrestore.engine.modeldir import read_model_config

    document, _ = read_model_config(model)
    domain = (document.get("provenance") or {}).get("domain")
    if case.domain:
        assert isinstance(domain, dict) and domain, f"{case.method}: no provenance.domain in the model"


def check_export(case: MethodCase, model: Path, folder: Path) -> Path | None:
    """``microrestore export`` writes a tested bioimage.io package with a model card (skipped without bioimageio)."""
    import importlib.util
    import zipfile

    if not case.exportable or importlib.util.find_spec("bioimageio.core") is None:
        return None
    package = folder / "package.zip"
    result = run_cli("export", str(model), "-o", str(package), "--author", "contract test")
    assert result.exit_code == 0, f"{case.method}: export failed:\n{result.output}"
    with zipfile.ZipFile(package) as archive:
        assert any(n.lower().endswith("readme.md") for n in archive.namelist()), f"{case.method}: no model card"
    return package


def check_method(case: MethodCase, folder: Path, *, export: bool = True) -> dict[str, Any]:
    """Run every check of the contract on ``case``; returns what was measured (``max_seconds_wall``)."""
    report: dict[str, Any] = {"max_seconds_wall": check_max_seconds(case, folder / "budget")}
    for ndim in case.ndims:
        where = folder / f"{ndim}d"
        settings = {"ndim": ndim} if len(case.ndims) > 1 or ndim == 3 else {}
        settings.update(case.config_3d if ndim == 3 else {})
        sub = MethodCase(**{**case.__dict__, "config": {**case.config, **settings}})
        model = check_exact_resume(sub, where)
        check_domain_guard(sub, model)
        sources, targets = _data(sub, where)
        image = sources[0]
        if image.is_dir():  # a folder of sources (e.g. raw SIM stacks): predict its first file
            image = sorted(image.glob("*.tif"))[0]
        check_predict_units(sub, model, image, where, targets[:1])
        if export and ndim == 2:
            check_export(sub, model, where)
    return report


# ---------------------------------------------------------------------------------------------------------
# Tiny training sets


def _scene(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Smooth blobs on a background, in photons."""
    from scipy.ndimage import gaussian_filter

    blobs = gaussian_filter((rng.random(shape) > 0.97).astype(np.float64), 1.5)
    return 5 + 60 * blobs / max(float(blobs.max()), 1e-9)


def _write_pairs(folder: Path, scenes: list[np.ndarray], rng: np.random.Generator) -> tuple[list[Path], list[Path]]:
    from microrestore.io import write_image

    sources, targets = [], []
    for i, scene in enumerate(scenes):
        axes = "ZYX" if scene.ndim == 3 else "YX"
        for sub, image in (("noisy", rng.poisson(scene) + 100), ("clean", np.round(scene * 10) + 100)):
            path = folder / sub / f"field_{i:03d}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_image(path, image.astype(np.uint16), axes)
            (sources if sub == "noisy" else targets).append(path)
    return sources, targets


def paired_denoise_data(folder: Path, ndim: int = 2, n: int = 3, size: int = 48) -> tuple[list[Path], list[Path]]:
    """``n`` noisy (Poisson, offset 100) and clean (10x the photons) pairs, ``size`` pixels wide (3D: 8 planes)."""
    rng = np.random.default_rng(3)
    shape = (size, size) if ndim == 2 else (8, size, size)
    return _write_pairs(folder, [_scene(rng, shape) for _ in range(n)], rng)


def unpaired_denoise_data(folder: Path, ndim: int = 2) -> tuple[list[Path], list[Path]]:
    """Noisy images (domain A) and clean images of other fields (domain B)."""
    noisy, clean = paired_denoise_data(folder, ndim, n=4)
    return noisy[:2], clean[2:]


def noisy_images_data(folder: Path, ndim: int = 2) -> tuple[list[Path], list[Path]]:
    """Noisy images only: the input of self-supervised methods (2D: time-lapses ``TYX``; 3D: stacks)."""
    from microrestore.io import write_image

    rng = np.random.default_rng(5)
    paths = []
    for i in range(2):
        scene = _scene(rng, (32, 32) if ndim == 2 else (8, 32, 32))
        frames = np.broadcast_to(scene, (8, 32, 32)) if ndim == 2 else scene
        path = folder / f"noisy_{i}.tif"
        write_image(path, (rng.poisson(frames) + 100).astype(np.uint16), "TYX" if ndim == 2 else "ZYX")
        paths.append(path)
    return paths, []
