"""rdl-sim plugin pieces: data layouts, aligned patches, plateau schedule with best weights, unit mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from microrestore_rdl_sim.config import RDLSIMConfig, RDLSIMPredictOptions
from microrestore_rdl_sim.data import AlignedPatches, find_triplets, split_indices
from microrestore_rdl_sim.pipeline import affine_to
from microrestore_rdl_sim.training import PlateauBest, image_nrmse

from microrestore.errors import InputError


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_registers_a_sim_method_without_importing_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, microrestore_rdl_sim as m; f = []; m.register_methods(f.append); "
        "print(f[0].task, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["sim", "False"]


def test_biosr_and_simulator_layouts_are_found(tmp_path: Path) -> None:
    cell = tmp_path / "Microtubules" / "Cell_001"
    level = _touch(cell / "RawSIMData_level_03.mrc")
    gt = _touch(cell / "RawSIMData_gt.mrc")
    sr = _touch(cell / "SIM_gt.mrc")
    found = find_triplets([level, gt, sr])  # the targets among the sources are skipped
    assert [(t.noisy, t.high, t.sr) for t in found] == [(level, gt, sr)]

    raw = _touch(tmp_path / "sim" / "raw" / "field_000.tif")
    clean = _touch(tmp_path / "sim" / "raw_clean" / "field_000.tif")
    truth = _touch(tmp_path / "sim" / "gt" / "field_000.tif")
    assert find_triplets([raw])[0] == type(found[0])(raw, clean, truth)


def test_explicit_pairs_and_missing_targets(tmp_path: Path) -> None:
    noisy = _touch(tmp_path / "a" / "s1.tif")
    high = _touch(tmp_path / "b" / "s1.tif")
    sr = _touch(tmp_path / "c" / "s1.tif")
    assert find_triplets([noisy], [high], [sr])[0].sr == sr
    with pytest.raises(InputError, match="no SR target"):
        find_triplets([noisy], [high])
    assert find_triplets([noisy], [high], need_sr=False)[0].sr is None
    with pytest.raises(InputError, match="no high-SNR"):
        find_triplets([noisy])


def test_split_keeps_one_validation_stack() -> None:
    train, val = split_indices(5, 0.1, seed=0)
    assert len(val) == 1 and sorted(train + val) == list(range(5))
    assert split_indices(1, 0.5, 0) == ([0], [])


def test_aligned_patches_crop_the_sr_grid_at_twice_the_raw_position() -> None:
    raw = np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16)
    sr = np.kron(raw[0], np.ones((2, 2), dtype=np.float32))[None]  # SR pixel (2y, 2x) = raw pixel (y, x)
    sampler = AlignedPatches([[raw, sr]], [1, 2], patch=8, augment=True)
    for seed in range(6):
        a, b = sampler.sample(np.random.default_rng(seed), 3)
        assert a.shape == (3, 2, 8, 8) and b.shape == (3, 1, 16, 16)
        assert np.array_equal(b[:, 0, ::2, ::2], a[:, 0])  # same place, same rotation/flip
    with pytest.raises(InputError, match="smaller than patch_size"):
        AlignedPatches([[raw, sr]], [1, 2], patch=32, augment=False)


def test_plateau_halves_the_rate_and_keeps_the_best_weights() -> None:
    net = torch.nn.Linear(2, 1)
    plateau = PlateauBest(net, factor=0.5, min_factor=0.2, patience=2)
    plateau.update(0.5)
    best = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.weight.add_(1.0)
    for metric in (0.6, 0.55, 0.7, 0.7, 0.7, 0.7):
        plateau.update(metric)
    assert plateau.lr_factor == pytest.approx(0.2)  # 0.5 after two, 0.25 after four, floor 0.2 after six
    assert plateau.best == 0.5
    saved = plateau.state_tensors()
    again = PlateauBest(torch.nn.Linear(2, 1), 0.5, 0.2, 2)
    again.load_state_tensors(saved)
    again.restore_best()
    assert torch.equal(again.network.weight, best["weight"]) and again.lr_factor == pytest.approx(0.2)


def test_image_nrmse_and_affine_mapping() -> None:
    t = torch.rand(2, 3, 8, 8)
    assert float(image_nrmse(3 * t + 1, t)) == pytest.approx(0, abs=1e-5)  # per-image min-max first
    assert float(image_nrmse(torch.rand(2, 3, 8, 8), t)) > 0.2
    noisy = 50 * t + 100 + torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    mapped = affine_to(t, noisy)
    assert torch.allclose(mapped, 50 * t + 100, atol=1.0)


def test_configs_validate() -> None:
    config = RDLSIMConfig(na=1.3, wavelength_nm=525)
    assert config.denoiser_groups == (2, 5, 5) and config.dfcan_channels == 64 and config.learning_rate == 1e-4
    with pytest.raises(ValueError):
        RDLSIMConfig(stage="sr")
    assert RDLSIMPredictOptions(denoised="d.tif").denoised == Path("d.tif")
