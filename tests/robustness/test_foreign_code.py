"""Foreign bioimage.io packages run no code of theirs without an opt-in, and their output is never cast to 0/1.

The packages are real zips built by :mod:`tests.robustness.corpus`: their ``arch.py`` (or the library callable
they name) writes a marker file when it runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.e2e.test_cli import _assert_one_line_error
from tests.robustness import corpus

pytest.importorskip("bioimageio.core")


@pytest.mark.parametrize("name", ["package-arch-py", "package-arch-library-call"])
def test_package_whose_weights_need_code_is_refused(cli, tmp_path: Path, name: str) -> None:
    made = corpus.build(name, tmp_path)
    out = tmp_path / "out.tif"
    result = cli("denoise", made.extra["input"], "-o", out, "--method", "care", "--model", made.path)
    _assert_one_line_error(result, str(made.path), "--trust-remote-code", "pytorch_state_dict")
    assert not made.marker.exists(), "the package's code ran"
    assert not out.exists()


def test_refusal_names_the_shipped_file(cli, tmp_path: Path) -> None:
    made = corpus.build("package-arch-py", tmp_path)
    result = cli("denoise", made.extra["input"], "-o", tmp_path / "o.tif", "--method", "care", "--model", made.path)
    _assert_one_line_error(result, "arch.py")


def test_opt_in_runs_the_code_and_writes_float32(cli, tmp_path: Path) -> None:
    made = corpus.build("package-arch-py", tmp_path)
    out = tmp_path / "out.tif"
    args = ["denoise", made.extra["input"], "-o", out, "--method", "care", "--model", made.path, "-q"]
    result = cli(*args, "--trust-remote-code")
    assert result.exit_code == 0, result.output
    assert made.marker.exists()  # the user asked for it
    restored = tifffile.imread(out)
    # The model's output is 0..1 (percentile-normalised input): float32, not the input's uint16 as 0 and 1.
    assert restored.dtype == np.float32
    assert len(np.unique(restored)) > 10 and -0.5 < restored.min() < 0.2 and 0.8 < restored.max() < 1.5


def test_code_free_weights_are_preferred(cli, tmp_path: Path) -> None:
    made = corpus.build("package-arch-py-and-torchscript", tmp_path)
    out = tmp_path / "out.tif"
    result = cli("denoise", made.extra["input"], "-o", out, "--method", "care", "--model", made.path, "-q")
    assert result.exit_code == 0, result.output
    assert not made.marker.exists(), "arch.py ran although TorchScript weights were there"
    assert tifffile.imread(out).dtype == np.float32
    # Asked for explicitly, the input's type is the user's choice.
    result = cli(
        "denoise", made.extra["input"], "-o", out, "--method", "care", "--model", made.path, "--dtype", "same",
        "--overwrite",
    )  # fmt: skip
    assert result.exit_code == 0 and tifffile.imread(out).dtype == np.uint16


def test_api_facade_needs_the_same_opt_in(tmp_path: Path) -> None:
    from microrestore import api
    from microrestore.errors import InputError
    from microrestore.plugins.registry import PredictOptions

    made = corpus.build("package-arch-py", tmp_path)
    with pytest.raises(InputError, match="trust_remote_code=True"):
        api.restore_files([made.extra["input"]], tmp_path / "o.tif", method="care", model=made.path)
    with pytest.raises(InputError, match="--trust-remote-code"):
        api.restore(corpus.image(), "care", model=made.path, dtype=None)
    assert not made.marker.exists() and not (tmp_path / "o.tif").exists()
    image = corpus.image()
    restored = api.restore(
        image, "care", model=made.path, dtype=None, trust_remote_code=True, options=PredictOptions(device="cpu")
    )
    assert made.marker.exists() and restored.dtype == np.float32 and restored.max() < 1.5
    (result,) = api.restore_files(
        [made.extra["input"]], tmp_path / "o.tif", method="care", model=made.path, trust_remote_code=True
    )
    assert result.dtype == "float32"


def test_microrestore_exports_need_no_opt_in() -> None:
    """The bundled package (microrestore's export) has TorchScript weights: it needs no opt-in."""
    from bioimageio.core import load_model_description

    from microrestore import zoo
    from microrestore.bioimage.importer import choose_weights

    descr = load_model_description(zoo.BUNDLED_DIR / "care-demo-2d.zip")
    assert choose_weights(descr) == "torchscript"
