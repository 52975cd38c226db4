"""microrestore.structured_illumination: parameters, OTFs, band separation, estimation, Wiener, resolution."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from microrestore.errors import InputError
from microrestore.metrics import evaluate, frc_resolution
from microrestore.optics import Optics
from microrestore.simulation import CameraModel, filaments, sim_raw_frames
from microrestore.simulation.cases import _sim_gt
from microrestore.structured_illumination.bands import (
    apodize_borders,
    equalize_orientations,
    mix_bands,
    separate_bands,
    stacks_to_frames,
    to_stacks,
    upsample2,
    widefield,
)
from microrestore.structured_illumination.estimate import SIMEstimationWarning, estimate_params
from microrestore.structured_illumination.options import EstimationOptions
from microrestore.structured_illumination.otf import OTF, otf_from_optics, read_otf_file
from microrestore.structured_illumination.params import OrientationParams, SIMParams, frame_index, parameter_errors
from microrestore.structured_illumination.wiener import WienerFilter, wiener_reconstruct_bands

PX = 62.6
NA, LAM = 1.3, 525.0
NOMINAL = 2 * 1.35 / 0.488  # 2 NA_exc / lambda_exc per um
K_TRUE = 0.98 * NOMINAL * PX / 1000.0  # cycles per raw pixel, 2 % below nominal
ANGLES = (17.0, 77.0, 137.0)
PHASES = (0.4, -1.3, 2.2)
MODULATION = 0.8


class Scene:
    """A simulated 128 x 128 raw SIM stack with known parameters and the SIM-limited ground truth."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        optics = Optics(NA, LAM, PX)
        self.obj = filaments((256, 256), rng, n=30).astype(np.float64)
        a = np.deg2rad(ANGLES)
        self.kv = K_TRUE * np.column_stack([np.sin(a), np.cos(a)])
        self.phases = np.array(PHASES)[:, None] + 2 * np.pi * np.arange(3)[None, :] / 3
        camera = CameraModel(photons=200, offset=100, read_noise=1.5, gain=1, qe=1, background=2)
        frames = sim_raw_frames(self.obj, optics, self.kv, self.phases, MODULATION, camera, rng)
        self.clean = torch.from_numpy(frames.density)
        self.noisy = torch.from_numpy(frames.noisy.astype(np.float32))
        self.gt = _sim_gt(self.obj, replace(optics, pixel_size_nm=PX / 2), K_TRUE / (PX / 1000.0))
        self.params = SIMParams(
            [OrientationParams(ky, kx, ph, MODULATION) for (ky, kx), ph in zip(self.kv, self.phases, strict=True)],
            pixel_size_nm=PX,
        )
        self.otf = otf_from_optics(NA, LAM, pixel_size_nm=PX)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


# -- parameters -----------------------------------------------------------------------------------------


def test_params_json_round_trip(tmp_path: Path) -> None:
    params = SIMParams(
        [OrientationParams.from_angle(a, 0.3, [0.1, 2.2, 4.3], 0.7) for a in (10.0, 70.0, 130.0)],
        order="phase-major",
        pixel_size_nm=PX,
        shape_yx=(64, 80),
        source="test",
        notes=["a note"],
    )
    params.orientations[1].fallback = ["k"]
    path = params.save(tmp_path / "p.json")
    back = SIMParams.load(path)
    assert back.to_dict() == params.to_dict()
    assert back.orientations[0].angle_deg == pytest.approx(10.0)
    assert back.orientations[2].k_per_um(PX) == pytest.approx(0.3 / 0.0626)
    data = json.loads(path.read_text())
    assert data["orientations"][0]["period_nm"] == pytest.approx(PX / 0.3)


