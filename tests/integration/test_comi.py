"""COMI end to end on tiny simulated defocus data: pairing modes, exact resume, CLI train and deblur, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from safetensors.torch import load_file

from microrestore import api
from microrestore.engine.modeldir import load_model
from microrestore.errors import InputError

TINY = {
    "ngf": 4,
    "ndf": 4,
    "n_blocks": 1,
    "patch_size": 48,
    "batch_size": 2,
    "checkpoint_every": 2,
    "validation_every": 2,
}


#: TINY as command-line settings, with pixel features (the fastest).
TINY_SET = [
    arg for key in ("ngf", "ndf", "n_blocks", "patch_size", "batch_size") for arg in ("--set", f"{key}={TINY[key]}")
] + ["--set", "feature_network=pixel", "--quiet"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    """Three 64 x 64 fields at +/-0.6 um, and folders pairing the +0.6 um images with the in-focus ones by name."""
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("defocus")
    simulate("defocus", root, n=3, seed=2, shape=(64, 64), defocus_um=(-0.6, 0.6))
    for sub in ("blurred", "focus"):
        (root / sub).mkdir()
    for i in range(3):
        shutil.copy(root / "defocus" / f"field_{i:03d}_dz+0.60.tif", root / "blurred" / f"field_{i:03d}.tif")
        shutil.copy(root / "infocus" / f"field_{i:03d}.tif", root / "focus" / f"field_{i:03d}.tif")
    # z-stacks (Z = -0.6, 0, +0.6 um) with the in-focus reference as slice 1
    (root / "stacks").mkdir()
    from microrestore.io import write_image

    for i in range(3):
        planes = [
            tifffile.imread(root / "defocus" / f"field_{i:03d}_dz-0.60.tif"),
            tifffile.imread(root / "infocus" / f"field_{i:03d}.tif"),
            tifffile.imread(root / "defocus" / f"field_{i:03d}_dz+0.60.tif"),
        ]
        write_image(root / "stacks" / f"stack_{i:03d}.tif", np.stack(planes), "ZYX")
    return root


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tif"))


def _train(sim: Path, out: Path, steps: int = 4, source=None, target=None, **config) -> Path:
    return api.train(
        "comi",
        _files(sim / "blurred") if source is None else source,
        out,
        target=_files(sim / "focus") if target is None else target,
        steps=steps,
        progress=False,
        config={**TINY, **config},
    )


def test_paired_training_writes_a_deblur_model(sim: Path, tmp_path: Path):
    model = _train(sim, tmp_path / "comi")
    bundle = load_model(model, expected_method="comi")
    assert set(bundle.network_specs) == {"G", "F"}
    assert bundle.network_specs["G"]["name"] == "comi_generator" and bundle.network_specs["G"]["global_skip"]
    assert bundle.normalization["kind"] == "percentile"
    assert bundle.config["paired"] and bundle.config["feature_network"] == "microscopy"
    assert bundle.config["headroom"] >= 1.05  # in-focus peaks are brighter than out-of-focus ones
    assert bundle.metrics["step"] == 4 and "val_psnr" in bundle.metrics and "val_content" in bundle.metrics
    assert len(bundle.provenance["target"]) == 3

    blurred = tifffile.imread(sim / "blurred" / "field_000.tif")
    out = api.restore(blurred, "comi", model=model, axes="YX", dtype="same")
    assert out.dtype == np.uint16 and out.shape == blurred.shape
    as_float = api.restore(blurred, "comi", model=model, axes="YX")
    assert as_float.dtype == np.float32 and not np.array_equal(as_float, blurred.astype(np.float32))
    # In the input's units: the global skip keeps an untrained-ish generator close to its input.
    assert abs(float(as_float.mean()) - float(blurred.mean())) < 0.5 * float(blurred.std()) + 5
    back = api.restore(blurred, "comi", model=model, axes="YX", direction="BtoA")
    assert back.shape == blurred.shape and not np.array_equal(back, as_float)
    # Any size: tiling handles an image that is not a multiple of the network's size.
    odd = np.pad(blurred, ((0, 13), (0, 7)), mode="reflect")
    from microrestore.plugins import PredictOptions

    tiled = api.restore(odd, "comi", model=model, axes="YX", options=PredictOptions(tile=48, overlap=8))
    assert tiled.shape == odd.shape and np.isfinite(tiled).all()


def test_resume_is_exact(sim: Path, tmp_path: Path, monkeypatch):
    whole = _train(sim, tmp_path / "whole")
    from microrestore.engine.trainer import Trainer

    fit = Trainer.fit

    def stop_at_two(self, resume=False, until=None):
        return fit(self, resume=resume, until=2)

    monkeypatch.setattr(Trainer, "fit", stop_at_two)
    _train(sim, tmp_path / "split")
    monkeypatch.setattr(Trainer, "fit", fit)
    api.train(
        "comi",
        _files(sim / "blurred"),
        tmp_path / "split",
        target=_files(sim / "focus"),
        steps=4,
        progress=False,
        config=TINY,
        resume=True,
    )
    w1 = load_file(str(whole / "weights.safetensors"))
    w2 = load_file(str(tmp_path / "split" / "weights.safetensors"))
    assert set(w1) == set(w2) and any(k.startswith("F.") for k in w1)
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key


def test_unpaired_and_fixed_scaling(sim: Path, tmp_path: Path):
    """Unpaired: A from fields 0-1, B from field 2 only (no partners); content off; fixed intensity range."""
    a, b = _files(sim / "blurred")[:2], _files(sim / "focus")[2:]
    model = _train(sim, tmp_path / "u", 2, a, b, paired=False, normalization="fixed", feature_network="pixel")
    bundle = load_model(model)
    assert not bundle.config["paired"] and bundle.config["content_target"] == "auto"
    assert bundle.normalization["kind"] == "fixed"
    low, high = bundle.config["intensity_range"]
    assert 0 < low < high < 65535
    assert "val_psnr" not in bundle.metrics and "val_cycle" in bundle.metrics
    with pytest.raises(InputError, match="no target named"):  # paired mode needs partners
        _train(sim, tmp_path / "x", 1, a, _files(sim / "infocus")[2:], feature_network="pixel")


def test_cli_focus_slice_then_deblur(cli, sim: Path, tmp_path: Path):
    model = tmp_path / "stack-model"
    stacks = ["--source", str(sim / "stacks"), "--focus-slice", "1"]
    result = cli("train", "comi", *stacks, "-o", str(model), "--steps", "2", *TINY_SET)
    assert result.exit_code == 0, result.output
    bundle = load_model(model)
    assert bundle.config["focus_slice"] == 1 and bundle.config["paired"]
    assert bundle.provenance["target"] == bundle.provenance["source"]  # the stacks are their own references
    out = tmp_path / "deblurred.tif"
    result = cli("deblur", str(sim / "blurred" / "field_001.tif"), "--method", "comi", "--model", str(model), "-o", out)
    assert result.exit_code == 0, result.output
    written = tifffile.imread(out)
    assert written.dtype == np.float32 and written.shape == (64, 64)  # --dtype auto: not rounded to counts
    # --unpaired reaches the configuration; CARE refuses the comi-only option by name.
    result = cli("train", "comi", *stacks, "--unpaired", "-o", str(tmp_path / "u"), "--steps", "1", *TINY_SET)
    assert result.exit_code == 0, result.output
    assert not load_model(tmp_path / "u").config["paired"]
    result = cli("train", "care", "--source", str(sim / "blurred"), "--target", str(sim / "focus"), "--unpaired",
                 "-o", str(tmp_path / "c"))  # fmt: skip
    assert result.exit_code == 2 and "paired" in result.output


def test_bad_inputs(cli, sim: Path, tmp_path: Path):
    def train(**kw):
        config = {**TINY, "feature_network": "pixel", **kw.pop("config", {})}
        return api.train("comi", kw.pop("source", _files(sim / "blurred")), tmp_path / "bad", steps=1,
                         progress=False, config=config, **kw)  # fmt: skip

    with pytest.raises(InputError, match="needs in-focus images"):
        train()
    with pytest.raises(InputError, match="outside the stack's 3 slices"):
        train(source=_files(sim / "stacks"), config={"focus_slice": 3})
    with pytest.raises(InputError, match="needs z-stacks"):
        train(config={"focus_slice": 0})
    with pytest.raises(InputError, match="drop --target"):
        train(source=_files(sim / "stacks"), target=_files(sim / "focus"), config={"focus_slice": 1})
    with pytest.raises(InputError, match="smaller than patch_size"):
        train(target=_files(sim / "focus"), config={"patch_size": 80})
    with pytest.raises(InputError, match="unknown feature network"):
        train(target=_files(sim / "focus"), config={"feature_network": "alexnet"})
    out = tmp_path / "o.tif"
    result = cli("deblur", str(sim / "blurred" / "field_000.tif"), "--method", "comi", "--model", "nowhere/", "-o", out)
    assert result.exit_code == 2 and "nowhere" in result.output and not out.exists()


def test_default_model_deblurs(cli, sim: Path, tmp_path: Path):
    """`microrestore deblur IN --method comi` runs the bundled comi-defocus-2d, float32 in the input's units."""
    out = tmp_path / "default.tif"
    result = cli("deblur", str(sim / "blurred" / "field_002.tif"), "--method", "comi", "-o", str(out))
    assert result.exit_code == 0, result.output
    blurred = tifffile.imread(sim / "blurred" / "field_002.tif")
    restored = tifffile.imread(out)
    assert blurred.dtype == np.uint16 and restored.dtype == np.float32 and restored.shape == blurred.shape
    assert not np.array_equal(restored, blurred)
    assert abs(float(restored.mean()) - float(blurred.mean())) < 0.2 * float(blurred.mean())  # input units


