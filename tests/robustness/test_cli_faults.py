"""Faults that used to end in a silent wrong result, a traceback or a misleading exit status (issues 16, 19).

Each case names the defect it holds: non-finite outputs written without a word, nl-means zeroing negative
data, plugins that ignore ``out`` or call ``sys.exit``, Ctrl-C reported as success, console markup eating
bracketed user text, messages naming no file, a 20 KB licence error and invalid ``--json``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

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
        (["--method", "nl-means", "--set", "patch_size=[/bold]"], "--set for method 'nl-means'"),
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