def test_params_read_simulator_file(tmp_path: Path) -> None:
    data = {
        "k_cycles_per_pixel": [{"ky": 0.1, "kx": 0.2}, {"ky": -0.2, "kx": 0.1}],
        "phases_rad": [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]],
        "modulation": [0.8, 0.7],
        "pixel_size_nm": 65.0,
    }
    (tmp_path / "sim.json").write_text(json.dumps(data))
    params = SIMParams.load(tmp_path / "sim.json")
    assert params.source == "simulation" and params.n_orientations == 2
    assert params.orientations[1].phases == [1.0, 3.0, 5.0] and params.orientations[1].modulation == 0.7


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not a JSON file"), ('{"a": 1}', "no 'orientations'"), ('{"orientations": [{"ky": 0.1}]}', "valid")],
)
def test_params_bad_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "p.json").write_text(content)
    with pytest.raises(InputError, match=message):
        SIMParams.load(tmp_path / "p.json")


def test_params_refuse_aliasing_wave_vector() -> None:
    with pytest.raises(InputError, match="Nyquist"):
        OrientationParams(0.4, 0.4, [0, 2, 4])


def test_frame_orders() -> None:
    frames = torch.arange(18 * 4 * 4, dtype=torch.float32).reshape(18, 4, 4)
    for order in ("angle-major", "phase-major"):
        stacks = to_stacks(frames, 3, 3, order)
        assert stacks.shape == (2, 3, 3, 4, 4)
        assert torch.equal(stacks_to_frames(stacks, order), frames)
        for d in range(3):
            for p in range(3):
                assert torch.equal(stacks[1, d, p], frames[9 + frame_index(d, p, 3, 3, order)])
    with pytest.raises(InputError, match="multiple of 3 x 3"):
        to_stacks(frames[:8], 3, 3)


# -- OTF ------------------------------------------------------------------------------------------------


def test_ideal_otf_matches_optics() -> None:
    from microrestore.optics import ideal_otf

    otf = otf_from_optics(NA, LAM)
    grid = otf.grid((64, 64), PX).numpy()
    assert np.allclose(grid, ideal_otf(Optics(NA, LAM, PX), (64, 64)), atol=1e-5)
    assert otf.cutoff_per_um == pytest.approx(2 * NA / (LAM / 1000))
    with_pixel = otf_from_optics(NA, LAM, pixel_size_nm=PX).grid((64, 64), PX).numpy()
    qy = np.fft.fftfreq(64)[:, None]
    assert np.allclose(with_pixel, grid * np.sinc(qy) * np.sinc(np.fft.fftfreq(64)[None, :]), atol=1e-5)


def test_mrc_radial_otf(shared_data: Path) -> None:
    otf = read_otf_file(shared_data / "sim" / "rdlsim_microtubules" / "TIRF488_cam1_0_z30_OTF2d.mrc")
    assert otf.dk_per_um == pytest.approx(0.0312, rel=1e-3)
    assert otf.profile[0] == 1.0 and otf.profile.size == 257
    # TIRF 488 channel, detection NA 1.3: support near 2 NA / lambda_em (about 5/um), tail zeroed beyond
    assert 4.5 < otf.cutoff_per_um < 5.6
    assert np.all(otf.profile[int(otf.cutoff_per_um / otf.dk_per_um) + 2 :] == 0)
    values = otf.evaluate(torch.tensor([0.0, 2.0, 9.0]), torch.zeros(3)).numpy()
    assert values[0] == pytest.approx(1.0) and 0 < values[1] < 1 and values[2] == 0


