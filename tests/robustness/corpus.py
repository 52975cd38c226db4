"""The robustness corpus: hostile inputs built by script, so that the corpus can grow.

Each case is a *builder*: a function that takes an empty folder, writes the hostile thing into it and returns a
:class:`Case` (its path, the fragment the one-line error must contain, and anything else a test needs). Builders
register under a unique name with :func:`case`; tests build them into ``tmp_path`` with :func:`build`::

    from tests.robustness import corpus

    @corpus.case("config-depth-40", "model-config")
    def _deep(folder: Path) -> corpus.Case:
        ...
        return corpus.Case(model, needle="depth")

    def test_deep_config(tmp_path):
        made = corpus.build("config-depth-40", tmp_path)

A test module may register its own cases (they register when the module is imported). Writing the whole corpus
to a folder, for a look or for another tool, imports every ``tests/robustness/test_*.py`` module first::

    python -m tests.robustness.corpus OUT [GROUP]

Helpers shared by builders (a tiny model folder, a foreign bioimage.io package) live here too.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Name of the file a hostile package's code writes when it runs (see :func:`foreign_package`).
MARKER = "CODE-RAN"


@dataclass
class Case:
    """One built case.

    Attributes
    ----------
    path
        The hostile file or folder (what goes on the command line).
    needle
        A fragment the one-line error must contain ("" when the case is not an error case).
    marker
        A file whose existence shows that code shipped in the case ran (``None`` when the case runs none).
    extra
        Anything else a test needs (e.g. an input image for a hostile model).
    """

    path: Path
    needle: str = ""
    marker: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[Path], Case]


@dataclass(frozen=True)
class Entry:
    """A registered builder and its group (``model-config``, ``foreign-package``, ...)."""

    name: str
    group: str
    build: Builder


#: Every registered case by name.
REGISTRY: dict[str, Entry] = {}


def case(name: str, group: str = "misc") -> Callable[[Builder], Builder]:
    """Register the decorated builder as case ``name`` in ``group``; a name may be registered only once."""

    def register(builder: Builder) -> Builder:
        known = REGISTRY.get(name)
        if known is not None and known.build.__qualname__ != builder.__qualname__:
            raise ValueError(f"corpus case {name!r} is registered twice")
        REGISTRY[name] = Entry(name, group, builder)
        return builder

    return register


def names(group: str | None = None) -> list[str]:
    """The registered case names (of ``group`` when given), sorted."""
    return sorted(n for n, e in REGISTRY.items() if group is None or e.group == group)


def build(name: str, root: Path) -> Case:
    """Build case ``name`` into a new folder ``root/name`` and return it."""
    folder = Path(root) / name
    folder.mkdir(parents=True)
    return REGISTRY[name].build(folder)


# --------------------------------------------------------------------------------------------------------------
# Shared material


def image(shape: tuple[int, ...] = (64, 64), dtype: Any = np.uint16) -> np.ndarray:
    """A small Poisson-noise image (seeded): what a hostile model is run on."""
    return (np.random.default_rng(0).poisson(30, shape) + 100).astype(dtype)


def write_image(path: Path, data: np.ndarray | None = None) -> Path:
    """Write ``data`` (default: :func:`image`) as a TIFF at ``path``."""
    import tifffile

    tifffile.imwrite(path, image() if data is None else data)
    return path


def care_model(folder: Path, **unet: Any) -> Path:
    """A valid, tiny CARE model folder (a U-Net of depth 1, 4 filters unless ``unet`` says otherwise)."""
    from microrestore.engine.modeldir import save_model
    from microrestore.engine.normalization import PercentileNormalizer
    from microrestore.nn import UNet

    net = UNet(**{"base_filters": 4, "depth": 1, **unet})
    save_model(
        folder,
        method="care",
        networks={"net": net},
        network_specs={"net": net.spec},
        normalization=PercentileNormalizer().to_dict(),
        config={},
        axes="YX",
        provenance={},
        metrics={},
    )
    return folder


def edit_yaml(path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Load the YAML mapping at ``path``, apply ``edit`` to it in place and write it back."""
    import yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _torch_bytes(obj: Any, script: bool = False) -> bytes:
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.save is deprecated, still what zoos use
        if script:
            torch.jit.save(obj, buffer)
        else:
            torch.save(obj, buffer)
    return buffer.getvalue()


