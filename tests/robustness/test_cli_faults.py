"""Faults that used to end in a silent wrong result, a traceback or a misleading exit status (issues 16, 19).

Each case names the defect it holds: non-finite outputs written without a word, nl-means zeroing negative
data, plugins that ignore ``out`` or call ``sys.exit``, Ctrl-C reported as success, console markup eating
bracketed user text, messages naming no file, a 20 KB licence error and invalid ``--json``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore.io import write_image

REPO = Path(__file__).resolve().parents[2]
NOISE = ["--set", "gain=1", "--set", "read_noise=1", "--set", "offset=100"]


def _image(shape: tuple[int, ...] = (64, 64), dtype: type = np.uint16, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).poisson(30, shape) + 100).astype(dtype)


def _one_line(result, code: int, *needles: str) -> str:
    """The single stderr line of a failed run (no traceback), checked for ``needles``."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- markup: user and library text is printed verbatim --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "[/x]"], "unknown method '[/x]'"),
        (["--method", "nl-means", "--set", "[/]=1"], "[/]"),
        (["--method", "care", "--model", "[/x]"], "[/x]"),
        (["--method", "nl[bold]means"], "unknown method 'nl[bold]means'"),
    ],
)
def test_bracketed_user_text_is_printed_verbatim(cli, tmp_path, args, needle):
    write_image(tmp_path / "in.tif", _image(), "YX")
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "out.tif", *args)
    _one_line(result, 2, needle)
    assert not (tmp_path / "out.tif").exists()


def test_glob_with_markup_closing_tag_is_one_line(cli, tmp_path):
    result = cli("denoise", str(tmp_path / "a[/bold]*.tif"), "-o", tmp_path / "out", "--method", "nl-means")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "[/bold]" in result.stderr


def test_bracketed_file_names_are_reported_as_written(cli, tmp_path):
    write_image(tmp_path / "cell[red]01.tif", _image(), "YX")
    result = cli("denoise", tmp_path / "cell[red]01.tif", "-o", tmp_path / "out[red]01.tif", "-m", "nl-means", *NOISE)
    assert result.exit_code == 0, result.output
    assert "out[red]01.tif" in result.stderr, result.stderr
    assert (tmp_path / "out[red]01.tif").is_file()


def test_install_hints_keep_their_extras(cli, monkeypatch):
    from microrestore.errors import MicrorestoreError

    def needs_extra(*args, **kwargs):
        raise MicrorestoreError("needs the bioimage extra: pip install 'microrestore[bioimage]' or [zarr]")

    monkeypatch.setattr("microrestore.cli.restore._run", needs_extra)
    result = cli("denoise", "x.tif", "-o", "y.tif", "--method", "nl-means")
    line = _one_line(result, 1)
    assert "'microrestore[bioimage]' or [zarr]" in line, line


def test_warning_lines_keep_brackets(cli, tmp_path):
    """The clipping warning names the output file verbatim."""
    data = np.full((64, 64), 5000.0, np.float32)
    data[::2] = 0.0
    write_image(tmp_path / "in.tif", data, "YX")
    out = tmp_path / "o[b]ut.tif"
    result = cli("denoise", tmp_path / "in.tif", "-o", out, "-m", "nl-means", "--dtype", "uint8", *NOISE)
    assert result.exit_code == 0, result.output
    assert f"Warning: {out}" in result.stderr, result.stderr


# -- Ctrl-C: exit status 130, a message, and for train the command that continues ---------------------


def test_ctrl_c_during_denoise_exits_130(cli, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("microrestore.api.restore_files", interrupted)
    write_image(tmp_path / "in.tif", _image(), "YX")
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "out.tif", "-m", "nl-means")
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == "interrupted"
    assert not (tmp_path / "out.tif").exists()


