"""Fourier ring correlation and decorrelation analysis."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from microrestore.errors import InputError
from microrestore.metrics import decorrelation_resolution, frc, frc_resolution


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros((128, 128))
    image[tuple(rng.integers(0, 128, size=(2, 300)))] = 1.0
    return ndimage.gaussian_filter(image, 1.0)


def test_frc_of_identical_images_is_one() -> None:
    a = _scene()
    freq, curve = frc(a, a)
    assert freq[0] == 0 and freq[-1] == pytest.approx(0.5)
    assert np.allclose(curve[1:], 1.0)
    assert frc_resolution(a, a, pixel_size=50.0) == pytest.approx(100.0)  # never below: the Nyquist period


def test_frc_resolution_follows_the_blur() -> None:
    truth = _scene()
    sharp = ndimage.gaussian_filter(truth, 1.0)
    blurred = ndimage.gaussian_filter(truth, 3.0)
    assert frc_resolution(sharp, truth, 0.5) < 0.6 * frc_resolution(blurred, truth, 0.5)


def test_frc_of_independent_noise_is_low() -> None:
    rng = np.random.default_rng(1)
    _, curve = frc(rng.normal(size=(96, 96)), rng.normal(size=(96, 96)))
    assert np.abs(curve[5:]).mean() < 0.1


def test_decorrelation_resolution() -> None:
    truth = _scene()
    rng = np.random.default_rng(2)
    sharp = truth + 0.002 * rng.normal(size=truth.shape)
    blurred = ndimage.gaussian_filter(truth, 3.0) + 0.002 * rng.normal(size=truth.shape)
    r_sharp = decorrelation_resolution(sharp, pixel_size=50.0)
    r_blur = decorrelation_resolution(blurred, pixel_size=50.0)
    assert np.isfinite(r_sharp.resolution) and r_sharp.resolution < 0.6 * r_blur.resolution
    assert 0 < r_sharp.kc <= 1 and r_sharp.amplitude > 0.05
    assert decorrelation_resolution(rng.normal(size=(96, 96))).resolution == np.inf


def test_resolution_input_checks() -> None:
    with pytest.raises(InputError, match="same shape"):
        frc(np.zeros((32, 32)), np.zeros((32, 40)))
    with pytest.raises(InputError, match="2D image"):
        decorrelation_resolution(np.zeros((4, 4)))
    with pytest.raises(InputError, match="NaN"):
        frc(np.full((32, 32), np.nan), np.zeros((32, 32)))
