"""CARE end to end on the shared engine: train from the CLI, kill and resume, tiled and streamed prediction."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore import api
from microrestore.io import ImageData, read_image
from microrestore.plugins import PredictOptions

TINY = ["--set", "base_filters=8", "--set", "batch_size=4", "--set", "patch_size=32"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("sim")
    simulate("denoise", root, n=4, seed=3, photons=20, shape=(96, 96))
    return root


@pytest.fixture(scope="module")
def model(sim, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("models") / "care"
    api.train(
        "care",
        [sim / "noisy"],
        out,
        target=[sim / "clean"],
        steps=40,
        progress=False,
        config={"base_filters": 8, "batch_size": 4, "patch_size": 32, "validation_every": 20},
    )
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_train_writes_a_model_folder(model):
    assert {p.name for p in model.iterdir()} >= {"config.yaml", "weights.safetensors", "metrics.csv", "checkpoints"}
    rows = _rows(model / "metrics.csv")
    assert int(rows[-1]["step"]) == 40
    assert rows[-1]["val_psnr"]


def test_cli_denoise_with_trained_model_writes_float32_or_the_input_dtype(cli, sim, model, tmp_path):
    src = sim / "noisy" / "field_000.tif"
    result = cli("denoise", src, "-o", tmp_path / "out.tif", "--method", "care", "--model", model, "-q")
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out.tif")
    assert out.data.dtype == np.float32 and out.data.shape == (96, 96)  # --dtype auto
    result = cli("denoise", src, "-o", tmp_path / "same.tif", "--method", "care", "--model", model, "-q", "--dtype",
                 "same")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "same.tif").data.dtype == np.uint16


def test_tiled_equals_whole_image(model):
    rng = np.random.default_rng(0)
    image = ImageData((rng.poisson(30, (200, 310)) + 100).astype(np.uint16), "YX")
    whole = api.restore(image, "care", model=model, options=PredictOptions(device="cpu", tile=None))
    tiled = api.restore(image, "care", model=model, options=PredictOptions(device="cpu", tile=64, overlap=16))
    assert np.abs(whole - tiled).max() < 1e-3 * (np.abs(whole).max() + 1)


def test_streamed_output_equals_in_memory(model, tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    tifffile.imwrite(tmp_path / "in.tif", (rng.poisson(30, (130, 150)) + 100).astype(np.uint16))
    options = PredictOptions(tile=64, overlap=16)  # float32 outputs: the same tiles, so the same values
    api.restore_files([tmp_path / "in.tif"], tmp_path / "mem.tif", method="care", model=model, options=options)
    monkeypatch.setattr(api, "STREAM_BYTES", 0)
    results = api.restore_files(
        [tmp_path / "in.tif"],
        tmp_path / "stream.tif",
        method="care",
        model=model,
        options=PredictOptions(tile=64, overlap=16),
    )
    assert results[0].streamed and results[0].dtype == "float32"
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "mem.tif"), tifffile.imread(tmp_path / "stream.tif"))


def test_stack_is_restored_plane_by_plane(model):
    rng = np.random.default_rng(2)
    stack = (rng.poisson(30, (3, 64, 72)) + 100).astype(np.uint16)
    out = api.restore(ImageData(stack, "TYX"), "care", model=model)
    single = api.restore(ImageData(stack[1], "YX"), "care", model=model)
    np.testing.assert_allclose(out[1], single, rtol=1e-5, atol=1e-3)


def test_training_refuses_to_overwrite_a_run(cli, sim, model):
    result = cli(
        "train", "care", "--source", sim / "noisy", "--target", sim / "clean", "-o", model, "--steps", "2", *TINY
    )
    assert result.exit_code == 2
    assert "--resume" in result.stderr


def test_unpaired_names_are_refused(cli, sim, tmp_path):
    (tmp_path / "t").mkdir()
    tifffile.imwrite(tmp_path / "t" / "other.tif", np.zeros((96, 96), np.float32))
    result = cli(
        "train",
        "care",
        "--source",
        sim / "noisy" / "field_000.tif",
        "--target",
        tmp_path / "t",
        "-o",
        tmp_path / "m",
        "--steps",
        "2",
        *TINY,
    )
    assert result.exit_code == 2 and "field_000.tif" in result.stderr


def test_bad_config_key_is_one_line(cli, sim, tmp_path):
    result = cli(
        "train",
        "care",
        "--source",
        sim / "noisy",
        "--target",
        sim / "clean",
        "-o",
        tmp_path / "m",
        "--set",
        "learnig_rate=1",
    )
    assert result.exit_code == 2 and "learnig_rate" in result.stderr and "Traceback" not in result.output


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_step_count(sim, tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "microrestore",
        "train",
        "care",
        "--source",
        str(sim / "noisy"),
        "--target",
        str(sim / "clean"),
        "-o",
        str(out),
        "--steps",
        "400",
        "--device",
        "cpu",
        "-q",
        *TINY,
        "--set",
        "checkpoint_every=10",
        "--set",
        "validation_every=50",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    checkpoints = out / "checkpoints"
    while not (checkpoints.is_dir() and list(checkpoints.glob("*.json"))):
        if proc.poll() is not None:
            pytest.fail(f"training ended before it could be killed: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no checkpoint within 120 s")
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "weights.safetensors").exists(), "the run finished before the kill"
    killed_at = int(_rows(out / "metrics.csv")[-1]["step"]) if (out / "metrics.csv").exists() else 0
    assert killed_at < 400
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    rows = _rows(out / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    assert steps[-1] == 400
    assert steps == sorted(set(steps)), "duplicated or out-of-order rows after resume"
    assert (out / "weights.safetensors").exists()


def test_model_records_its_training_domain(model):
    from microrestore.engine.modeldir import load_model

    domain = load_model(model).provenance["domain"]
    low, high = domain["photons"]
    # the fields were simulated at 20 photons at the brightest object pixel (plus background)
    assert 8 < low <= high < 60
    assert domain["dtypes"] == ["uint16"]


def test_denoise_warns_once_on_an_input_far_outside_the_training_domain(cli, sim, model, tmp_path):
    from microrestore.simulation import simulate

    same = cli(
        "denoise", sim / "noisy" / "field_000.tif", "-o", tmp_path / "same.tif", "--method", "care", "--model", model
    )
    assert same.exit_code == 0 and "trained on" not in same.output
    simulate("denoise", tmp_path / "bright", n=1, seed=11, photons=2000, shape=(96, 96), offset=1000)
    result = cli(
        "denoise",
        tmp_path / "bright" / "noisy" / "field_000.tif",
        "-o",
        tmp_path / "b.tif",
        "--method",
        "care",
        "--model",
        model,
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "trained on" in line]
    assert len(lines) == 1 and "field_000.tif" in lines[0] and "nl-means" in lines[0]
