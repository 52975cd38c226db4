"""Optics: parameters, pupil-function PSFs against diffraction theory, OTFs, PSF files."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore.errors import InputError
from microrestore.optics import (
    Optics,
    frequency_radius,
    gaussian_psf,
    ideal_otf,
    otf_from_psf,
    psf_3d,
    pupil_psf,
    radial_otf_to_2d,
    read_psf,
)

OPTICS = Optics(na=1.3, wavelength_nm=520.0, pixel_size_nm=65.0)


def fwhm_px(profile: np.ndarray) -> float:
    """Full width at half maximum of a single-peaked 1D profile, linear interpolation at the crossings."""
    i = int(np.argmax(profile))
    half = profile[i] / 2.0
    left = i
    while profile[left] > half:
        left -= 1
    right = i
    while profile[right] > half:
        right += 1
    x_left = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    x_right = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return x_right - x_left


def encircled_radius(psf: np.ndarray, fraction: float) -> float:
    """Radius (pixels) of the disc around the centre that holds ``fraction`` of the energy."""
    cy, cx = (s // 2 for s in psf.shape)
    yy, xx = np.indices(psf.shape)
    r = np.hypot(yy - cy, xx - cx).ravel()
    order = np.argsort(r)
    cum = np.cumsum(psf.ravel()[order]) / psf.sum()
    return float(r[order][np.searchsorted(cum, fraction)])


# ----------------------------------------------------------------------------------------------------------
# Optics
# ----------------------------------------------------------------------------------------------------------


def test_optics_properties() -> None:
    assert OPTICS.cutoff_per_um == pytest.approx(2 * 1.3 / 0.52)
    assert OPTICS.nyquist_pixel_nm == pytest.approx(100.0)
    assert OPTICS.nyquist_ok
    assert not dataclasses.replace(OPTICS, pixel_size_nm=160.0).nyquist_ok
    axial = (1.518 - math.sqrt(1.518**2 - 1.3**2)) / 0.52
    assert OPTICS.axial_cutoff_per_um == pytest.approx(axial)
    assert dataclasses.replace(OPTICS, z_step_nm=200.0).nyquist_ok
    assert not dataclasses.replace(OPTICS, z_step_nm=500.0).nyquist_ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        OPTICS.na = 1.4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"na": 1.6}, "immersion index"),
        ({"na": 1.518}, "immersion index"),
        ({"na": 0.0}, "na must be a positive"),
        ({"wavelength_nm": -500.0}, "wavelength_nm"),
        ({"pixel_size_nm": 0}, "pixel_size_nm"),
        ({"pixel_size_nm": math.nan}, "pixel_size_nm"),
        ({"z_step_nm": -1.0}, "z_step_nm"),
        ({"immersion_index": True}, "immersion_index"),
    ],
)
def test_optics_validation(kwargs: dict[str, object], message: str) -> None:
    params: dict[str, object] = {"na": 1.3, "wavelength_nm": 520.0, "pixel_size_nm": 65.0, **kwargs}
    with pytest.raises(InputError, match=message):
        Optics(**params)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# PSFs
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(65, 65), (64, 64), (48, 80)])
def test_pupil_psf_is_normalised_centred_and_symmetric(shape: tuple[int, int]) -> None:
    psf = pupil_psf(OPTICS, shape)
    assert psf.shape == shape
    assert psf.sum() == pytest.approx(1.0)
    assert psf.min() >= 0
    cy, cx = shape[0] // 2, shape[1] // 2
    assert np.unravel_index(np.argmax(psf), shape) == (cy, cx)
    # point symmetric about the centre pixel
    h = min(cy, shape[0] - 1 - cy)
    w = min(cx, shape[1] - 1 - cx)
    core = psf[cy - h : cy + h + 1, cx - w : cx + w + 1]
    np.testing.assert_allclose(core, core[::-1, ::-1], atol=1e-12)
    np.testing.assert_allclose(core, core[:, ::-1], atol=1e-12)


@pytest.mark.parametrize(
    "optics",
    [OPTICS, Optics(na=0.8, wavelength_nm=600.0, pixel_size_nm=90.0, immersion_index=1.0), Optics(1.4, 680, 40)],
)
def test_fwhm_matches_diffraction_theory(optics: Optics) -> None:
    psf = pupil_psf(optics, (81, 81))
    theory_nm = 0.51 * optics.wavelength_nm / optics.na
    for profile in (psf[40], psf[:, 40]):
        assert fwhm_px(profile) * optics.pixel_size_nm == pytest.approx(theory_nm, rel=0.10)


def test_defocus_broadens_the_psf_monotonically() -> None:
    zs = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
    psfs = [pupil_psf(OPTICS, (129, 129), z) for z in zs]
    for frac in (0.5, 0.8):
        radii = [encircled_radius(p, frac) for p in psfs]
        assert all(b > a for a, b in itertools.pairwise(radii)), (frac, radii)
    peaks = [p.max() for p in psfs[:4]]
    assert all(b < a for a, b in itertools.pairwise(peaks))
    assert all(p.sum() == pytest.approx(1.0) for p in psfs)


def test_defocus_sign_matters_only_with_aberration() -> None:
    up, down = pupil_psf(OPTICS, (65, 65), 0.5), pupil_psf(OPTICS, (65, 65), -0.5)
    np.testing.assert_allclose(up, down, atol=1e-12)
    up = pupil_psf(OPTICS, (65, 65), 0.5, spherical_waves=0.2)
    down = pupil_psf(OPTICS, (65, 65), -0.5, spherical_waves=0.2)
    assert np.abs(up - down).max() > 0.05 * up.max()


def test_oversampling_converges() -> None:
    a = pupil_psf(OPTICS, (33, 33), oversample=3)
    b = pupil_psf(OPTICS, (33, 33), oversample=5)
    assert np.abs(a - b).max() < 0.01 * a.max()
    for bad in (0, -2, 1.5, True):
        with pytest.raises(InputError, match="oversample"):
            pupil_psf(OPTICS, (33, 33), oversample=bad)  # type: ignore[arg-type]
    # coarse camera pixels (undersampled): still normalised, and wider than the point-sampled PSF
    coarse = dataclasses.replace(OPTICS, pixel_size_nm=160.0)
    integrated, point = pupil_psf(coarse, (15, 15)), pupil_psf(coarse, (15, 15), oversample=1)
    assert integrated.sum() == pytest.approx(1.0)
    assert integrated.max() < point.max()
    with pytest.raises(InputError, match="shape_yx"):
        pupil_psf(OPTICS, (33,))


def test_psf_3d() -> None:
    optics = dataclasses.replace(OPTICS, z_step_nm=200.0)
    psf = psf_3d(optics, (9, 49, 49))
    assert psf.shape == (9, 49, 49)
    assert psf.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (4, 24, 24)
    np.testing.assert_allclose(psf, psf[::-1], atol=1e-12)  # symmetric in z without aberrations
    centre = pupil_psf(OPTICS, (49, 49))
    # the same plane from a differently sized transform: equal to 0.2% of the peak
    np.testing.assert_allclose(psf[4] / psf[4].sum(), centre, atol=2e-3 * centre.max())
    plane_sums = psf.sum(axis=(1, 2))
    assert plane_sums.max() / plane_sums.min() < 1.1  # each plane carries about the same light
    np.testing.assert_allclose(psf_3d(OPTICS, (9, 49, 49), z_step_nm=200.0), psf)
    with pytest.raises(InputError, match="z_step_nm"):
        psf_3d(OPTICS, (9, 49, 49))


def test_gaussian_psf_is_close_to_the_pupil_psf() -> None:
    g = gaussian_psf(OPTICS, (41, 41))
    assert g.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(g), g.shape) == (20, 20)
    p = pupil_psf(OPTICS, (41, 41))
    assert fwhm_px(g[20]) == pytest.approx(fwhm_px(p[20]), rel=0.1)
    wide = gaussian_psf(OPTICS, (41, 41), sigma_nm=300.0)
    assert fwhm_px(wide[20]) * 65.0 == pytest.approx(2.3548 * 300.0, rel=0.03)


# ----------------------------------------------------------------------------------------------------------
# OTFs
# ----------------------------------------------------------------------------------------------------------


def test_otf_support_ends_at_the_cutoff() -> None:
    shape = (128, 128)
    otf = np.abs(otf_from_psf(pupil_psf(OPTICS, shape)))
    k = frequency_radius(shape, OPTICS.pixel_size_nm)
    assert otf[0, 0] == pytest.approx(1.0)
    assert otf[k > OPTICS.cutoff_per_um].max() < 0.02
    assert otf[k > 1.05 * OPTICS.cutoff_per_um].max() < 0.002
    assert otf[(k > 0.3 * OPTICS.cutoff_per_um) & (k < 0.5 * OPTICS.cutoff_per_um)].min() > 0.2


def test_ideal_otf_agrees_with_the_pupil_psf() -> None:
    shape = (128, 128)
    ideal = ideal_otf(OPTICS, shape)
    assert ideal[0, 0] == 1.0
    k = frequency_radius(shape, OPTICS.pixel_size_nm)
    assert np.all(ideal[k >= OPTICS.cutoff_per_um] == 0)
    for oversample in (None, 1):
        otf = np.abs(otf_from_psf(pupil_psf(OPTICS, shape, oversample=oversample)))
        assert np.corrcoef(otf.ravel(), ideal.ravel())[0, 1] > 0.98
    # point sampling (oversample 1) reproduces the analytic OTF closely
    assert np.abs(np.abs(otf_from_psf(pupil_psf(OPTICS, shape, oversample=1))) - ideal).max() < 0.02


def test_ideal_otf_attenuation_and_analytic_values() -> None:
    shape = (64, 64)
    ideal = ideal_otf(OPTICS, shape)
    att = ideal_otf(OPTICS, shape, attenuation=2.0)
    np.testing.assert_allclose(att, ideal**2)
    k = frequency_radius(shape, OPTICS.pixel_size_nm)
    rho = k / OPTICS.cutoff_per_um
    inside = rho < 1
    expected = 2 / np.pi * (np.arccos(rho[inside]) - rho[inside] * np.sqrt(1 - rho[inside] ** 2))
    np.testing.assert_allclose(ideal[inside], expected)
    with pytest.raises(InputError, match="attenuation"):
        ideal_otf(OPTICS, shape, attenuation=0.0)


def test_otf_from_psf_in_3d_and_errors() -> None:
    psf = psf_3d(OPTICS, (8, 32, 32), z_step_nm=150.0)
    otf = otf_from_psf(psf)
    assert otf.shape == psf.shape
    assert otf[0, 0, 0] == pytest.approx(1.0)
    assert np.abs(otf).max() == pytest.approx(1.0)
    with pytest.raises(InputError, match="NaN"):
        otf_from_psf(np.full((4, 4), np.nan))
    with pytest.raises(InputError, match="positive sum"):
        otf_from_psf(np.zeros((4, 4)))


def test_radial_otf_to_2d_reproduces_a_radial_profile() -> None:
    dk = 0.0312
    k1 = np.arange(257) * dk
    rho = np.minimum(k1 / OPTICS.cutoff_per_um, 1.0)
    profile = 2 / np.pi * (np.arccos(rho) - rho * np.sqrt(1 - rho**2))
    shape = (96, 128)
    otf2d = radial_otf_to_2d(profile.astype(np.complex64) * np.exp(0.3j), dk, shape, OPTICS.pixel_size_nm)
    assert otf2d.shape == shape
    assert otf2d[0, 0] == pytest.approx(1.0)
    np.testing.assert_allclose(otf2d, ideal_otf(OPTICS, shape), atol=2e-3)
    # frequencies past the last sample (8 per um) are zero
    fine = radial_otf_to_2d(np.ones(11), 0.5, (64, 64), 30.0)  # samples up to 5 per um, grid to 16.7
    k = frequency_radius((64, 64), 30.0)
    assert np.all(fine[k > 5.0] == 0) and np.all(fine[k <= 5.0] == 1)


@pytest.mark.parametrize(
    ("profile", "dk", "message"),
    [
        (np.ones((3, 3)), 0.1, "1D"),
        (np.array([1.0, np.nan]), 0.1, "NaN"),
        (np.array([0.0, 1.0]), 0.1, "zero frequency"),
        (np.ones(5), 0.0, "dk_per_um"),
    ],
)
def test_radial_otf_errors(profile: np.ndarray, dk: float, message: str) -> None:
    with pytest.raises(InputError, match=message):
        radial_otf_to_2d(profile, dk, (16, 16), 65.0)


@pytest.mark.shared_data
def test_radial_otf_from_the_rdl_sim_mrc(shared_data: Path) -> None:
    from microrestore.io import read_image

    path = shared_data / "sim" / "rdlsim_microtubules" / "TIRF488_cam1_0_z30_OTF2d.mrc"
    if not path.is_file():
        pytest.skip("rDL-SIM OTF file not present")
    profile = np.asarray(read_image(path).data)
    assert profile.size == 257
    optics = Optics(na=1.3, wavelength_nm=525.0, pixel_size_nm=62.6)
    otf = radial_otf_to_2d(profile, 0.0312, (256, 256), optics.pixel_size_nm)
    k = frequency_radius((256, 256), optics.pixel_size_nm)
    assert otf[0, 0] == pytest.approx(1.0)
    assert otf[k > 1.1 * optics.cutoff_per_um].max() < 0.02  # the measured support ends near 2 NA / λ
    assert np.corrcoef(otf.ravel(), ideal_otf(optics, (256, 256)).ravel())[0, 1] > 0.9


# ----------------------------------------------------------------------------------------------------------
# PSF files
# ----------------------------------------------------------------------------------------------------------


def test_read_psf(tmp_path: Path) -> None:
    psf = pupil_psf(OPTICS, (33, 33)) * 5000.0
    tifffile.imwrite(tmp_path / "psf.tif", psf.astype(np.float32)[None])  # a singleton axis is dropped
    got = read_psf(tmp_path / "psf.tif")
    assert got.shape == (33, 33)
    assert got.dtype == np.float64
    assert got.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(got, psf / psf.sum(), rtol=1e-5, atol=1e-9)
    stack = psf_3d(OPTICS, (5, 17, 17), z_step_nm=200.0)
    tifffile.imwrite(tmp_path / "psf3d.tif", (stack * 65535 / stack.max()).astype(np.uint16))
    assert read_psf(tmp_path / "psf3d.tif").shape == (5, 17, 17)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((8, 8), np.float32), "positive sum"),
        (-np.ones((8, 8), np.float32), "positive sum"),
        (np.full((8, 8), np.nan, np.float32), "NaN"),
        (np.ones(8, np.float32), "2D or 3D"),
    ],
)
def test_read_psf_rejects_bad_files(tmp_path: Path, data: np.ndarray, message: str) -> None:
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, data)
    with pytest.raises(InputError, match=message) as info:
        read_psf(path)
    assert str(path) in str(info.value)


def test_read_psf_missing_or_not_tiff(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_psf(tmp_path / "nope.tif")
    (tmp_path / "text.tif").write_text("hello")
    with pytest.raises(InputError, match="cannot read"):
        read_psf(tmp_path / "text.tif")