def test_prefix_pairs_keep_fields_together(sim: Path):
    """pair_by=prefix: every defocused image of a field pairs with its in-focus image; validation holds out fields."""
    from microrestore_comi.config import ComiConfig
    from microrestore_comi.data import prepare, split_fields

    config = ComiConfig(**TINY, pair_by="prefix", validation_fraction=0.34)
    data = prepare(config, _files(sim / "defocus"), _files(sim / "infocus"), None)
    assert len(data.sources) == 6 and data.fields == [0, 0, 1, 1, 2, 2]
    assert [Path(t).name for t in data.target_files] == ["field_000.tif"] * 2 + ["field_001.tif"] * 2 + [
        "field_002.tif"
    ] * 2
    train_src, _, val_src, _ = split_fields(data, config.validation_fraction, config.seed, config.patch_size)
    assert len(train_src) == 4 and len(val_src) == 2
    held = [i for i, s in enumerate(data.sources) if any(s is v for v in val_src)]
    assert len({data.fields[i] for i in held}) == 1  # both held-out images are of one field


def test_default_model_corrects_a_fresh_defocused_field(tmp_path: Path):
    """The bundled comi-defocus-2d on a field no recipe drew (seed 123) at 0.6 um: measured 21.6 -> 26.2 dB PSNR,
    PCC 0.69 -> 0.90, in the input's dtype and units, nothing saturated."""
    from microrestore import metrics
    from tests.fresh_field import restore_fresh_field

    out, before, after = restore_fresh_field(
        tmp_path,
        "defocus",
        "comi",
        "defocus/field_000_dz+0.60.tif",
        "infocus_clean/field_000.tif",
        seed=123,
        shape=(128, 128),
        defocus_um=(0.6,),
    )
    assert out.dtype == np.uint16
    assert after["psnr"] > before["psnr"] + 3.0
    assert after["pcc"] > 0.85 > 0.75 > before["pcc"]
    assert 0.9 < after["affine_scale"] < 1.1  # in the truth's units, not a rescaled image
    assert metrics.saturation_count(out, np.uint16) == 0
