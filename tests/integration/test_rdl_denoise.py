"""rdl-denoise and n2v end to end: 2D and 3D training with exact resume, one-shot self-supervised use, offsets,
bad inputs, FNSM on CARE."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml
from safetensors.torch import load_file

from microrestore import api
from microrestore.engine import trainer as trainer_module
from microrestore.io import ImageData, read_image, write_image

TINY = {
    "channels": 4,
    "n_groups": 1,
    "n_rcab": 1,
    "tail_channels": 4,
    "reduction": 2,
    "patch_size": 16,
    "patch_depth": 4,
    "batch_size": 2,
    "validation_every": 3,
    "checkpoint_every": 3,
}
TINY_SET = [
    item
    for key in ("channels", "n_groups", "n_rcab", "tail_channels", "patch_size")
    for item in ("--set", f"{key}={TINY[key]}")
]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    """A tiny noisy time-lapse (uint16, offset 100) with its clean truth beside it."""
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("rdl")
    simulate("timelapse", root, n=1, seed=2, shape=(8, 32, 32), photons=20)
    return root / "noisy" / "movie_000.tif"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Path:
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("rdl-z")
    simulate("zstack", root, n=1, seed=2, shape=(16, 32, 32), photons=20)
    return root / "noisy" / "stack_000.tif"


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "weights.safetensors"))


def _train_interrupted(monkeypatch, method, source, output, config, steps, stop_at):
    """Train to ``stop_at`` steps (as if killed after that checkpoint), then resume to ``steps``."""
    fit = trainer_module.Trainer.fit
    calls = []

    def first_call_stops_early(self, resume=False, until=None):
        calls.append(resume)
        return fit(self, resume=resume, until=stop_at if len(calls) == 1 else until)

    monkeypatch.setattr(trainer_module.Trainer, "fit", first_call_stops_early)
    api.train(method, [source], output, steps=steps, progress=False, device="cpu", config=config)
    api.train(method, [source], output, steps=steps, progress=False, device="cpu", config=config, resume=True)
    monkeypatch.setattr(trainer_module.Trainer, "fit", fit)
    assert calls == [False, True]


@pytest.mark.parametrize(
    ("mode", "extra"),
    [("tis", {"ndim": 2, "fnsm": True, "na": 1.3, "wavelength_nm": 520}), ("sis", {"ndim": 3, "loss": "l1l2"})],
)
def test_training_resumes_exactly(monkeypatch, movie, stack, tmp_path, mode, extra):
    source = movie if mode == "tis" else stack
    config = {**TINY, "mode": mode, **extra}
    whole = api.train("rdl-denoise", [source], tmp_path / "whole", steps=6, progress=False, device="cpu", config=config)
    _train_interrupted(monkeypatch, "rdl-denoise", source, tmp_path / "parts", config, steps=6, stop_at=3)
    a, b = _weights(whole), _weights(tmp_path / "parts")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    saved = yaml.safe_load((whole / "config.yaml").read_text())
    assert saved["config"]["ndim"] == extra["ndim"] and saved["config"]["amending"] is (mode == "sis")
    assert saved["axes"] == ("ZYX" if extra["ndim"] == 3 else "YX")
    if mode == "sis":
        assert "loss_amend" in saved["metrics"] and saved["config"]["patch_shape"] == [4, 16, 16]
    else:
        # The FNSM's learned cutoff is reported (1/um, started at 2 NA / lambda).
        assert saved["metrics"]["fnsm_unit"] == "1/um"
        assert abs(saved["metrics"]["fnsm_cutoff"] - 2 * 1.3 / 0.52) < 0.5
    restored = api.restore(read_image(source), "rdl-denoise", model=whole)
    assert restored.shape == read_image(source).data.shape and np.isfinite(restored).all()


def test_one_shot_cli_writes_a_denoised_stack_in_the_inputs_units(cli, movie, tmp_path):
    out = tmp_path / "denoised.tif"
    saved = tmp_path / "models"
    result = cli(
        "denoise",
        movie,
        "-o",
        out,
        "--method",
        "rdl-denoise",
        "--self-supervised",
        "--train-steps",
        "4",
        "--save-model",
        saved,
        *TINY_SET,
        "--device",
        "cpu",
    )
    assert result.exit_code == 0, result.output
    assert "training rdl-denoise on movie_000.tif" in result.output and "training step" in result.output
    assert "4 steps" in result.output and "then inference" in result.output  # --train-steps: no default time limit
    # Not a terminal: inference progress comes as plain lines, ending with the last tile.
    tiles = [line for line in result.output.splitlines() if "inference tiles" in line]
    assert tiles and "(100 %)" in tiles[-1] and "ETA" in tiles[0]
    noisy = read_image(movie).data
    denoised = tifffile.imread(out)
    assert noisy.dtype == np.uint16 and denoised.dtype == np.float32 and denoised.shape == noisy.shape
    # Offsets are added back: the result sits at the input's level, not at 0.
    assert abs(float(denoised.mean()) - float(noisy.mean())) < 0.2 * float(noisy.mean())
    config = yaml.safe_load((saved / "movie_000" / "config.yaml").read_text())
    assert config["provenance"]["steps_run"] == 4 and config["config"]["mode"] == "tis"


def test_one_shot_api_on_an_array_with_a_given_offset(movie):
    noisy = read_image(movie)
    plan = api.SelfSupervised(config={**TINY, "offset": 100.0}, steps=2, progress=False)
    out = api.restore(noisy, "rdl-denoise", self_supervised=plan, options=api.PredictOptions(device="cpu"))
    assert out.dtype == np.float32 and out.shape == noisy.data.shape
    assert float(out.mean()) > 90  # in counts, offset 100 added back


def test_one_shot_budget_stops_training_and_warns_with_the_steps_run(movie, tmp_path):
    # A budget far too small for the configured steps: training stops after its first step, the image is still
    # restored, and a warning names the steps run and what to do.
    noisy = read_image(movie)
    plan = api.SelfSupervised(
        config={**TINY, "steps": 1000, "validation_fraction": 0}, max_seconds=1e-6, progress=False,
        save_models=tmp_path / "models",
    )  # fmt: skip
    with pytest.warns(UserWarning, match=r"trained only 1 of 1000 steps in its 1e-06 s budget.*--train-seconds"):
        out = api.restore(noisy, "rdl-denoise", self_supervised=plan, options=api.PredictOptions(device="cpu"))
    assert out.shape == noisy.data.shape and np.isfinite(out).all()
    saved = yaml.safe_load((tmp_path / "models" / "input" / "config.yaml").read_text())
    assert saved["provenance"]["steps_run"] == 1
    # The one-shot network is the method's CPU-sized one under the given keys (here the tiny test network's).
    assert saved["config"]["ndim"] == 2 and saved["config"]["reduction"] == TINY["reduction"]


def test_n2v_one_shot_on_a_single_image(cli, tmp_path):
    rng = np.random.default_rng(0)
    image = (rng.poisson(20, (40, 40)) + 100).astype(np.uint16)
    write_image(tmp_path / "one.tif", image, "YX")
    result = cli(
        "denoise",
        tmp_path / "one.tif",
        "-o",
        tmp_path / "out.tif",
        "--method",
        "n2v",
        "--self-supervised",
        "--train-steps",
        "3",
        "--set",
        "base_filters=4",
        "--set",
        "patch_size=16",
        "--set",
        "batch_size=2",
        "--device",
        "cpu",
        "-q",
    )
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "out.tif").shape == (40, 40)


def test_n2v_training_resumes_exactly(monkeypatch, movie, tmp_path):
    config = {"base_filters": 4, "patch_size": 16, "batch_size": 2, "checkpoint_every": 2, "validation_every": 2}
    whole = api.train("n2v", [movie], tmp_path / "whole", steps=4, progress=False, device="cpu", config=config)
    _train_interrupted(monkeypatch, "n2v", movie, tmp_path / "parts", config, steps=4, stop_at=2)
    a, b = _weights(whole), _weights(tmp_path / "parts")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("data", "axes", "args", "message"),
    [
        (np.zeros((1, 32, 32), np.uint16), "TYX", [], "has 1 along T"),
        (np.zeros((32, 32), np.uint16), "YX", [], "needs a time-lapse"),
        (np.full((4, 32, 32), np.nan, np.float32), "TYX", [], "NaN"),
        (np.zeros((4, 32, 32), np.uint16), "TYX", ["--model", "x"], "do not give --model"),
        (np.zeros((4, 32, 32), np.uint16), "TYX", ["--set", "mdoe=tis"], "mdoe"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, tmp_path, data, axes, args, message):
    write_image(tmp_path / "in.tif", data, axes)
    result = cli(
        "denoise",
        tmp_path / "in.tif",
        "-o",
        tmp_path / "o.tif",
        "--method",
        "rdl-denoise",
        "--self-supervised",
        "--train-steps",
        "1",
        *args,
    )
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "o.tif").exists()


def test_self_supervised_needs_a_self_supervised_method(cli, movie, tmp_path):
    result = cli("denoise", movie, "-o", tmp_path / "o.tif", "--method", "care", "--self-supervised")
    assert result.exit_code == 2 and "rdl-denoise" in result.stderr and "n2v" in result.stderr
    result = cli("denoise", movie, "-o", tmp_path / "o.tif", "--method", "care", "--train-steps", "3")
    assert result.exit_code == 2 and "--train-steps goes with --self-supervised" in result.stderr


def test_train_takes_method_options_as_flags(cli, movie, tmp_path):
    result = cli(
        "train",
        "rdl-denoise",
        "--mode",
        "tis",
        "--source",
        movie,
        "-o",
        tmp_path / "m",
        "--steps",
        "2",
        "--channels",
        "4",
        "--n-groups",
        "1",
        "--n-rcab",
        "1",
        "--tail-channels",
        "4",
        "--patch-size",
        "16",
        "--max-seconds",
        "600",
        "-q",
    )
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "m" / "config.yaml").read_text())
    assert saved["config"]["channels"] == 4 and saved["provenance"]["steps_run"] == 2


def test_time_as_depth_model_denoises_a_2d_time_lapse(movie, tmp_path):
    model = api.train(
        "rdl-denoise", [movie], tmp_path / "m", steps=2, progress=False, device="cpu", config={**TINY, "ndim": 3}
    )
    saved = yaml.safe_load((model / "config.yaml").read_text())
    assert saved["config"]["depth_axis"] == "T"
    noisy = read_image(movie)
    out = api.restore(ImageData(noisy.data, "TYX"), "rdl-denoise", model=model)
    assert out.shape == noisy.data.shape


def test_care_with_fnsm_trains_and_reports_its_cutoff(tmp_path):
    from microrestore.simulation import simulate

    simulate("denoise", tmp_path / "d", n=2, seed=1, shape=(32, 32))
    model = api.train(
        "care",
        [tmp_path / "d" / "noisy"],
        tmp_path / "m",
        target=[tmp_path / "d" / "clean"],
        steps=3,
        progress=False,
        device="cpu",
        config={
            "base_filters": 4,
            "patch_size": 16,
            "batch_size": 2,
            "fnsm": True,
            "na": 1.3,
            "wavelength_nm": 520,
            "fnsm_slope": 5.0,
            "learning_rate": 0.05,
            "validation_fraction": 0,
        },
    )
    saved = yaml.safe_load((model / "config.yaml").read_text())
    start = 2 * 1.3 / 0.52
    assert saved["networks"]["net"]["fnsm"]["pixel_size_um"] == pytest.approx(0.065)  # from the files' metadata
    assert saved["metrics"]["fnsm_cutoff"] != pytest.approx(start, abs=1e-6)  # it trained
    assert saved["metrics"]["fnsm_unit"] == "1/um"
