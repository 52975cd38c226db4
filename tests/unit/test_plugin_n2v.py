"""Noise2Void's blind-spot masking and masked loss."""

from __future__ import annotations

import microrestore_n2v
import numpy as np
import pytest
import torch
from microrestore_n2v.masking import blind_spot_batch, neighbour_coordinates, stratified_coordinates
from microrestore_n2v.training import masked_loss


def test_registers_a_self_supervised_method_with_its_bundled_default_model():
    found = []
    microrestore_n2v.register_methods(found.append)
    assert found[0].name == "n2v" and found[0].self_supervised and found[0].default_model == "n2v-generalist-2d"


@pytest.mark.parametrize("spatial", [(64, 64), (8, 32, 32)])
def test_masks_are_stratified_and_never_see_their_own_value(spatial):
    rng = np.random.default_rng(0)
    patches = rng.random((4, 1, *spatial)).astype(np.float32)
    masked, target, mask = blind_spot_batch(patches, rng, percent=1.0, radius=2)
    per_patch = mask.reshape(4, -1).sum(axis=1)
    expected = np.prod(spatial) / 100.0
    assert np.all(per_patch >= 0.5 * expected) and np.all(per_patch <= 2.0 * expected)
    assert target is patches
    unmasked = mask[:, :1].repeat(1, axis=1) == 0
    np.testing.assert_array_equal(masked[unmasked], patches[unmasked])
    # Every masked pixel took another pixel's (distinct, random) value.
    assert np.all(masked[mask == 1] != patches[mask == 1])
    np.testing.assert_array_equal(  # a pure function of the generator's state
        blind_spot_batch(patches, np.random.default_rng(5), 1.0, 2)[0],
        blind_spot_batch(patches, np.random.default_rng(5), 1.0, 2)[0],
    )


def test_neighbours_stay_inside_and_are_never_the_pixel_itself():
    rng = np.random.default_rng(1)
    spatial = (5, 7)
    coords = np.array([[0, 0], [4, 6], [2, 3], [0, 6]] * 200)
    source = neighbour_coordinates(coords, spatial, 3, rng)
    assert np.all(source >= 0) and np.all(source < np.array(spatial))
    assert np.all(np.any(source != coords, axis=1))
    assert np.all(np.abs(source - coords) <= 3)
    points = stratified_coordinates((64, 64), 0.198, rng, 3)
    assert all(len(p) >= 1 and np.all(p < 64) for p in points)


def test_masked_loss_ignores_unmasked_pixels():
    pred = torch.tensor([[1.0, 5.0, 3.0]])
    target = torch.tensor([[2.0, 0.0, 3.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    assert float(masked_loss(pred, target, mask)) == pytest.approx(0.5)
    assert float(masked_loss(pred, target, mask, "mae")) == pytest.approx(0.5)


def test_default_model_denoises_the_demo_sample():
    """`denoise --method n2v` without --model runs the bundled n2v-generalist-2d."""
    from pathlib import Path

    import microrestore
    from microrestore import api
    from microrestore.io import read_image
    from microrestore.metrics import evaluate

    demo = Path(microrestore.__file__).parent / "data" / "demo"
    noisy, clean = read_image(demo / "noisy.tif"), read_image(demo / "clean.tif").data
    restored = api.restore(noisy, "n2v", dtype="same")
    assert restored.dtype == noisy.data.dtype and restored.shape == noisy.data.shape
    assert evaluate(restored, clean)["psnr"] > evaluate(noisy.data, clean)["psnr"] + 8.0
