"""The nl-means plugin: registration, options, noise estimation, GAT, NL-means and the predictor."""

from __future__ import annotations

import subprocess
import sys

import microrestore_nlmeans
import numpy as np
import pytest
from microrestore_nlmeans import NLMeansParams, estimate_poisson_gaussian, load
from microrestore_nlmeans.nlm import nl_means
from microrestore_nlmeans.noise import NoiseModel, gat_forward, gat_inverse
from microrestore_nlmeans.predictor import NLMeansPredictor

from microrestore.errors import InputError
from microrestore.io import ImageData
from microrestore.metrics import psnr, ssim
from microrestore.plugins.registry import Method, PredictOptions, Predictor
from microrestore.simulation import CameraModel, apply_camera, convolve_same, expected_counts, filaments, psf_kernel


def _blurred_field(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Filaments through the default widefield PSF, peak 1 (as the simulation's denoise case)."""
    from microrestore.optics import Optics

    obj = filaments(shape, seed)
    img = np.maximum(convolve_same(obj, psf_kernel(Optics(na=1.3, wavelength_nm=520, pixel_size_nm=65))), 0)
    return img / img.max()


@pytest.fixture(scope="module")
def noisy_pair() -> tuple[np.ndarray, np.ndarray, CameraModel]:
    camera = CameraModel(photons=30.0, gain=2.0, read_noise=1.5, offset=100.0, background=3.0)
    img = _blurred_field((256, 256), 3)
    return apply_camera(img, camera, 4), expected_counts(img, camera), camera


def _predictor(**params: object) -> NLMeansPredictor:
    predictor = load(None, PredictOptions(params=dict(params)))
    assert isinstance(predictor, NLMeansPredictor)
    return predictor


# -- registration ---------------------------------------------------------------------------------------


def test_register_methods_registers_one_model_free_denoiser() -> None:
    found: list[Method] = []
    microrestore_nlmeans.register_methods(register=found.append)
    assert len(found) == 1
    method = found[0]
    assert isinstance(method, Method)
    assert method.name == "nl-means"
    assert method.task == "denoise"
    assert method.needs_model is False
    assert method.train is None
    assert method.predict_schema is NLMeansParams
    assert method.load is load
    assert "Buades" in method.citation and "Makitalo" in method.citation and "Darbon" in method.citation
    assert method.summary


def test_plugin_is_found_through_its_entry_point() -> None:
    from microrestore.plugins import get_registry

    method = get_registry().method("nl-means", "denoise")
    assert method.plugin and method.predict_schema is NLMeansParams


def test_package_import_stays_light() -> None:
    code = "import sys, microrestore_nlmeans; print(sorted(m for m in ('torch', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- options --------------------------------------------------------------------------------------------


def test_load_returns_a_predictor_and_refuses_models() -> None:
    assert isinstance(load(None, PredictOptions()), Predictor)
    assert isinstance(load("none", PredictOptions()), Predictor)
    with pytest.raises(InputError, match="nl-means needs no model"):
        load("zoo:care-denoise", PredictOptions())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sigma": 2.0}, "sigma: unknown option"),
        ({"patch_size": 4}, "patch_size: .*odd"),
        ({"search_size": 1}, "search_size"),
        ({"h": -1}, "h: "),
        ({"gain": 0}, "gain: "),
        ({"h": "strong"}, "h: "),
    ],
)
def test_bad_options_are_one_line_input_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        load(None, PredictOptions(params=params))
    assert "\n" not in str(info.value)
    assert "nl-means" in str(info.value)


def test_options_accept_their_own_dump_and_strings() -> None:
    dumped = NLMeansParams(h=0.7, gain=1.5).model_dump()
    predictor = _predictor(**dumped)
    assert predictor.params.h == 0.7 and predictor.params.gain == 1.5
    assert _predictor(patch_size="7", h="1.2").params.patch_size == 7


# -- noise model ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gain", "read_noise_e", "photons"), [(2.0, 1.5, 30.0), (0.5, 4.0, 200.0), (4.0, 1.0, 10.0)])
def test_noise_estimate_recovers_gain_and_read_noise(gain: float, read_noise_e: float, photons: float) -> None:
    camera = CameraModel(photons=photons, gain=gain, read_noise=read_noise_e, offset=100.0, background=3.0)
    counts = apply_camera(_blurred_field((384, 384), 11), camera, 12)
    read_noise_adu = gain * read_noise_e
    # with the camera offset known, gain and read noise are both identifiable
    model = estimate_poisson_gaussian(counts, offset=100.0)
    assert model.gain == pytest.approx(gain, rel=0.2)
    assert np.sqrt(model.sigma2) == pytest.approx(read_noise_adu, rel=0.2)
    # without it, the variance line var = gain * mean + c is what is identifiable
    free = estimate_poisson_gaussian(counts)
    assert free.gain == pytest.approx(gain, rel=0.2)
    for level in (100.0 + gain * 3.0, 100.0 + gain * (photons + 3.0)):
        true_var = gain * (level - 100.0) + read_noise_adu**2
        assert float(free.variance(level)) == pytest.approx(true_var, rel=0.2)


