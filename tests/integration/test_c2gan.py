"""c²GAN end to end: unpaired training on simulated data, exact resume with image pools, restoration in units."""

from __future__ import annotations

from pathlib import Path

import microrestore_c2gan
import numpy as np
import pytest
import tifffile
import torch
from safetensors.torch import load_file

from microrestore import api
from microrestore.errors import InputError
from microrestore.plugins import get_host

TINY = {
    "ngf": 8,
    "ndf": 8,
    "n_blocks": 2,
    "patch_size": 32,
    "pool_size": 2,  # full after two steps, so the resumed half draws from a saved pool
    "checkpoint_every": 3,
    "validation_every": 3,
}


@pytest.fixture(autouse=True)
def _c2gan_registered():
    """Register the plugin (until its entry point is in pyproject.toml) and train on one thread."""
    host = get_host()
    if "c2gan" not in host.registry.methods:
        host.add_plugin(microrestore_c2gan, "c2gan")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("sim")
    simulate("denoise", root, n=5, seed=3, photons=20, shape=(64, 64))
    return root


def _split(sim: Path) -> tuple[list[Path], list[Path], Path, Path]:
    """The authors' unpaired split: field 0 held out as a pair, A from fields 1-2, B from OTHER fields 3-4."""
    a = [sim / "noisy" / f"field_{i:03d}.tif" for i in (1, 2)]
    b = [sim / "clean" / f"field_{i:03d}.tif" for i in (3, 4)]
    return a, b, sim / "noisy" / "field_000.tif", sim / "clean" / "field_000.tif"


def _train(sim: Path, out: Path, steps: int = 6, **config) -> Path:
    a, b, _, _ = _split(sim)
    return api.train("c2gan", a, out, target=b, steps=steps, progress=False, config={**TINY, **config})


@pytest.fixture(scope="module")
def model(sim, tmp_path_factory) -> Path:
    host = get_host()
    if "c2gan" not in host.registry.methods:
        host.add_plugin(microrestore_c2gan, "c2gan")
    return _train(sim, tmp_path_factory.mktemp("models") / "c2gan")


def test_train_writes_a_model_folder(model):
    assert {p.name for p in model.iterdir()} >= {"config.yaml", "weights.safetensors", "metrics.csv", "checkpoints"}
    from microrestore.engine.modeldir import load_model

    bundle = load_model(model, expected_method="c2gan")
    assert set(bundle.network_specs) == {"G", "F"}
    assert bundle.normalization["kind"] == "fixed"
    assert 0 <= bundle.config["threshold_a"] <= 255 and 0 <= bundle.config["threshold_b"] <= 255
    assert bundle.config["intensity_range"] == [0.0, 65535.0]
    assert bundle.metrics["step"] == 6 and "val_cycle" in bundle.metrics and bundle.metrics["rho"] > 0


def test_restore_keeps_uint16_in_range_and_shape(model, sim):
    noisy = tifffile.imread(sim / "noisy" / "field_000.tif")
    assert noisy.dtype == np.uint16
    out = api.restore(noisy, "c2gan", model=model, axes="YX", dtype="same")
    assert out.dtype == np.uint16 and out.shape == noisy.shape
    as_float = api.restore(noisy, "c2gan", model=model, axes="YX")
    assert as_float.dtype == np.float32 and 0 <= as_float.min() and as_float.max() <= 65535
    back = api.restore(noisy, "c2gan", model=model, axes="YX", direction="BtoA")
    assert back.shape == noisy.shape and not np.array_equal(back, as_float)
    with pytest.raises(InputError):
        api.restore(noisy, "c2gan", model=model, axes="YX", direction="sideways")


def test_resume_is_exact_with_pools(sim, tmp_path, monkeypatch):
    whole = _train(sim, tmp_path / "whole")

    from microrestore_c2gan import training

    fit = training.Trainer.fit

    def stop_at_three(self, resume=False, until=None):
        return fit(self, resume=resume, until=3)

    monkeypatch.setattr(training.Trainer, "fit", stop_at_three)
    _train(sim, tmp_path / "split")
    monkeypatch.setattr(training.Trainer, "fit", fit)
    a, b, _, _ = _split(sim)
    api.train("c2gan", a, tmp_path / "split", target=b, steps=6, progress=False, config=TINY, resume=True)

    w1 = load_file(str(whole / "weights.safetensors"))
    w2 = load_file(str(tmp_path / "split" / "weights.safetensors"))
    assert set(w1) == set(w2) and any(k.startswith("G.") for k in w1)
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key


def test_plain_cyclegan_and_paired_validation(sim, tmp_path):
    _, _, val_a, val_b = _split(sim)
    out = _train(
        sim,
        tmp_path / "plain",
        steps=3,
        saliency_weight=0,
        validation_source=[str(val_a)],
        validation_target=[str(val_b)],
        intensity_range="auto",
    )
    from microrestore.engine.modeldir import load_model

    bundle = load_model(out)
    assert bundle.metrics["rho"] == 0 and "val_psnr" in bundle.metrics
    assert bundle.config["intensity_range"] == [0.0, 65535.0]  # uint16 noisy images
    assert bundle.config["intensity_range_b"][0] == 0.0  # float32 clean images: 0 to their maximum
    assert bundle.config["intensity_range_b"][1] < 65535.0


def test_target_is_required(sim, tmp_path):
    a, _, _, _ = _split(sim)
    with pytest.raises(InputError, match="unpaired"):
        api.train("c2gan", a, tmp_path / "m", steps=1, progress=False, config=TINY)