def test_otf_files_tiff_profile_and_psf(tmp_path: Path) -> None:
    import tifffile

    from microrestore.optics import pupil_psf

    profile = np.clip(1 - np.arange(100) / 80.0, 0, None).astype(np.float32)
    tifffile.imwrite(tmp_path / "profile.tif", profile[None])
    with pytest.raises(InputError, match="otf-dk"):
        read_otf_file(tmp_path / "profile.tif")
    otf = read_otf_file(tmp_path / "profile.tif", dk_per_um=0.05)
    assert otf.cutoff_per_um == pytest.approx(79 * 0.05, abs=0.06)
    psf = pupil_psf(Optics(NA, LAM, PX), (65, 65))
    tifffile.imwrite(tmp_path / "psf.tif", psf.astype(np.float32))
    measured = read_otf_file(tmp_path / "psf.tif", pixel_size_nm=PX)
    ideal = otf_from_optics(NA, LAM)
    k = torch.linspace(0, 4.5, 10)
    assert np.allclose(measured.evaluate(k, 0 * k).numpy(), ideal.evaluate(k, 0 * k).numpy(), atol=0.08)
    with pytest.raises(InputError, match="not found"):
        read_otf_file(tmp_path / "missing.mrc")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"\.mrc"):
        read_otf_file(tmp_path / "x.png")


# -- bands ----------------------------------------------------------------------------------------------


def test_band_separation_inverts_the_forward_model() -> None:
    gen = torch.Generator().manual_seed(0)
    bands = torch.randn((2, 3, 3, 16, 16), generator=gen, dtype=torch.complex64)
    phases = [[0.3, 2.0, 4.4], [0.0, 2 * math.pi / 3, 4 * math.pi / 3], [1.0, 2.5, 5.1]]
    back = separate_bands(mix_bands(bands, phases), phases)
    assert torch.allclose(back, bands, atol=1e-5)
    with pytest.raises(InputError, match="do not separate"):
        separate_bands(mix_bands(bands, phases), [[0.0, 0.0, 1.0]] * 3)


def test_band_separation_of_a_modulated_object() -> None:
    """frames = S (1 + m cos(2 pi k.r + phi_p)) on a periodic grid: b0 = FFT(S), b+ = m/2 FFT(S) shifted by +k."""
    rng = np.random.default_rng(1)
    s = rng.random((32, 32))
    ky, kx, m = 5, 3, 0.7
    y, x = np.mgrid[:32, :32]
    phases = np.array([0.2, 0.2 + 2.1, 0.2 + 4.3])
    frames = np.stack([s * (1 + m * np.cos(2 * np.pi * (ky * y + kx * x) / 32 + p)) for p in phases])
    spectra = torch.fft.fft2(torch.from_numpy(frames))[None]
    b = separate_bands(spectra, [phases])[0].numpy()
    spec = np.fft.fft2(s)
    assert np.allclose(b[0], spec, atol=1e-8)
    assert np.allclose(b[1], m / 2 * np.roll(spec, (ky, kx), axis=(0, 1)), atol=1e-8)
    assert np.allclose(b[2], m / 2 * np.roll(spec, (-ky, -kx), axis=(0, 1)), atol=1e-8)


def test_upsample_keeps_intensity_and_grid_convention() -> None:
    """2x grid pixel j sits at raw coordinate j / 2 - 1/4: a band-limited cosine is resampled exactly."""
    y, x = np.mgrid[:32, :32].astype(np.float64)
    image = 5 + np.cos(2 * np.pi * (3 * y + 2 * x) / 32 + 0.3)
    fine = upsample2(torch.from_numpy(image)).numpy()
    fy, fx = np.mgrid[:64, :64] / 2.0 - 0.25
    assert np.allclose(fine, 5 + np.cos(2 * np.pi * (3 * fy + 2 * fx) / 32 + 0.3), atol=1e-4)


def test_apodize_and_equalize() -> None:
    frames = torch.rand((1, 3, 3, 40, 40)) + 1
    frames[:, 1] *= 2.0
    eq = equalize_orientations(frames)
    means = eq.mean(dim=(2, 3, 4))
    assert torch.allclose(means, means.mean(), rtol=1e-5)
    frame = frames[0, 0, 0]
    ap = apodize_borders(frame, 6)
    # opposite edges meet (continuous across the FFT wrap-around); the interior is untouched
    assert (ap[0] - ap[-1]).abs().max() < 0.2 * (frame[0] - frame[-1]).abs().max()
    assert (ap[:, 0] - ap[:, -1]).abs().max() < 0.2 * (frame[:, 0] - frame[:, -1]).abs().max()
    assert torch.equal(ap[6:-6, 6:-6], frame[6:-6, 6:-6])