def _scale_module() -> Any:
    """A scripted module ``x * scale`` (scale 1): the package's network, runnable without Python code."""
    import torch

    class Scale(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.scale

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(Scale())


def foreign_package(
    folder: Path, *, architecture: str | None = "file", torchscript: bool = False, name: str = "foreign.zip"
) -> Case:
    """A bioimage.io (spec 0.5) package by somebody else: an identity network on a 0..1 normalised input.

    Parameters
    ----------
    folder
        Where to write the zip.
    architecture
        ``"file"``: ``pytorch_state_dict`` weights whose architecture is ``arch.py`` inside the zip; importing it
        writes ``folder/CODE-RAN``. ``"library"``: the architecture is ``os.system`` with a command that writes
        that file. ``None``: no ``pytorch_state_dict`` weights.
    torchscript
        Also (or only) carry TorchScript weights, which run without Python code from the package.

    Returns
    -------
    Case
        ``path`` the zip, ``marker`` the file the package's code would write, ``extra["input"]`` a uint16 TIFF.
    """
    marker = folder / MARKER
    files: dict[str, bytes] = {"README.md": b"# A model from elsewhere\n"}
    x = np.random.default_rng(1).uniform(0, 1, (1, 1, 64, 64)).astype(np.float32)
    files["test_input.npy"] = files["test_output.npy"] = _npy(x)
    weights: dict[str, Any] = {}
    if architecture is not None:
        files["weights.pt"] = _torch_bytes(_scale_state())
        if architecture == "file":
            files["arch.py"] = (
                "import torch\n\n"
                f"open({str(marker)!r}, 'w').write('arch.py ran')\n\n\n"
                "class Net(torch.nn.Module):\n"
                "    def __init__(self):\n"
                "        super().__init__()\n"
                "        self.scale = torch.nn.Parameter(torch.ones(1))\n\n"
                "    def forward(self, x):\n"
                "        return x * self.scale\n"
            ).encode()
            arch: dict[str, Any] = {"source": "arch.py", "callable": "Net", "kwargs": {}}
        elif architecture == "library":
            arch = {"import_from": "os", "callable": "system", "kwargs": {"command": f"touch '{marker}'"}}
        else:
            raise ValueError(f"architecture {architecture!r}")
        weights["pytorch_state_dict"] = {"source": "weights.pt", "pytorch_version": "2.1", "architecture": arch}
    if torchscript:
        files["weights_torchscript.pt"] = _torch_bytes(_scale_module(), script=True)
        weights["torchscript"] = {"source": "weights_torchscript.pt", "pytorch_version": "2.1"}
        if architecture is not None:
            weights["torchscript"]["parent"] = "pytorch_state_dict"
    digests = {key: hashlib.sha256(value).hexdigest() for key, value in files.items()}
    for entry in weights.values():
        entry["sha256"] = digests[entry["source"]]
        if "source" in entry.get("architecture", {}):
            entry["architecture"]["sha256"] = digests["arch.py"]

    def axis(a: str, out: bool) -> dict[str, Any]:
        size = {"tensor_id": "raw", "axis_id": a} if out else {"min": 16, "step": 16}
        return {"type": "space", "id": a, "size": size}

    def axes(out: bool) -> list[dict[str, Any]]:
        return [{"type": "batch"}, {"type": "channel", "channel_names": ["c0"]}, axis("y", out), axis("x", out)]

    rdf = {
        "format_version": "0.5.4",
        "type": "model",
        "name": "foreign identity model",
        "description": "an identity network on percentile-normalised input",
        "authors": [{"name": "Somebody Else"}],
        "cite": [{"text": "A paper", "doi": "10.1038/s41592-018-0216-7"}],
        "license": "MIT",
        "documentation": "README.md",
        "inputs": [
            {
                "id": "raw",
                "axes": axes(False),
                "test_tensor": {"source": "test_input.npy", "sha256": digests["test_input.npy"]},
                "preprocessing": [
                    {"id": "scale_range", "kwargs": {"axes": ["y", "x"], "min_percentile": 1, "max_percentile": 99}}
                ],
            }
        ],
        "outputs": [
            {
                "id": "out",
                "axes": axes(True),
                "test_tensor": {"source": "test_output.npy", "sha256": digests["test_output.npy"]},
            }
        ],
        "weights": weights,
    }
    import yaml

    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("rdf.yaml", yaml.safe_dump(rdf, sort_keys=False))
        for key, value in files.items():
            archive.writestr(key, value)
    return Case(path, needle="--trust-remote-code", marker=marker, extra={"input": write_image(folder / "in.tif")})


def _scale_state() -> dict[str, Any]:
    import torch

    return {"scale": torch.ones(1)}


# --------------------------------------------------------------------------------------------------------------
# Cases: model folders whose config.yaml lies (each refused in one line naming the file, exit 2)


def _edited_model(folder: Path, edit: Callable[[dict[str, Any]], None], needle: str) -> Case:
    model = care_model(folder / "model")
    edit_yaml(model / "config.yaml", edit)
    return Case(model, needle=needle, extra={"input": write_image(folder / "in.tif")})


def _set_net(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda document: document["networks"]["net"].update(values)


#: ``name: (edit of config.yaml, fragment of the error)``; each edit alone makes the folder invalid.
CONFIG_EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "config-depth-40": (_set_net(depth=40), "depth"),
    "config-base-filters-200000": (_set_net(base_filters=200000), "base_filters"),
    "config-depth-string": (_set_net(depth="3"), "depth"),
    "config-kernel-size-0": (_set_net(kernel_size=0), "kernel_size"),
    "config-unknown-network-option": (_set_net(bomb=1), "bomb"),
    "config-format-version-abc": (lambda d: d.update(format_version="abc"), "format_version"),
    "config-networks-net-unet": (lambda d: d.update(networks={"net": "unet"}), "networks.net"),
    "config-networks-list": (lambda d: d.update(networks=["unet"]), "networks"),
    "config-network-name-list": (_set_net(name=["unet"]), "unknown network"),
    "config-weights-sha256-short": (lambda d: d["weights"].update(sha256="abc"), "sha256"),
    "config-method-number": (lambda d: d.update(method=7), "method"),
    "config-axes-bad": (lambda d: d.update(axes="YX; rm -rf"), "axes"),
    "config-training-depth-40": (lambda d: d.update(config={"depth": 40}), "depth"),
    "config-normalization-list": (lambda d: d.update(normalization=[1, 2]), "normalization"),
    "config-normalization-low-abc": (lambda d: d["normalization"].update(low="abc"), "normalization"),
    "config-normalization-low-above-high": (lambda d: d["normalization"].update(low=50, high=10), "low percentile"),
}


def _config_case(name: str) -> Builder:
    edit, needle = CONFIG_EDITS[name]
    return lambda folder: _edited_model(folder, edit, needle)


for _name in CONFIG_EDITS:
    case(_name, "model-config")(_config_case(_name))


def _fifo_in_model(folder: Path, member: str) -> Case:
    model = care_model(folder / "model")
    (model / member).unlink()
    os.mkfifo(model / member)
    return Case(model, needle="not a regular file", extra={"input": write_image(folder / "in.tif")})


@case("config-yaml-is-a-fifo", "model-config")
def _config_fifo(folder: Path) -> Case:
    return _fifo_in_model(folder, "config.yaml")


@case("weights-are-a-fifo", "model-config")
def _weights_fifo(folder: Path) -> Case:
    return _fifo_in_model(folder, "weights.safetensors")


# --------------------------------------------------------------------------------------------------------------
# Cases: foreign bioimage.io packages that run code


@case("package-arch-py", "foreign-package")
def _package_arch_py(folder: Path) -> Case:
    return foreign_package(folder, architecture="file")


@case("package-arch-library-call", "foreign-package")
def _package_arch_library(folder: Path) -> Case:
    return foreign_package(folder, architecture="library")


@case("package-arch-py-and-torchscript", "foreign-package")
def _package_both(folder: Path) -> Case:
    made = foreign_package(folder, architecture="file", torchscript=True)
    made.needle = ""  # runs: through the TorchScript weights, without arch.py
    return made


# --------------------------------------------------------------------------------------------------------------
# Writing the corpus


def _import_test_modules() -> None:
    """Import every ``tests/robustness/test_*.py`` so that their registrations run."""
    here = Path(__file__).resolve().parent
    for path in sorted(here.glob("test_*.py")):
        importlib.import_module(f"tests.robustness.{path.stem}")


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.robustness.corpus OUT [GROUP]``: build every case (of GROUP) into OUT; print the count."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m tests.robustness.corpus OUT [GROUP]", file=sys.stderr)
        return 2
    _import_test_modules()
    root = Path(args[0])
    root.mkdir(parents=True, exist_ok=True)
    built = [build(n, root) for n in names(args[1] if len(args) > 1 else None)]
    for made in built:
        print(os.path.relpath(made.path, root))
    print(f"{len(built)} cases in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
