"""Pattern-modulated images (rDL-SIM step c) against the simulator's noise-free raw SIM frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from microrestore.errors import InputError
from microrestore.optics import Optics
from microrestore.optics.otf import ideal_otf
from microrestore.simulation import filaments, sim_raw_frames
from microrestore.structured_illumination.patterns import (
    equalize_orientations,
    illumination_patterns,
    pattern_modulated_images,
)

OPTICS = Optics(na=1.3, wavelength_nm=525, pixel_size_nm=62.6)


@pytest.fixture(scope="module")
def scene() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    obj = filaments((96, 96), rng=rng).astype(np.float64)
    k_px = 0.9 * OPTICS.cutoff_per_um * OPTICS.pixel_size_um
    angles = 0.3 + np.arange(3) * np.pi / 3
    kv = k_px * np.column_stack([np.sin(angles), np.cos(angles)])
    phases = rng.uniform(0, 2 * np.pi, 3)[:, None] + 2 * np.pi * np.arange(3)[None, :] / 3
    frames = sim_raw_frames(obj, OPTICS, kv, phases, 0.8)
    otf = ideal_otf(replace(OPTICS, pixel_size_nm=OPTICS.pixel_size_nm / 2), obj.shape)
    return {"obj": obj / obj.max(), "kv": kv, "phases": phases, "raw": frames.density, "otf": otf}


def _modulated_part(stack: np.ndarray) -> np.ndarray:
    """Each frame minus the mean of its orientation's phases: what the pattern alone contributes."""
    grouped = stack.reshape(3, 3, *stack.shape[1:])
    return grouped - grouped.mean(axis=1, keepdims=True)


def test_generated_images_reproduce_noise_free_raw_frames(scene: dict[str, np.ndarray]) -> None:
    gen = pattern_modulated_images(scene["obj"], scene["kv"], scene["phases"], scene["otf"]).numpy()
    assert gen.shape == (9, 48, 48)
    assert gen.min() == pytest.approx(0, abs=1e-6) and gen.max() == pytest.approx(1, abs=1e-6)
    for generated, raw in zip(gen, scene["raw"]):
        assert np.corrcoef(generated.ravel(), raw.ravel())[0, 1] > 0.9
    # the pattern-modulated part itself matches: right phases and wave vectors, right pixel-centre convention
    ours, truth = _modulated_part(gen), _modulated_part(scene["raw"])
    for o in range(3):
        assert np.corrcoef(ours[o].ravel(), truth[o].ravel())[0, 1] > 0.9


def test_wrong_phases_do_not_reproduce_the_modulation(scene: dict[str, np.ndarray]) -> None:
    gen = pattern_modulated_images(scene["obj"], scene["kv"], scene["phases"] + np.pi / 2, scene["otf"]).numpy()
    ours, truth = _modulated_part(gen), _modulated_part(scene["raw"])
    for o in range(3):
        assert abs(np.corrcoef(ours[o].ravel(), truth[o].ravel())[0, 1]) < 0.2


def test_patterns_are_normalised_two_beam_interference() -> None:
    kv = np.array([[0.0, 0.25]])
    pats = illumination_patterns((8, 8), kv, np.array([0.0]))  # one phase per orientation -> 3 phases
    assert pats.shape == (3, 8, 8)
    assert float(pats.min()) >= 0 and float(pats.max()) <= 1
    # raw x = 0 is fine pixel 0.5: the pattern peaks half-way between fine pixels 0 and 1 for phase 0
    row = pats[0, 0].double()
    assert torch.allclose(row[0], row[1]) and float(row[0]) == pytest.approx(
        0.5 + 0.5 * np.cos(2 * np.pi * 0.25 * 0.25)
    )
    assert torch.allclose(pats.sum(0), torch.full((8, 8), 1.5), atol=1e-6)  # 3 equally spaced phases


def test_bad_inputs_are_refused(scene: dict[str, np.ndarray]) -> None:
    with pytest.raises(InputError, match="even sides"):
        pattern_modulated_images(np.ones((9, 8)), scene["kv"], scene["phases"], np.ones((9, 8)))
    with pytest.raises(InputError, match="OTF"):
        pattern_modulated_images(np.ones((8, 8)), scene["kv"], scene["phases"], np.ones((16, 16)))
    with pytest.raises(InputError, match="phases"):
        illumination_patterns((8, 8), scene["kv"], np.zeros((2, 3)))
    with pytest.raises(InputError, match="NaN"):
        illumination_patterns((8, 8), scene["kv"] * np.nan, scene["phases"])


def test_equalize_orientations_matches_means_to_orientation_zero() -> None:
    frames = np.concatenate([np.full((3, 4, 4), 2.0), np.full((3, 4, 4), 4.0), np.full((3, 4, 4), 1.0)])
    out = equalize_orientations(frames)
    assert np.allclose(out, 2.0)
    assert torch.allclose(
        equalize_orientations(torch.from_numpy(frames)), torch.full((9, 4, 4), 2.0, dtype=torch.float64)
    )
    with pytest.raises(InputError, match="whole number"):
        equalize_orientations(frames[:8])