# -- estimation -----------------------------------------------------------------------------------------


def _errors(found: SIMParams, scene: Scene) -> list[tuple[float, float, float, float]]:
    """Angle (deg), relative |k|, phase (rad, at the image centre, where the data are) and modulation errors."""
    rows = parameter_errors(found, scene.params, (63.5, 63.5))
    return [(r["angle_deg"], r["k_relative"], r["phase_rad"], r["modulation"]) for r in rows]


def test_parameter_errors_match_k_and_minus_k() -> None:
    ref = SIMParams([OrientationParams(0.1, 0.2, [0.5, 2.6, 4.7], 0.8)])
    flipped = SIMParams([OrientationParams(-0.1, -0.2, [-0.5, -2.6, -4.7], 0.7)])
    (row,) = parameter_errors(flipped, ref, (40.0, 40.0))
    assert row["angle_deg"] == pytest.approx(0.0, abs=1e-9) and row["phase_rad"] == pytest.approx(0.0, abs=1e-9)
    assert row["modulation"] == pytest.approx(0.1)
    shifted = SIMParams([OrientationParams(0.1, 0.2 * 1.001, [0.5, 2.6, 4.7], 0.8)])
    (row,) = parameter_errors(shifted, ref, (0.0, 100.0))
    assert row["phase_rad"] == pytest.approx(2 * math.pi * 0.0002 * 100, rel=1e-6)  # the lever arm of dk


@pytest.mark.parametrize("which", ["clean", "noisy"])
def test_estimation_recovers_known_parameters(scene: Scene, which: str) -> None:
    stacks = to_stacks(getattr(scene, which), 3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SIMEstimationWarning)
        found = estimate_params(stacks, scene.otf, PX, NOMINAL)
    for angle, k_rel, phase, mod in _errors(found, scene):
        assert angle < 0.2  # degrees; the issue asks for well under 0.5
        assert k_rel < 0.003  # the issue asks for < 0.5 %
        assert phase < 0.1  # radians
        assert mod < 0.1
    assert all(o.fallback == [] for o in found.orientations)
    assert all(0.0 <= o.angle_deg < 180.0 for o in found.orientations)


def test_estimation_falls_back_on_pure_noise() -> None:
    rng = np.random.default_rng(3)
    noise = torch.from_numpy(rng.poisson(50.0, size=(9, 96, 96)).astype(np.float32))
    otf = otf_from_optics(NA, LAM, pixel_size_nm=PX)
    with pytest.warns(SIMEstimationWarning, match="orientation"):
        found = estimate_params(to_stacks(noise, 3, 3), otf, PX, NOMINAL)
    assert all("k" in o.fallback for o in found.orientations)
    for o in found.orientations:  # nominal |k| (no orientation could be fitted)
        assert o.k_per_um(PX) == pytest.approx(NOMINAL, rel=0.02)


def test_estimation_uses_nominal_angles_and_equal_spacing(scene: Scene) -> None:
    stacks = to_stacks(scene.noisy, 3, 3).clone()
    rng = np.random.default_rng(5)
    stacks[0, 1] = torch.from_numpy(rng.poisson(300.0, size=(3, 128, 128)).astype(np.float32))  # lose orientation 1
    with pytest.warns(SIMEstimationWarning, match="orientation 1"):
        found = estimate_params(stacks, scene.otf, PX, NOMINAL)
    assert found.orientations[1].fallback[:1] == ["k"]
    assert found.orientations[1].angle_deg == pytest.approx(ANGLES[1], abs=1.0)  # 60 degrees from the others
    # Its modulation, measured without a peak of its own, is not trusted (1 / m would amplify its bands).
    assert found.orientations[1].fallback == ["k", "modulation"]
    assert found.orientations[1].modulation == EstimationOptions().default_modulation
    assert found.orientations[0].fallback == [] and found.orientations[2].fallback == []
    opts = EstimationOptions(angles_deg=[17.0, 100.0, 137.0], angle_tolerance_deg=3.0)
    with pytest.warns(SIMEstimationWarning, match="far from nominal"):
        found = estimate_params(to_stacks(scene.noisy, 3, 3), scene.otf, PX, NOMINAL, opts)
    assert "k" in found.orientations[1].fallback