def test_noise_estimate_on_a_stack_and_with_known_values() -> None:
    camera = CameraModel(photons=40.0, gain=1.0, read_noise=2.0)
    img = _blurred_field((128, 128), 5)
    stack = np.stack([apply_camera(img, camera, s) for s in range(4)])
    model = estimate_poisson_gaussian(stack, offset=100.0)
    assert model.gain == pytest.approx(1.0, rel=0.2)
    assert np.sqrt(model.sigma2) == pytest.approx(2.0, rel=0.2)
    fixed = estimate_poisson_gaussian(stack, gain=1.0, read_noise=2.0, offset=100.0)
    assert fixed == NoiseModel(1.0, 4.0, 100.0)
    given_gain = estimate_poisson_gaussian(stack, gain=1.0, offset=100.0)
    assert given_gain.gain == 1.0
    assert np.sqrt(given_gain.sigma2) == pytest.approx(2.0, rel=0.2)


def test_purely_gaussian_noise_gives_zero_gain() -> None:
    rng = np.random.default_rng(0)
    img = 500.0 + 300.0 * _blurred_field((256, 256), 2) + rng.normal(0, 5.0, (256, 256))
    model = estimate_poisson_gaussian(img)
    assert float(model.variance(600.0)) == pytest.approx(25.0, rel=0.15)
    assert model.gain < 0.05


def test_gat_exact_unbiased_inverse_removes_the_low_count_bias() -> None:
    rng = np.random.default_rng(1)
    model = NoiseModel(gain=1.0, sigma2=0.25, offset=0.0)
    for lam in (1.0, 3.0, 10.0, 100.0):
        z = rng.poisson(lam, 400_000) + rng.normal(0, 0.5, 400_000)
        mean_stabilised = float(np.mean(gat_forward(z, model), dtype=np.float64))
        unbiased = float(gat_inverse(np.array([mean_stabilised]), model)[0])
        algebraic = (mean_stabilised / 2) ** 2 - 3 / 8 - model.sigma2
        assert unbiased == pytest.approx(lam, rel=0.03, abs=0.05)
        if lam <= 3:
            assert abs(algebraic - lam) > 3 * abs(unbiased - lam)  # the naive inverse is biased
        # the transform stabilises the variance to about 1
        if lam >= 3:
            assert float(np.var(gat_forward(z, model))) == pytest.approx(1.0, rel=0.1)


def test_gat_round_trip_at_high_counts() -> None:
    model = NoiseModel(gain=2.0, sigma2=9.0, offset=100.0)
    z = np.linspace(400.0, 5000.0, 50)
    back = gat_inverse(gat_forward(z, model), model)
    np.testing.assert_allclose(back, z, rtol=2e-3)


# -- NL-means core --------------------------------------------------------------------------------------


def _nl_means_brute_force(u: np.ndarray, patch: int, search: int, h: float) -> np.ndarray:
    rp, rs = patch // 2, search // 2
    padded = np.pad(u.astype(np.float64), rs + rp, mode="reflect")
    out = np.zeros(u.shape)
    for i in range(u.shape[0]):
        for j in range(u.shape[1]):
            ref = padded[i + rs : i + rs + patch, j + rs : j + rs + patch]
            weights, values = [], []
            for dy in range(-rs, rs + 1):
                for dx in range(-rs, rs + 1):
                    if dy == 0 and dx == 0:
                        continue
                    other = padded[i + rs + dy : i + rs + dy + patch, j + rs + dx : j + rs + dx + patch]
                    d2 = float(np.mean((ref - other) ** 2))
                    weights.append(np.exp(-max(d2 - 2.0, 0.0) / h**2))
                    values.append(padded[i + rs + rp + dy, j + rs + rp + dx])
            w_self = max(max(weights), 1e-6)
            out[i, j] = (np.dot(weights, values) + w_self * u[i, j]) / (sum(weights) + w_self)
    return out


def test_fast_nl_means_equals_the_direct_definition() -> None:
    rng = np.random.default_rng(2)
    u = (rng.normal(size=(17, 21)) + np.linspace(0, 4, 21)).astype(np.float32)
    for patch, search in ((3, 7), (5, 9)):
        fast = nl_means(u, patch_size=patch, search_size=search, h=0.8)
        np.testing.assert_allclose(fast, _nl_means_brute_force(u, patch, search, 0.8), atol=1e-4)


