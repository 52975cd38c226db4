"""The camera-independent noise-stabilising normaliser and the broad simulation case it is trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microrestore.engine.normalization import NoiseStabilizingNormalizer, normalizer_from_dict
from microrestore.errors import InputError
from microrestore.simulation import CameraModel, apply_camera, expected_counts, simulate


def _field(photons: float, offset: float, gain: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:128, :128]
    density = 0.05 + 0.95 * (np.sin(xx / 9.0) ** 2) * (np.cos(yy / 13.0) ** 2)
    camera = CameraModel(photons=photons, offset=offset, gain=gain, read_noise=1.5, background=1.0)
    return apply_camera(density, camera, seed), expected_counts(density, camera)


@pytest.mark.parametrize(("photons", "offset", "gain"), [(5, 100, 1.0), (50, 1000, 3.0), (300, 0, 0.5)])
def test_noise_has_the_same_spread_for_every_camera(photons: float, offset: float, gain: float) -> None:
    noisy, clean = _field(photons, offset, gain)
    norm = NoiseStabilizingNormalizer()
    params = norm.fit(noisy)
    residual = norm.apply(noisy, params) - norm.apply(clean, params)
    bright, dark = clean > np.percentile(clean, 80), clean < np.percentile(clean, 20)
    # noise std 1 / scale = 0.1 at every level, whatever the camera's offset, gain and photon count
    assert residual[bright].std() == pytest.approx(0.1, rel=0.2)
    assert residual[dark].std() == pytest.approx(0.1, rel=0.2)


def test_offset_and_gain_change_nothing_but_the_noise_draw() -> None:
    norm = NoiseStabilizingNormalizer()
    a_noisy, a_clean = _field(40, 100, 1.0)
    b_noisy, b_clean = _field(40, 1500, 4.0)
    a = norm.apply(a_clean, norm.fit(a_noisy))
    b = norm.apply(b_clean, norm.fit(b_noisy))
    # the same specimen and photon count look the same to a network, to within the noise-fit error
    assert np.abs(a - b).max() < 0.15 * a.max()


def test_invert_is_exact_and_keeps_units() -> None:
    noisy, _ = _field(20, 500, 2.0)
    norm = NoiseStabilizingNormalizer()
    params = norm.fit(noisy)
    values = np.linspace(noisy.min() - 50, noisy.max() + 50, 1000).astype(np.float32)
    back = norm.invert(norm.apply(values, params), params)
    np.testing.assert_allclose(back, values, rtol=1e-5, atol=1e-3)
    stabilised = norm.apply(values, params)
    assert np.all(np.diff(stabilised) > 0)  # strictly increasing, below the background too


def test_gaussian_noise_is_the_zero_gain_limit() -> None:
    rng = np.random.default_rng(1)
    image = 300.0 + 5.0 * rng.standard_normal((128, 128))
    norm = NoiseStabilizingNormalizer()
    params = norm.fit(image)
    assert params.gain < 0.05
    assert norm.apply(image, params).std() == pytest.approx(0.1, rel=0.15)


def test_round_trips_through_config() -> None:
    norm = NoiseStabilizingNormalizer(base_percentile=2.0, scale=5.0)
    assert normalizer_from_dict(norm.to_dict()) == norm


def test_broad_case_draws_and_records_each_fields_conditions(tmp_path) -> None:
    manifest = simulate("denoise-broad", tmp_path / "a", n=6, seed=5, shape=(48, 48), eight_bit=0.5)
    again = simulate("denoise-broad", tmp_path / "b", n=6, seed=5, shape=(48, 48), eight_bit=0.5)
    conds = [f["conditions"] for f in manifest["files"]]
    assert conds == [f["conditions"] for f in again["files"]]
    assert len({round(c["photons"], 6) for c in conds}) == 6
    assert all(2.0 <= c["photons"] <= 500.0 and 0.0 <= c["offset"] <= 2000.0 for c in conds)
    import tifffile

    for f in manifest["files"]:
        noisy = tifffile.imread(tmp_path / "a" / f["noisy"])
        assert noisy.dtype == (np.uint8 if f["conditions"]["eight_bit"] else np.uint16)
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["case"] == "denoise-broad"


def test_broad_case_frames_are_independent_realisations_of_one_field(tmp_path) -> None:
    import tifffile

    one = simulate("denoise-broad", tmp_path / "one", n=2, seed=7, shape=(48, 48), eight_bit=0.0)
    movie = simulate("denoise-broad", tmp_path / "movie", n=2, seed=7, shape=(48, 48), eight_bit=0.0, frames=3)
    assert movie["axes"] == "TYX" and [f["conditions"] for f in movie["files"]] == [
        f["conditions"] for f in one["files"]
    ]
    for a, b in zip(one["files"], movie["files"]):
        frames = tifffile.imread(tmp_path / "movie" / b["noisy"]).astype(np.float64)
        clean = tifffile.imread(tmp_path / "movie" / b["clean"]).astype(np.float64)
        assert frames.shape == (3, 48, 48) and clean.shape == (48, 48)
        # the first frame is the single-frame case's image; the others are new noise around the same mean
        np.testing.assert_array_equal(frames[0], tifffile.imread(tmp_path / "one" / a["noisy"]))
        assert not np.array_equal(frames[1], frames[2])
        residual = frames - clean
        assert abs(float(np.corrcoef(residual[1].ravel(), residual[2].ravel())[0, 1])) < 0.1
    with pytest.raises(InputError, match="frames"):
        simulate("denoise-broad", tmp_path / "bad", n=1, seed=7, shape=(48, 48), frames=0)


@pytest.mark.parametrize("method", ["care", "n2v"])
def test_methods_train_and_predict_in_the_input_units_with_noise_normalisation(method: str, tmp_path) -> None:
    from microrestore import api
    from microrestore.engine.modeldir import load_model
    from microrestore.io import read_image

    simulate("denoise", tmp_path / "sim", n=2, seed=2, photons=30, offset=700, shape=(64, 64))
    target = [tmp_path / "sim" / "clean"] if method == "care" else None
    tiny = {"normalization": "noise", "base_filters": 4, "batch_size": 2, "patch_size": 32, "depth": 1}
    api.train(method, [tmp_path / "sim" / "noisy"], tmp_path / "m", target=target, steps=3, progress=False, config=tiny)
    assert load_model(tmp_path / "m").normalization["kind"] == "noise"
    noisy = read_image(tmp_path / "sim" / "noisy" / "field_000.tif")
    out = api.restore(noisy, method, model=tmp_path / "m")
    assert out.dtype == np.float32 and np.isfinite(out).all()
    # an untrained network's output still lands in the input's units, at the camera offset's level
    assert abs(float(np.median(out)) - float(np.median(noisy.data))) < 0.5 * float(np.std(noisy.data)) + 20


def test_calibration_maps_any_camera_into_the_reference_units_and_back() -> None:
    from microrestore.engine.normalization import CameraCalibratedNormalizer, camera_reference

    ref_noisy, ref_clean = _field(30, 100, 1.0)
    reference = camera_reference([ref_noisy])
    assert reference is not None and reference["gain"] == pytest.approx(1.0, rel=0.15)
    norm = CameraCalibratedNormalizer(
        low=0, high=400, reference_gain=reference["gain"], reference_base=reference["base"]
    )
    noisy, clean = _field(30, 1500, 3.0, seed=1)
    params = norm.fit(noisy)
    # the same specimen and photon count, another camera: in reference units it matches the reference's truth
    mapped = norm.calibrate(clean, params)
    assert np.abs(mapped - ref_clean).max() < 0.1 * float(ref_clean.max() - ref_clean.min())
    values = np.linspace(1400, 1800, 50, dtype=np.float32)
    np.testing.assert_allclose(norm.invert(norm.apply(values, params), params), values, rtol=1e-5)
    assert normalizer_from_dict(norm.to_dict()) == norm


def test_c2gan_default_gives_the_same_result_for_another_camera_offset(tmp_path) -> None:
    from microrestore import api
    from microrestore.io import read_image

    results = []
    for offset in (100, 1000):
        simulate("denoise", tmp_path / str(offset), n=1, seed=9100, photons=30, offset=offset, shape=(96, 96))
        noisy = read_image(tmp_path / str(offset) / "noisy" / "field_000.tif")
        results.append(api.restore(noisy, "c2gan") - offset)
    # without the calibration the offset-1000 image came back at -40 dB (every value out of the training range)
    np.testing.assert_allclose(results[1], results[0], atol=0.05 * float(np.ptp(results[0])))