def test_estimation_needs_sane_optics(scene: Scene) -> None:
    with pytest.raises(InputError, match="outside"):
        estimate_params(to_stacks(scene.clean, 3, 3), scene.otf, 200.0, NOMINAL)


# -- Wiener ---------------------------------------------------------------------------------------------


def test_wiener_beats_widefield_on_noise_free_data(scene: Scene) -> None:
    stacks = to_stacks(scene.clean, 3, 3)
    sr = WienerFilter(scene.params, scene.otf, (128, 128), PX)(apodize_borders(stacks, 8))[0].numpy()
    wf = widefield(stacks)[0].numpy()
    crop = (slice(16, -16), slice(16, -16))
    sr_q = evaluate(sr[crop], scene.gt[crop])
    wf_q = evaluate(wf[crop], scene.gt[crop])
    assert sr_q["psnr_affine"] > 35.0
    assert sr_q["psnr_affine"] > wf_q["psnr_affine"] + 8.0
    # resolution against the truth (FRC 0.5): about twice as fine as widefield
    res_sr = frc_resolution(sr, scene.gt, 0.5, PX / 2)
    res_wf = frc_resolution(wf, scene.gt, 0.5, PX / 2)
    assert res_sr < 0.65 * res_wf
    # intensities stay in the input's units
    assert sr.mean() == pytest.approx(float(stacks.mean()), rel=0.02)


def test_fast_path_equals_band_by_band_reconstruction(scene: Scene) -> None:
    stacks = to_stacks(scene.noisy, 3, 3)
    for weighting, notch in ((True, 0.0), (False, 0.9)):
        f = WienerFilter(
            scene.params, scene.otf, (128, 128), PX, wiener=0.1, notch_strength=notch, modulation_weighting=weighting
        )
        fast = f(stacks)
        reference = wiener_reconstruct_bands(stacks, f)
        assert torch.allclose(fast, reference, atol=1e-4 * float(fast.abs().max()))


def test_time_series_and_phase_major_order(scene: Scene) -> None:
    frames = torch.cat([scene.noisy, scene.noisy * 0.5])
    f = WienerFilter(scene.params, scene.otf, (128, 128), PX, apodization="cosine")
    series = f(to_stacks(frames, 3, 3), batch=1)
    assert series.shape == (2, 256, 256)
    assert torch.allclose(series[1], 0.5 * series[0], atol=1e-3 * float(series.abs().max()))
    phase_major = stacks_to_frames(to_stacks(scene.noisy, 3, 3), "phase-major")
    assert torch.allclose(f(to_stacks(phase_major, 3, 3, "phase-major")), series[:1], atol=1e-4)


def test_wiener_refuses_bad_settings(scene: Scene) -> None:
    with pytest.raises(InputError, match="Wiener constant"):
        WienerFilter(scene.params, scene.otf, (128, 128), PX, wiener=0.0)
    with pytest.raises(InputError, match="apodization"):
        WienerFilter(scene.params, scene.otf, (128, 128), PX, apodization="box")
    f = WienerFilter(scene.params, scene.otf, (128, 128), PX)
    with pytest.raises(InputError, match="built for"):
        f(torch.zeros((1, 3, 3, 64, 64)))


def test_otf_dataclass_checks() -> None:
    with pytest.raises(InputError, match="zero frequency"):
        OTF(np.array([0.0, 1.0]), 0.1)
    with pytest.raises(InputError, match="NaN"):
        OTF(np.array([1.0, np.nan]), 0.1)
