"""Simulator: phantoms, camera model, the simulated data sets and raw 2D-SIM frames."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from microrestore import metrics
from microrestore.errors import InputError
from microrestore.io import read_image
from microrestore.optics import Optics
from microrestore.simulation import (
    CASES,
    PHANTOMS,
    CameraModel,
    apply_camera,
    convolve_same,
    expected_counts,
    psf_kernel,
    sim_raw_frames,
    simulate,
    variance_counts,
)

SMALL = {
    "denoise": {"shape": (64, 64)},
    "defocus": {"shape": (64, 64), "defocus_um": (-0.6, 0.3, 0.6)},
    "timelapse": {"shape": (6, 48, 48)},
    "zstack": {"shape": (8, 48, 48), "psf_z_extent_um": 0.6},
    "sim": {"shape": (32, 32)},
}


def _read(path: Path) -> np.ndarray:
    return np.asarray(read_image(path).data)


# ----------------------------------------------------------------------------------------------------------
# Phantoms
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(PHANTOMS) - {"image_crops"}))  # image_crops: real images, below
@pytest.mark.parametrize(("shape", "aspect"), [((96, 80), 1.0), ((12, 64, 64), 3.0)])
def test_phantoms(name: str, shape: tuple[int, ...], aspect: float) -> None:
    a = PHANTOMS[name](shape, np.random.default_rng(7), voxel_aspect=aspect)
    b = PHANTOMS[name](shape, np.random.default_rng(7), voxel_aspect=aspect)
    c = PHANTOMS[name](shape, np.random.default_rng(8), voxel_aspect=aspect)
    assert a.shape == shape
    assert a.dtype == np.float32
    assert a.min() >= 0.0
    assert a.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    covered = float((a > 0.05).mean())
    assert 0.001 < covered < 0.6
    # anti-aliased: plenty of intermediate values, not a binary mask
    assert float(((a > 0.1) & (a < 0.9)).sum()) > 0.2 * float((a > 0.1).sum())


def test_filaments_are_thin_and_wander_in_z() -> None:
    f2 = PHANTOMS["filaments"]((128, 128), 3, width_px=1.2)
    # most of the signal lies on thin curves: a small fraction of the field
    assert (f2 > 0.2).mean() < 0.15
    f3 = PHANTOMS["filaments"]((16, 96, 96), 3, voxel_aspect=2.0)
    planes_with_signal = (f3.reshape(16, -1) > 0.3).any(axis=1).sum()
    assert planes_with_signal >= 8
    wide = PHANTOMS["filaments"]((128, 128), 3, width_px=4.0)
    assert (wide > 0.2).mean() > 1.5 * (f2 > 0.2).mean()


def test_phantom_input_errors() -> None:
    with pytest.raises(InputError, match="shape"):
        PHANTOMS["filaments"]((5,), 0)
    with pytest.raises(InputError, match="voxel_aspect"):
        PHANTOMS["puncta"]((8, 32, 32), 0, voxel_aspect=0.0)
    with pytest.raises(InputError, match="radius_px"):
        PHANTOMS["tubules"]((32, 32), 0, radius_px=(5.0, 2.0))


def _real_like(path: Path) -> Path:
    """A 200 x 300 'real' image: dark background with a bright square only in its right half."""
    import tifffile

    img = np.full((200, 300), 100.0, np.float32) + np.random.default_rng(0).normal(0, 1, (200, 300)).astype(np.float32)
    img[60:140, 200:280] += 1000.0 * np.hanning(80)[:, None] * np.hanning(80)[None, :]
    tifffile.imwrite(path, img)
    return path


def test_image_crops_take_structure_from_the_region(tmp_path: Path) -> None:
    path = str(_real_like(tmp_path / "cell.tif"))
    a = PHANTOMS["image_crops"]((64, 64), np.random.default_rng(1), images=[path], region=(0, 1, 0.5, 1))
    b = PHANTOMS["image_crops"]((64, 64), np.random.default_rng(1), images=[path], region=(0, 1, 0.5, 1))
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (64, 64) and a.max() == pytest.approx(1.0) and a.min() >= 0
    assert np.percentile(a, 99) > 0.5  # a crop of the bright square, not of the background
    # the left half holds background only: no crop qualifies, and the error says so
    with pytest.raises(InputError, match="min_signal"):
        PHANTOMS["image_crops"]((64, 64), 1, images=[path], region=(0, 1, 0, 0.5))
    with pytest.raises(InputError, match="smaller than the crop"):
        PHANTOMS["image_crops"]((64, 64), 1, images=[path], region=(0, 0.2, 0, 1))
    with pytest.raises(InputError, match="region"):
        PHANTOMS["image_crops"]((64, 64), 1, images=[path], region=(0.5, 0.2, 0, 1))
    with pytest.raises(InputError, match="2D"):
        PHANTOMS["image_crops"]((4, 64, 64), 1, images=[path])
    with pytest.raises(InputError, match="images"):
        PHANTOMS["image_crops"]((64, 64), 1, images=[])


def test_denoise_case_with_real_image_crops(tmp_path: Path) -> None:
    path = str(_real_like(tmp_path / "cell.tif"))
    params = {"images": [path], "region": [0, 1, 0.5, 1]}
    manifest = simulate(
        "denoise", tmp_path / "out", n=2, seed=4, shape=(64, 64), phantom="image_crops", phantom_params=params
    )
    clean = _read(tmp_path / "out" / "clean" / "field_000.tif")
    noisy = _read(tmp_path / "out" / "noisy" / "field_000.tif")
    assert manifest["params"]["phantom"] == "image_crops" and clean.shape == noisy.shape == (64, 64)
    assert metrics.pcc(noisy.astype(np.float32), clean) > 0.5


# ----------------------------------------------------------------------------------------------------------
# Camera
# ----------------------------------------------------------------------------------------------------------


def test_camera_statistics_match_the_model() -> None:
    camera = CameraModel(photons=50.0, offset=100.0, read_noise=2.0, gain=2.0, qe=0.8, background=3.0)
    clean = np.tile(np.linspace(0.0, 1.0, 8), (20000, 1))
    counts = apply_camera(clean, camera, np.random.default_rng(0))
    assert counts.dtype == np.uint16
    mean = expected_counts(clean, camera)
    var = variance_counts(clean, camera)
    assert mean.dtype == np.float32
    np.testing.assert_allclose(mean[0], 2.0 * 0.8 * (50.0 * clean[0] + 3.0) + 100.0, rtol=1e-6)
    np.testing.assert_allclose(counts.mean(axis=0), mean[0], rtol=0.01)
    np.testing.assert_allclose(counts.var(axis=0), var[0] + 1 / 12, rtol=0.05)


def test_camera_clips_like_a_16_bit_camera_and_is_seeded() -> None:
    camera = CameraModel(photons=1e6)
    counts = apply_camera(np.ones((4, 4)), camera, 0)
    assert np.all(counts == 65535)
    a = apply_camera(np.full((8, 8), 0.3), CameraModel(photons=30.0), np.random.default_rng(1))
    b = apply_camera(np.full((8, 8), 0.3), CameraModel(photons=30.0), np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs",
    [{"photons": 0.0}, {"photons": 10.0, "qe": 1.5}, {"photons": 10.0, "gain": -1.0}, {"photons": float("nan")}],
)
def test_camera_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError, match="camera"):
        CameraModel(**kwargs)


def test_camera_rejects_bad_images() -> None:
    camera = CameraModel(photons=10.0)
    with pytest.raises(InputError, match="NaN"):
        apply_camera(np.array([np.nan]), camera, 0)
    with pytest.raises(InputError, match="non-negative"):
        expected_counts(np.array([-0.5, 1.0]), camera)


# ----------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------


def test_convolve_same_matches_direct_convolution() -> None:
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(0)
    img = rng.random((3, 30, 41))
    ker = rng.random((7, 9))
    got = convolve_same(img, ker)
    ref = np.stack([fftconvolve(plane, ker, mode="same") for plane in img])
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # a centred delta is the identity, for an even-sized kernel too
    delta = np.zeros((6, 6))
    delta[3, 3] = 1.0
    np.testing.assert_allclose(convolve_same(img[0], delta), img[0], atol=1e-12)


def test_psf_kernel_grows_with_defocus() -> None:
    optics = Optics(1.3, 520.0, 65.0)
    k0, k1 = psf_kernel(optics), psf_kernel(optics, 1.0)
    assert k0.shape[0] % 2 == 1 and k1.shape[0] > k0.shape[0] + 40
    assert k0.sum() == pytest.approx(1.0) and k1.sum() == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------------------


def test_registry() -> None:
    assert set(CASES) == {"denoise", "denoise-broad", "defocus", "timelapse", "zstack", "sim"}
    for name, case in CASES.items():
        assert case.name == name
        assert case.description and "\n" not in case.description
        assert "photons" in case.defaults and "seed" not in case.defaults


def test_denoise_case(tmp_path: Path) -> None:
    manifest = simulate("denoise", tmp_path, n=2, seed=3, **SMALL["denoise"])
    assert manifest == json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["case"] == "denoise" and manifest["seed"] == 3 and manifest["n"] == 2
    assert manifest["params"]["photons"] == 20.0 and manifest["params"]["shape"] == [64, 64]
    assert manifest["optics"]["na"] == 1.3 and manifest["camera"]["offset"] == 100.0
    assert [f["noisy"] for f in manifest["files"]] == ["noisy/field_000.tif", "noisy/field_001.tif"]
    for entry in manifest["files"]:
        noisy_img, clean_img = read_image(tmp_path / entry["noisy"]), read_image(tmp_path / entry["clean"])
        assert noisy_img.axes == "YX" and noisy_img.data.dtype == np.uint16
        assert clean_img.data.dtype == np.float32 and clean_img.data.shape == (64, 64)
        assert noisy_img.pixel_size["X"] == pytest.approx(0.065)
        clean = np.asarray(clean_img.data)
        # expected counts: offset + background at the dimmest pixel, offset + background + photons at the peak
        assert clean.max() == pytest.approx(100.0 + 2.0 + 20.0, rel=1e-5)
        assert clean.min() >= 102.0 - 1e-4
        noisy = np.asarray(noisy_img.data, np.float64)
        assert abs(noisy.mean() - clean.mean()) < 0.5  # unbiased
    assert read_image(tmp_path / manifest["psf"]).data.sum() == pytest.approx(1.0, rel=1e-5)


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = simulate("denoise", tmp_path / "a", n=2, seed=11, **SMALL["denoise"])
    b = simulate("denoise", tmp_path / "b", n=2, seed=11, **SMALL["denoise"])
    c = simulate("denoise", tmp_path / "c", n=1, seed=11, **SMALL["denoise"])
    simulate("denoise", tmp_path / "d", n=1, seed=12, **SMALL["denoise"])
    assert a == b
    for rel in ("noisy/field_000.tif", "clean/field_000.tif", "noisy/field_001.tif"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    # field i does not depend on n; another seed gives another field
    np.testing.assert_array_equal(_read(tmp_path / "a/noisy/field_000.tif"), _read(tmp_path / "c/noisy/field_000.tif"))
    assert not np.array_equal(_read(tmp_path / "a/clean/field_000.tif"), _read(tmp_path / "d/clean/field_000.tif"))
    assert c["files"][0] == a["files"][0]


def test_more_photons_give_a_higher_snr(tmp_path: Path) -> None:
    scores = []
    for photons in (5.0, 20.0, 100.0, 500.0):
        m = simulate("denoise", tmp_path / f"p{photons:g}", n=1, seed=0, photons=photons, shape=(96, 96))
        noisy = _read(tmp_path / f"p{photons:g}" / m["files"][0]["noisy"]).astype(np.float64)
        clean = _read(tmp_path / f"p{photons:g}" / m["files"][0]["clean"])
        scores.append(metrics.psnr(noisy, clean))
    assert all(b > a + 3.0 for a, b in itertools.pairwise(scores)), scores


@pytest.mark.parametrize("phantom", ["mixed", "nuclei"])
def test_denoise_other_phantoms_and_object(tmp_path: Path, phantom: str) -> None:
    m = simulate("denoise", tmp_path, n=1, seed=0, phantom=phantom, save_object=True, **SMALL["denoise"])
    obj = _read(tmp_path / m["files"][0]["object"])
    clean = _read(tmp_path / m["files"][0]["clean"])
    psf = _read(tmp_path / m["psf"])
    # the clean image is the object through the PSF, in camera units
    blurred = convolve_same(obj, psf)
    np.testing.assert_allclose(clean, 1.0 * (20.0 * blurred + 2.0) + 100.0, rtol=1e-4, atol=1e-3)


def test_defocus_case(tmp_path: Path) -> None:
    m = simulate("defocus", tmp_path, n=1, seed=2, **SMALL["defocus"])
    entry = m["files"][0]
    assert [d["dz_um"] for d in entry["defocus"]] == [-0.6, 0.3, 0.6]
    assert entry["defocus"][1]["noisy"] == "defocus/field_000_dz+0.30.tif"
    focus = _read(tmp_path / entry["infocus_clean"]) - 102.0
    assert _read(tmp_path / entry["infocus"]).dtype == np.uint16
    sharpness = {}
    for d in entry["defocus"]:
        img = _read(tmp_path / d["clean"]) - 102.0
        # same photon budget: only light spread past the border is lost
        assert img.sum() == pytest.approx(focus.sum(), rel=0.1)
        sharpness[d["dz_um"]] = float(np.abs(np.diff(img, axis=1)).sum())
    assert sharpness[0.3] > sharpness[0.6]
    assert sharpness[-0.6] == pytest.approx(sharpness[0.6], rel=1e-6)  # symmetric without aberrations
    assert float(np.abs(np.diff(focus, axis=1)).sum()) > sharpness[0.3]


def test_defocus_with_spherical_aberration_is_asymmetric(tmp_path: Path) -> None:
    m = simulate("defocus", tmp_path, n=1, seed=2, spherical_waves=0.3, **SMALL["defocus"])
    neg, pos = (_read(tmp_path / d["clean"]) for d in m["files"][0]["defocus"][::2])
    assert np.abs(neg - pos).max() > 0.5


def test_timelapse_case(tmp_path: Path) -> None:
    m = simulate("timelapse", tmp_path, n=1, seed=4, drift_px=0.5, **SMALL["timelapse"])
    noisy = read_image(tmp_path / m["files"][0]["noisy"])
    clean = _read(tmp_path / m["files"][0]["clean"])
    assert noisy.axes == "TYX" and noisy.data.shape == (6, 48, 48) and noisy.data.dtype == np.uint16
    next_frame = metrics.pcc(clean[1], clean[0])
    last_frame = metrics.pcc(clean[-1], clean[0])
    assert 0.8 < next_frame < 1.0 - 1e-6  # neighbours share the structures, but they move
    assert last_frame < next_frame
    # independent noise in every frame
    residual = noisy.data.astype(np.float64) - clean
    assert abs(metrics.pcc(residual[0], residual[1])) < 0.1


def test_zstack_case(tmp_path: Path) -> None:
    m = simulate("zstack", tmp_path, n=1, seed=5, **SMALL["zstack"])
    noisy = read_image(tmp_path / m["files"][0]["noisy"])
    clean = _read(tmp_path / m["files"][0]["clean"])
    assert noisy.axes == "ZYX" and noisy.data.shape == (8, 48, 48)
    assert noisy.pixel_size["Z"] == pytest.approx(0.2)
    assert m["optics"]["z_step_nm"] == 200.0
    # neighbouring slices differ in content, not only in noise
    assert not np.allclose(clean[3], clean[4], rtol=0.01)
    assert metrics.pcc(clean[3], clean[4]) > metrics.pcc(clean[0], clean[7])
    psf = read_image(tmp_path / m["psf"])
    assert psf.axes == "ZYX" and psf.data.shape[0] == 7  # ±0.6 um at 200 nm


def test_sim_case(tmp_path: Path) -> None:
    m = simulate("sim", tmp_path, n=1, seed=6, **SMALL["sim"])
    entry = m["files"][0]
    raw = read_image(tmp_path / entry["raw"])
    assert raw.data.shape == (9, 32, 32) and raw.data.dtype == np.uint16
    assert raw.pixel_size["X"] == pytest.approx(0.0626)
    assert _read(tmp_path / entry["raw_clean"]).dtype == np.float32
    gt = read_image(tmp_path / entry["gt"])
    assert gt.data.shape == (64, 64) and gt.pixel_size["X"] == pytest.approx(0.0313)
    params = json.loads((tmp_path / entry["params"]).read_text())
    optics = Optics(1.3, 525.0, 62.6)
    assert params["k_magnitude_per_um"] == pytest.approx(0.9 * optics.cutoff_per_um)
    angles = np.asarray(params["angles_rad"])
    assert np.allclose(np.diff(angles), np.pi / 3)
    for angle, kpx, kum in zip(angles, params["k_cycles_per_pixel"], params["k_per_um"], strict=True):
        assert kpx["kx"] == pytest.approx(np.cos(angle) * params["k_magnitude_cycles_per_pixel"])
        assert kpx["ky"] == pytest.approx(np.sin(angle) * params["k_magnitude_cycles_per_pixel"])
        assert kum["kx"] == pytest.approx(kpx["kx"] / 0.0626)
    phases = np.asarray(params["phases_rad"])
    assert phases.shape == (3, 3)
    steps = np.mod(np.diff(phases, axis=1), 2 * np.pi)
    np.testing.assert_allclose(steps, 2 * np.pi / 3)


def test_sim_pattern_from_the_excitation_optics(tmp_path: Path) -> None:
    m = simulate("sim", tmp_path, n=1, seed=0, na_exc=1.35, wavelength_exc_nm=488.0, **SMALL["sim"])
    params = json.loads((tmp_path / m["files"][0]["params"]).read_text())
    assert params["k_magnitude_per_um"] == pytest.approx(2 * 1.35 / 0.488)
    assert params["na_exc_equivalent"] == pytest.approx(1.35)
    assert params["period_nm"] == pytest.approx(488.0 / 2.7)


def test_sim_raw_frames_follow_the_stated_convention() -> None:
    optics = Optics(1.3, 525.0, 62.6)
    k = np.array([[0.1, 0.2], [-0.15, 0.18], [0.22, -0.05]])  # (ky, kx) cycles per raw pixel
    phases = np.array([[0.3, 0.3 + 2 * np.pi / 3, 0.3 + 4 * np.pi / 3], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    frames = sim_raw_frames(np.ones((128, 128)), optics, k, phases, 0.8)
    assert frames.density.shape == (9, 64, 64) and frames.clean is None
    yy, xx = np.mgrid[16:48, 16:48]  # away from the borders, where the uniform object ends
    for o in range(3):
        kmag = np.hypot(*k[o]) / optics.pixel_size_um
        rho = kmag / optics.cutoff_per_um
        expected_m = 0.8 * 2 / np.pi * (np.arccos(rho) - rho * np.sqrt(1 - rho**2))
        for p in range(3):
            frame = frames.density[3 * o + p, 16:48, 16:48]
            arg = 2 * np.pi * (k[o, 0] * yy + k[o, 1] * xx)
            design = np.column_stack([np.ones(frame.size), np.cos(arg).ravel(), np.sin(arg).ravel()])
            c0, c1, c2 = np.linalg.lstsq(design, frame.ravel(), rcond=None)[0]
            phase = np.arctan2(-c2, c1)
            assert np.angle(np.exp(1j * (phase - phases[o, p]))) == pytest.approx(0.0, abs=1e-3)
            # modulation seen in the raw frame: m x OTF(k) (x the pixel integration, a few percent)
            assert np.hypot(c1, c2) / c0 == pytest.approx(expected_m, rel=0.12)


def test_sim_raw_frames_with_camera_and_errors() -> None:
    optics = Optics(1.3, 525.0, 62.6)
    obj = PHANTOMS["filaments"]((64, 64), 0)
    k = 0.25 * np.array([[0.0, 1.0], [np.sin(np.pi / 3), np.cos(np.pi / 3)], [np.sin(2 * np.pi / 3), -0.5]])
    phases = np.tile(2 * np.pi * np.arange(3) / 3, (3, 1))
    cam = CameraModel(photons=50.0)
    frames = sim_raw_frames(obj, optics, k, phases, 0.8, cam, np.random.default_rng(0))
    assert frames.noisy is not None and frames.noisy.dtype == np.uint16 and frames.noisy.shape == (9, 32, 32)
    assert frames.clean is not None and frames.clean.max() == pytest.approx(152.0, rel=1e-5)
    with pytest.raises(InputError, match="even"):
        sim_raw_frames(obj[:63], optics, k, phases, 0.8)
    with pytest.raises(InputError, match="Nyquist"):
        sim_raw_frames(obj, optics, k * 2.5, phases, 0.8)
    with pytest.raises(InputError, match="modulation"):
        sim_raw_frames(obj, optics, k, phases, 1.5)
    with pytest.raises(InputError, match="phases"):
        sim_raw_frames(obj, optics, k, phases[:2], 0.8)


def test_sim_ground_truth_mode(tmp_path: Path) -> None:
    a = simulate("sim", tmp_path / "a", n=1, seed=1, **SMALL["sim"])
    b = simulate("sim", tmp_path / "b", n=1, seed=1, gt_mode="sim", **SMALL["sim"])
    obj = _read(tmp_path / "a" / a["files"][0]["gt"])
    band_limited = _read(tmp_path / "b" / b["files"][0]["gt"])
    np.testing.assert_array_equal(_read(tmp_path / "a/raw/field_000.tif"), _read(tmp_path / "b/raw/field_000.tif"))
    assert band_limited.max() < obj.max()
    assert metrics.pcc(band_limited, obj) > 0.7


@pytest.mark.parametrize("kind", ["timelapse", "zstack", "defocus", "sim"])
def test_cases_are_reproducible(tmp_path: Path, kind: str) -> None:
    a = simulate(kind, tmp_path / "a", n=1, seed=9, **SMALL[kind])
    b = simulate(kind, tmp_path / "b", n=1, seed=9, **SMALL[kind])
    assert a == b
    for path in sorted((tmp_path / "a").rglob("*.tif")):
        rel = path.relative_to(tmp_path / "a")
        np.testing.assert_array_equal(_read(path), _read(tmp_path / "b" / rel))


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("nope", {}, "unknown simulation"),
        ("denoise", {"colour": 1}, "no parameter 'colour'"),
        ("denoise", {"phantom": "cats"}, "unknown phantom"),
        ("denoise", {"shape": (8, 8)}, "shape"),
        ("denoise", {"photons": -1.0}, "camera photons"),
        ("denoise", {"na": 1.6}, "immersion index"),
        ("denoise", {"phantom_params": {"bogus": 1}}, "phantom 'filaments'"),
        ("sim", {"k_fraction": 3.0, "pixel_size_nm": 62.6}, "Nyquist"),
        ("sim", {"angles_deg": (0, 60)}, "3 angles"),
        ("timelapse", {"bleach_per_frame": 2.0}, "bleach_per_frame"),
        ("zstack", {"shape": (64, 64)}, "shape"),
        ("timelapse", {"n_moving": "many"}, "n_moving must be an integer"),
        ("sim", {"n_phases": 2}, "3 phases"),
    ],
)
def test_case_parameter_errors(tmp_path: Path, kind: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        simulate(kind, tmp_path, n=1, seed=0, **params)
    assert "\n" not in str(info.value)


def test_bad_n_and_seed(tmp_path: Path) -> None:
    for bad in (0, "3", 2.5):
        with pytest.raises(InputError, match="n must be"):
            simulate("denoise", tmp_path, n=bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="seed"):
        simulate("denoise", tmp_path, n=1, seed=-1)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        simulate("denoise", tmp_path / "file", n=1)