def test_nl_means_handles_tiny_planes() -> None:
    u = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = nl_means(u, patch_size=5, search_size=13, h=0.9)
    assert out.shape == (3, 4) and np.isfinite(out).all()
    line = nl_means(np.ones((1, 9), np.float32), patch_size=3, search_size=5)
    np.testing.assert_allclose(line, 1.0)


# -- the predictor --------------------------------------------------------------------------------------


def test_denoising_gains_more_than_3_db_and_keeps_units(
    noisy_pair: tuple[np.ndarray, np.ndarray, CameraModel],
) -> None:
    noisy, clean, _ = noisy_pair
    out = _predictor().predict(ImageData(noisy, "YX"))
    assert out.dtype == np.float32 and out.shape == noisy.shape
    gain_db = psnr(out, clean) - psnr(noisy, clean)
    assert gain_db > 3.0, gain_db
    assert ssim(out, clean) > ssim(noisy, clean) + 0.1
    assert float(out.mean()) == pytest.approx(float(clean.mean()), rel=0.02)


def test_simulated_denoise_case(tmp_path: object) -> None:
    from pathlib import Path

    from microrestore.io import read_image
    from microrestore.simulation import simulate

    root = Path(str(tmp_path))
    manifest = simulate("denoise", root, n=1, seed=0, shape=(192, 192))
    entry = manifest["files"][0]
    noisy = read_image(root / entry["noisy"])
    clean = read_image(root / entry["clean"]).data
    out = _predictor().predict(noisy)
    assert psnr(out, clean) - psnr(noisy.data, clean) > 3.0
    assert float(out.mean()) == pytest.approx(float(clean.mean()), rel=0.03)


def test_stacks_are_processed_plane_by_plane_with_a_model_per_channel() -> None:
    img = _blurred_field((192, 192), 7)
    bright = apply_camera(img, CameraModel(photons=50.0, gain=2.0), 1)
    dim = apply_camera(img, CameraModel(photons=20.0, gain=0.5), 2)
    data = np.stack([np.stack([bright, dim]), np.stack([bright[::-1], dim[::-1]])])  # T, C, Y, X
    predictor = _predictor()
    out = predictor.predict(ImageData(data, "TCYX"))
    assert out.shape == data.shape and out.dtype == np.float32
    assert set(predictor.noise_models) == {(0,), (1,)}
    assert predictor.noise_models[(0,)].gain > 2 * predictor.noise_models[(1,)].gain
    # every plane is denoised with its channel's model
    fixed = predictor.noise_models[(1,)]
    alone = _predictor(gain=fixed.gain, read_noise=np.sqrt(fixed.sigma2), offset=fixed.offset)
    np.testing.assert_allclose(out[1, 1], alone.predict(ImageData(dim[::-1], "YX")), rtol=1e-5, atol=1e-3)


def test_axes_order_is_respected() -> None:
    img = apply_camera(_blurred_field((64, 80), 8), CameraModel(photons=30.0), 3)
    predictor = _predictor(gain=1.0, read_noise=1.5, offset=100.0)
    ref = predictor.predict(ImageData(img, "YX"))
    swapped = predictor.predict(ImageData(np.stack([img.T]), "ZXY"))
    np.testing.assert_allclose(swapped[0].T, ref, rtol=1e-6)


def test_out_is_filled_and_returned() -> None:
    from microrestore.engine.outputs import OutputSink

    noisy = apply_camera(_blurred_field((64, 64), 9), CameraModel(photons=30.0), 4)
    sink = OutputSink(np.zeros(noisy.shape, np.uint16))
    returned = _predictor().predict(ImageData(noisy, "YX"), out=sink)
    assert returned is sink
    assert sink.array.dtype == np.uint16 and sink.array.max() > 100
    plain = np.zeros(noisy.shape, np.float32)
    assert _predictor().predict(ImageData(noisy, "YX"), out=plain) is plain


def test_noise_free_image_asks_for_the_noise_model() -> None:
    flat = np.full((64, 64), 100, np.uint16)
    with pytest.raises(InputError, match="gain="):
        _predictor().predict(ImageData(flat, "YX"))
    # a fully given model needs no estimate
    out = _predictor(gain=1.0, read_noise=1.0, offset=0.0).predict(ImageData(flat, "YX"))
    assert float(out.mean()) == pytest.approx(100.0, rel=0.01)


def test_api_restore_runs_the_method() -> None:
    from microrestore import api

    noisy = ImageData(apply_camera(_blurred_field((64, 64), 10), CameraModel(photons=30.0), 5), "YX")
    out = api.restore(noisy, "nl-means", h=0.8)
    assert out.shape == noisy.data.shape and out.dtype == np.float32
    with pytest.raises(InputError, match="unknown option"):
        api.restore(noisy, "nl-means", strength=1)