def test_ctrl_c_during_train_exits_130_with_the_resume_command(tmp_path):
    from microrestore.engine.checkpoints import read_checkpoint_record
    from microrestore.simulation import simulate

    simulate("timelapse", tmp_path / "data", n=1, seed=2, shape=(8, 32, 32), photons=20)
    movie = tmp_path / "data" / "noisy" / "movie_000.tif"
    model = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins")])}
    tiny = ["--set", "base_filters=4", "--set", "patch_size=16", "--set", "batch_size=2", "--set", "checkpoint_every=2"]
    args = ["train", "n2v", "--source", str(movie), "-o", str(model), "--device", "cpu", "--steps", "100000", *tiny]
    process = subprocess.Popen(
        [sys.executable, "-m", "microrestore", *args, "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while not (model / "checkpoints" / "checkpoint-last.json").is_file():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = err.decode()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr.splitlines()
    hint = next(line for line in stderr.splitlines() if line.startswith("to continue: "))
    command = shlex.split(hint.removeprefix("to continue: "))
    assert command[:2] == ["microrestore", "train"] and command[-1] == "--resume"
    assert command[2:4] == ["n2v", "--source"] and "--quiet" in command
    for option, value in [("--output", str(model)), ("--steps", "100000"), ("--device", "cpu")]:
        assert command[command.index(option) + 1] == value
    assert [command[i + 1] for i, item in enumerate(command) if item == "--set"] == tiny[1::2]
    step = read_checkpoint_record(model / "checkpoints")["step"]
    resumed = subprocess.run(
        [sys.executable, "-m", *[item for item in command if item != "--quiet"], "--max-seconds", "0.01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {step} of 100000" in resumed.stderr


# -- non-finite results are not written without being asked --------------------------------------------

FAULTY_PLUGIN = '''
import numpy as np

from microrestore import hookimpl
from microrestore.plugins.registry import Method


class Lazy:
    """Ignores out and returns its own array: the core used to write out's uninitialised memory."""

    def predict(self, image, out=None):
        return np.asarray(image.data, dtype=np.float32) * 2


class Half:
    """Fills only the first half of the rows."""

    def predict(self, image, out=None):
        rows = image.data.shape[0] // 2
        out[:rows] = np.asarray(image.data[:rows], dtype=np.float32)
        return out


class Poison:
    """Writes NaN and Inf (as NaN or huge weights do)."""

    def predict(self, image, out=None):
        result = np.asarray(image.data, dtype=np.float32).copy()
        result[0, :4] = [np.nan, np.inf, -np.inf, np.nan]
        out[...] = result
        return out


class Exits:
    def predict(self, image, out=None):
        raise SystemExit(3)


@hookimpl
def register_methods(register):
    for name, cls in (("lazy", Lazy), ("half", Half), ("poison", Poison), ("exits", Exits)):
        register(Method(name=name, task="restore", summary=name, load=lambda model, options, c=cls: c(),
                        needs_model=False))
'''


@pytest.fixture
def faulty(install_plugin):
    install_plugin("faulty-plugin", "0.3", {"faulty": "mr_faulty"}, {"mr_faulty": FAULTY_PLUGIN})


@pytest.mark.parametrize("method", ["lazy", "half"])
def test_predictor_that_does_not_fill_out_is_named(cli, tmp_path, faulty, method):
    write_image(tmp_path / "in.tif", _image(), "YX")
    result = cli("restore", tmp_path / "in.tif", "-o", tmp_path / "out.tif", "-m", method)
    line = _one_line(result, 1, "plugin faulty 0.3", f"{method} predict", "in.tif")
    assert "of 4096 values written" in line
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("dtype", ["same", "float32"])
def test_nan_or_inf_result_is_not_written(cli, tmp_path, faulty, dtype):
    work = tmp_path / "work"
    work.mkdir()
    write_image(work / "in.tif", _image(), "YX")
    out = work / "out.tif"
    result = cli("restore", work / "in.tif", "-o", out, "-m", "poison", "--dtype", dtype)
    _one_line(result, 1, str(out), "not written", "4 NaN or infinite", "--allow-nonfinite")
    assert list(work.iterdir()) == [work / "in.tif"]  # no output, no temporary file


def test_allow_nonfinite_writes_with_a_warning(cli, tmp_path, faulty):
    write_image(tmp_path / "in.tif", _image(), "YX")
    out = tmp_path / "out.tif"
    result = cli("restore", tmp_path / "in.tif", "-o", out, "-m", "poison", "--dtype", "float32", "--allow-nonfinite")
    assert result.exit_code == 0, result.output
    assert "4 NaN or infinite values" in result.stderr
    written = tifffile.imread(out)
    assert np.isnan(written[0, 0]) and np.isinf(written[0, 1])


def test_streamed_nan_result_leaves_no_file(tmp_path, faulty, monkeypatch):
    from microrestore import api
    from microrestore.errors import MicrorestoreError

    monkeypatch.setattr(api, "STREAM_BYTES", 1)  # stream through a memory-mapped TIFF
    work = tmp_path / "work"
    work.mkdir()
    write_image(work / "in.tif", _image(), "YX")
    with pytest.raises(MicrorestoreError, match="not written"):
        api.restore_files([work / "in.tif"], work / "out.tif", method="poison", dtype="float32")
    assert sorted(p.name for p in work.iterdir()) == ["in.tif"]


def test_plugin_sys_exit_in_predict_is_reported(cli, tmp_path, faulty):
    write_image(tmp_path / "in.tif", _image(), "YX")
    result = cli("restore", tmp_path / "in.tif", "-o", tmp_path / "out.tif", "-m", "exits")
    _one_line(result, 1, "plugin faulty 0.3", "sys.exit(3)")


def _huge_pixel_image(tmp_path: Path) -> Path:
    data = _image((96, 96), np.float32)
    data[40, 40] = 3e38
    write_image(tmp_path / "huge.tif", data, "YX")
    return tmp_path / "huge.tif"


def test_nl_means_keeps_its_result_around_a_huge_pixel(cli, tmp_path):
    path = _huge_pixel_image(tmp_path)
    result = cli("denoise", path, "-o", tmp_path / "out.tif", "-m", "nl-means", "--dtype", "float32", *NOISE)
    assert result.exit_code == 0, result.output
    out = tifffile.imread(tmp_path / "out.tif")
    assert np.isfinite(out).all()
    assert out[40, 40] == pytest.approx(3e38, rel=1e-3)  # the value is data: kept, not clipped
    clean = tifffile.imread(path)
    clean[40, 40] = 130.0
    write_image(tmp_path / "clean.tif", clean, "YX")
    cli("denoise", tmp_path / "clean.tif", "-o", tmp_path / "ref.tif", "-m", "nl-means", *NOISE)
    ref = tifffile.imread(tmp_path / "ref.tif")
    far = np.ones(out.shape, bool)
    far[40 - 10 : 40 + 11, 40 - 10 : 40 + 11] = False  # search radius 6 + patch radius 2 (+ margin)
    np.testing.assert_allclose(out[far], ref[far], rtol=1e-4)


@pytest.mark.parametrize(
    ("method", "args", "needle"),
    [
        ("richardson-lucy", ["--set", "na=1.2", "--set", "wavelength_nm=500", "--set", "pixel_size_nm=100"], "FFT"),
        ("care", [], "receptive field"),
    ],
)
def test_huge_pixel_is_refused_by_fft_and_network_methods(cli, tmp_path, method, args, needle):
    path = _huge_pixel_image(tmp_path)
    result = cli("restore", path, "-o", tmp_path / "out.tif", "-m", method, *args)
    _one_line(result, 2, "huge.tif", "3e+38", needle)
    assert not (tmp_path / "out.tif").exists()


def test_richardson_lucy_of_huge_values_does_not_overflow():
    from microrestore_richardson_lucy.deconv import richardson_lucy

    image = np.random.default_rng(0).random((40, 40)).astype(np.float32) * 100
    psf = np.ones((5, 5))
    reference = richardson_lucy(image, psf, iterations=5, tv_weight=0.01)
    scaled = richardson_lucy(image * np.float32(2.0**120), psf, iterations=5, tv_weight=0.01)
    assert np.isfinite(scaled).all()
    np.testing.assert_array_equal(scaled / np.float32(2.0**120), reference)  # scaling by 2**k is exact


# -- nl-means keeps negative (background-subtracted) data in its units ---------------------------------


def test_nl_means_keeps_negative_data(cli, tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:96, :96]
    clean = 200 + 150 * np.sin(x / 7.0) * np.cos(y / 9.0)
    noisy = rng.poisson(clean / 2.0) * 2.0 + rng.normal(0, 3, clean.shape)
    data = np.round(noisy - 300).astype(np.int16)  # background-subtracted: mostly negative
    write_image(tmp_path / "in.tif", data, "YX")
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "out.tif", "-m", "nl-means")
    assert result.exit_code == 0, result.output
    out = tifffile.imread(tmp_path / "out.tif").astype(np.float64)
    assert tifffile.imread(tmp_path / "out.tif").dtype == np.float32  # --dtype auto: float32 in the input's units
    truth = clean - 300
    assert np.count_nonzero(out == 0) < 0.01 * out.size  # used to be 88 % zeros
    assert abs(out.mean() - data.mean()) < 2.0  # the input's units
    assert np.sqrt(np.mean((out - truth) ** 2)) < 0.5 * np.sqrt(np.mean((data - truth) ** 2))


# -- plugin loading: unknown names and sys.exit ---------------------------------------------------------


def test_unknown_name_in_load_plugins_is_an_error_in_strict_mode(cli, monkeypatch):
    monkeypatch.setenv("MICRORESTORE_LOAD_PLUGINS", "care,carre")
    monkeypatch.setenv("MICRORESTORE_STRICT_PLUGINS", "1")
    result = cli("methods")
    _one_line(result, 1, "carre", "MICRORESTORE_LOAD_PLUGINS", "not installed")


def test_unknown_name_in_load_plugins_warns(cli, monkeypatch):
    monkeypatch.setenv("MICRORESTORE_LOAD_PLUGINS", "carre")
    result = cli("methods", "--json")
    assert result.exit_code == 0
    assert "Warning: plugin carre named in MICRORESTORE_LOAD_PLUGINS is not installed" in result.stderr


EXITS_ON_IMPORT = "import sys\nsys.exit(3)\n"
EXITS_IN_HOOK = """
import sys

from microrestore import hookimpl


@hookimpl
def register_methods(register):
    sys.exit(3)
"""


@pytest.mark.parametrize("source", [EXITS_ON_IMPORT, EXITS_IN_HOOK])
def test_plugin_calling_sys_exit_is_a_warning(cli, install_plugin, source):
    install_plugin("quitter", "1.0", {"quitter": "mr_quitter"}, {"mr_quitter": source})
    result = cli("methods", "--json")
    assert result.exit_code == 0, result.output
    assert "plugin quitter 1.0" in result.stderr and "sys.exit(3)" in result.stderr
    assert any(row["name"] == "care" for row in json.loads(result.stdout))


def test_plugin_calling_sys_exit_is_an_error_in_strict_mode(cli, install_plugin, monkeypatch):
    install_plugin("quitter", "1.0", {"quitter": "mr_quitter"}, {"mr_quitter": EXITS_ON_IMPORT})
    monkeypatch.setenv("MICRORESTORE_STRICT_PLUGINS", "1")
    _one_line(cli("methods"), 1, "plugin quitter 1.0", "sys.exit(3)")


# -- messages name the file and the option as the user typed it ----------------------------------------


def test_evaluate_constant_truth_names_the_file_and_the_option(cli, tmp_path):
    write_image(tmp_path / "pred.tif", _image(), "YX")
    write_image(tmp_path / "truth.tif", np.full((64, 64), 7, np.uint16), "YX")
    line = _one_line(cli("evaluate", tmp_path / "pred.tif", tmp_path / "truth.tif"), 2, "truth.tif", "--data-range")
    assert "data_range" not in line.replace(str(tmp_path), "")


def test_evaluate_bad_data_range_names_the_option(cli, tmp_path):
    write_image(tmp_path / "pred.tif", _image(), "YX")
    result = cli("evaluate", tmp_path / "pred.tif", tmp_path / "pred.tif", "--data-range", "-1")
    line = _one_line(result, 2, "pred.tif", "--data-range must be a positive")
    assert "data_range" not in line.replace(str(tmp_path), "")


def test_evaluate_json_is_strict(cli, tmp_path):
    """A constant prediction has no correlation (NaN); identical images an infinite PSNR: both are null."""
    write_image(tmp_path / "flat.tif", np.full((64, 64), 7, np.uint16), "YX")
    write_image(tmp_path / "truth.tif", _image(), "YX")
    result = cli("evaluate", tmp_path / "flat.tif", tmp_path / "truth.tif", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"invalid JSON constant {name}"))
    assert rows["prediction"]["pcc"] is None
    same = cli("evaluate", tmp_path / "truth.tif", tmp_path / "truth.tif", "--json")
    assert json.loads(same.stdout, parse_constant=lambda name: pytest.fail(name))["prediction"]["psnr"] is None


def test_train_patch_larger_than_an_image_names_the_file(cli, tmp_path):
    for folder in ("src", "tgt"):
        (tmp_path / folder).mkdir()
        write_image(tmp_path / folder / "small.tif", _image((24, 24)), "YX")
    result = cli(
        "train", "care", "--source", tmp_path / "src", "--target", tmp_path / "tgt", "-o", tmp_path / "m",
        "--steps", "1", "--set", "patch_size=32", "--device", "cpu",
    )  # fmt: skip
    _one_line(result, 2, str(tmp_path / "src" / "small.tif"), "(24, 24)", "smaller than the training patch (32, 32)")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("licence", "suggestion"), [("BSD3", "BSD-3-Clause"), ("mit", "'MIT'"), ("qqqq", "MIT")])
def test_export_bad_licence_is_one_short_line(cli, tmp_path, licence, suggestion):
    result = cli("export", "care-demo-2d", "-o", tmp_path / "x.zip", "--license", licence)
    line = _one_line(result, 2, f"unknown licence '{licence}'", suggestion)
    assert len(line) < 300, len(line)
    assert not (tmp_path / "x.zip").exists()


def test_export_refuses_to_overwrite_its_own_input(cli, tmp_path):
    package = tmp_path / "model.zip"
    package.write_bytes(b"PK\x05\x06" + bytes(18))  # any existing file: refused before it is read
    before = package.read_bytes()
    _one_line(cli("export", package, "-o", package), 2, "model.zip", "is the model being exported")
    _one_line(cli("export", package, "-o", tmp_path / "." / "model.zip"), 2, "is the model being exported")
    assert package.read_bytes() == before


def test_model_with_nan_weights_writes_nothing(cli, tmp_path):
    """A diverged training can save NaN weights (with a valid checksum): its all-NaN output is refused."""
    import torch
    import yaml
    from safetensors.torch import load_file, save_file

    from microrestore import api
    from microrestore.engine.checkpoints import sha256_file
    from microrestore.simulation import simulate

    simulate("denoise", tmp_path / "sim", n=2, seed=3, photons=20, shape=(48, 48))
    config = {"base_filters": 4, "depth": 1, "patch_size": 16, "batch_size": 2, "validation_every": 1}
    model = api.train(
        "care", [tmp_path / "sim" / "noisy"], tmp_path / "model", target=[tmp_path / "sim" / "clean"],
        config=config, steps=1, progress=False, device="cpu",
    )  # fmt: skip
    weights = model / "weights.safetensors"
    tensors = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in load_file(weights).items()
    }
    save_file(tensors, weights)
    document = yaml.safe_load((model / "config.yaml").read_text())
    document["weights"]["sha256"] = sha256_file(weights)
    (model / "config.yaml").write_text(yaml.safe_dump(document))
    out = tmp_path / "out.tif"
    # -q: off a terminal the inference progress comes as plain status lines on stderr; the error is one line
    result = cli(
        "denoise", tmp_path / "sim" / "noisy" / "field_000.tif", "-o", out, "-m", "care", "--model", model, "-q"
    )
    _one_line(result, 1, str(out), "not written", "NaN or infinite", "100% of the pixels")
    assert not out.exists()


@pytest.mark.parametrize("method", ["care", "n2v", "rdl-denoise", "c2gan", "comi", "rdl-sim"])
def test_training_without_source_images_is_a_bad_input(method: str, tmp_path) -> None:
    # api.train with an empty source list used to reach the plugin, which failed with an IndexError
    from microrestore import api
    from microrestore.errors import InputError

    with pytest.raises(InputError, match="no training images"):
        api.train(method, [], tmp_path / "model", progress=False)
    assert not (tmp_path / "model").exists()
