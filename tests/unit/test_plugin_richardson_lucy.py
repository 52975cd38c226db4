"""The richardson-lucy plugin: registration, options, PSF sources, 2D and 3D deconvolution."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import microrestore_richardson_lucy
import numpy as np
import pytest
from microrestore_richardson_lucy import RichardsonLucyParams, load
from microrestore_richardson_lucy.deconv import richardson_lucy
from microrestore_richardson_lucy.predictor import RichardsonLucyPredictor

from microrestore.errors import InputError
from microrestore.io import ImageData
from microrestore.metrics import psnr, ssim
from microrestore.optics import Optics, psf_3d, pupil_psf
from microrestore.plugins.registry import Method, PredictOptions, Predictor
from microrestore.simulation import convolve_same, filaments

OPTICS = {"na": 1.3, "wavelength_nm": 520.0}
PIXEL_UM = 0.065
BACKGROUND = 100.0


@pytest.fixture(scope="module")
def blurred_pair() -> tuple[np.ndarray, np.ndarray]:
    """(noisy blurred image, sharp truth), both with a background of 100, in photon-like units."""
    rng = np.random.default_rng(0)
    obj = 400.0 * filaments((192, 192), 1)
    psf = pupil_psf(Optics(pixel_size_nm=PIXEL_UM * 1000, **OPTICS), (41, 41))
    blurred = np.maximum(convolve_same(obj, psf), 0.0)
    noisy = rng.poisson(blurred + 10.0).astype(np.float32) + (BACKGROUND - 10.0)
    return noisy, (obj + BACKGROUND).astype(np.float32)


def _image(data: np.ndarray, axes: str = "YX", **sizes: float) -> ImageData:
    return ImageData(data, axes, pixel_size={"X": PIXEL_UM, "Y": PIXEL_UM, **sizes})


def _predictor(**params: object) -> RichardsonLucyPredictor:
    predictor = load(None, PredictOptions(params=dict(params)))
    assert isinstance(predictor, RichardsonLucyPredictor)
    return predictor


# -- registration ---------------------------------------------------------------------------------------


def test_register_methods_registers_one_model_free_deblurrer() -> None:
    found: list[Method] = []
    microrestore_richardson_lucy.register_methods(register=found.append)
    assert len(found) == 1
    method = found[0]
    assert isinstance(method, Method)
    assert method.name == "richardson-lucy"
    assert method.task == "deblur"
    assert method.needs_model is False
    assert method.train is None
    assert method.predict_schema is RichardsonLucyParams
    assert method.load is load
    assert "Richardson" in method.citation and "Lucy" in method.citation and "Dey" in method.citation
    assert method.summary


def test_plugin_is_found_through_its_entry_point() -> None:
    from microrestore.plugins import get_registry

    assert get_registry().method("richardson-lucy", "deblur").predict_schema is RichardsonLucyParams


def test_package_import_stays_light() -> None:
    code = "import sys, microrestore_richardson_lucy; print([m for m in ('torch', 'scipy') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- options --------------------------------------------------------------------------------------------


def test_load_refuses_models_and_needs_a_psf_source() -> None:
    assert isinstance(load(None, PredictOptions(params=dict(OPTICS))), Predictor)
    assert isinstance(load("none", PredictOptions(params=dict(OPTICS))), Predictor)
    with pytest.raises(InputError, match="richardson-lucy needs no model"):
        load("model/", PredictOptions(params=dict(OPTICS)))
    with pytest.raises(InputError, match=r"psf=FILE\.tif, or the optics"):
        load(None, PredictOptions())
    with pytest.raises(InputError, match=r"psf=FILE\.tif, or the optics"):
        load(None, PredictOptions(params={"na": 1.3}))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**OPTICS, "iteration": 10}, "iteration: unknown option"),
        ({**OPTICS, "iterations": 0}, "iterations: "),
        ({**OPTICS, "tv_weight": -0.1}, "tv_weight: "),
        ({**OPTICS, "dims": 4}, "dims: "),
        ({"na": -1, "wavelength_nm": 520}, "na: "),
        ({"na": 1.6, "wavelength_nm": 520, "pixel_size_nm": 65}, "immersion index"),
    ],
)
def test_bad_options_are_one_line_input_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        _predictor(**params).predict(_image(np.ones((32, 32), np.float32)))
    assert "\n" not in str(info.value)


def test_psf_file_and_optics_exclude_each_other(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "psf.tif"
    tifffile.imwrite(path, np.ones((5, 5), np.float32))
    with pytest.raises(InputError, match="either psf= or the optics"):
        load(None, PredictOptions(params={"psf": str(path), **OPTICS}))
    with pytest.raises(InputError, match="PSF file not found"):
        load(None, PredictOptions(params={"psf": str(tmp_path / "missing.tif")}))


def test_missing_pixel_size_is_an_input_error_naming_the_option() -> None:
    image = ImageData(np.ones((32, 32), np.float32), "YX", path=Path("cells.tif"))
    with pytest.raises(InputError, match=r"cells.tif: .*pixel size.*--set pixel_size_nm=") as info:
        _predictor(**OPTICS).predict(image)
    assert "\n" not in str(info.value)
    # given explicitly it works without metadata
    out = _predictor(**OPTICS, pixel_size_nm=65.0, iterations=2).predict(image)
    np.testing.assert_allclose(out, 1.0, rtol=1e-5)


# -- 2D deconvolution -----------------------------------------------------------------------------------


def test_deconvolution_sharpens_and_keeps_flux(blurred_pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, truth = blurred_pair
    predictor = _predictor(**OPTICS)
    out = predictor.predict(_image(noisy))
    assert out.dtype == np.float32 and out.shape == noisy.shape
    assert psnr(out, truth) > psnr(noisy, truth) + 2.0
    assert ssim(out, truth) > ssim(noisy, truth) + 0.02
    assert float(out.sum(dtype=np.float64)) == pytest.approx(float(noisy.sum(dtype=np.float64)), rel=0.01)
    assert out.min() >= 0
    # the estimated background is near the true one (100) and is added back
    assert predictor.backgrounds[0] == pytest.approx(BACKGROUND, abs=3.0)
    # the computed PSF used the image's pixel size
    assert predictor.last_psf is not None and predictor.last_psf.sum() == pytest.approx(1.0)


def test_more_iterations_sharpen_more_and_tv_regularises(blurred_pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, _ = blurred_pair
    image = _image(noisy)
    few = _predictor(**OPTICS, iterations=5).predict(image)
    many = _predictor(**OPTICS, iterations=60).predict(image)
    tv = _predictor(**OPTICS, iterations=60, tv_weight=0.01).predict(image)
    assert many.max() > few.max() > noisy.max()

    def total_variation(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a, axis=0)).sum() + np.abs(np.diff(a, axis=1)).sum())

    assert total_variation(tv) < total_variation(many)
    assert float(tv.sum()) == pytest.approx(float(noisy.sum()), rel=0.01)


def test_given_background_is_used(blurred_pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, _ = blurred_pair
    predictor = _predictor(**OPTICS, background=90.0, iterations=3)
    predictor.predict(_image(noisy))
    assert predictor.backgrounds == [90.0]


def test_psf_file_gives_the_same_result_as_the_optics(
    tmp_path: Path, blurred_pair: tuple[np.ndarray, np.ndarray]
) -> None:
    import tifffile

    noisy, _ = blurred_pair
    by_optics = _predictor(**OPTICS, iterations=10)
    expected = by_optics.predict(_image(noisy))
    path = tmp_path / "psf.tif"
    assert by_optics.last_psf is not None
    tifffile.imwrite(path, (by_optics.last_psf * 1000).astype(np.float32))  # any scale: normalised on reading
    from_file = _predictor(psf=str(path), iterations=10).predict(ImageData(noisy, "YX"))  # no pixel size needed
    np.testing.assert_allclose(from_file, expected, rtol=1e-3, atol=1e-2)


def test_defocus_changes_the_psf() -> None:
    image = _image(np.ones((64, 64), np.float32))
    focused = _predictor(**OPTICS, iterations=1)
    defocused = _predictor(**OPTICS, iterations=1, defocus_um=1.0)
    focused.predict(image)
    defocused.predict(image)
    assert focused.last_psf is not None and defocused.last_psf is not None
    assert defocused.last_psf.shape[0] > focused.last_psf.shape[0]
    assert defocused.last_psf.max() < 0.5 * focused.last_psf.max()


def test_stack_is_deconvolved_plane_by_plane(blurred_pair: tuple[np.ndarray, np.ndarray]) -> None:
    noisy, _ = blurred_pair
    plane = noisy[:96, :128]
    predictor = _predictor(**OPTICS, iterations=5)
    ref = predictor.predict(_image(plane))
    stack = np.stack([plane, plane[::-1]])
    out = predictor.predict(_image(stack, "TYX"))
    np.testing.assert_allclose(out[0], ref, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(out[1], ref[::-1], rtol=1e-3)  # padding differs slightly when flipped
    assert len(predictor.backgrounds) == 2
    swapped = predictor.predict(_image(plane.T[None], "CXY"))  # X before Y
    np.testing.assert_allclose(swapped[0].T, ref, rtol=1e-5, atol=1e-3)


def test_out_is_filled_and_returned(blurred_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from microrestore.engine.outputs import OutputSink

    noisy, _ = blurred_pair
    data = noisy.astype(np.uint16)
    sink = OutputSink(np.zeros(data.shape, np.uint16))
    assert _predictor(**OPTICS, iterations=5).predict(_image(data), out=sink) is sink
    assert sink.array.max() > data.max()


def test_api_restore_runs_the_method(blurred_pair: tuple[np.ndarray, np.ndarray]) -> None:
    from microrestore import api

    noisy, _ = blurred_pair
    out = api.restore(_image(noisy[:64, :64]), "richardson-lucy", iterations=5, **OPTICS)
    assert out.shape == (64, 64) and out.dtype == np.float32


def test_core_rl_concentrates_a_blurred_point() -> None:
    yy, xx = np.mgrid[-7:8, -7:8]
    psf = np.exp(-(yy**2 + xx**2) / 8.0)
    psf[7, 9] += 0.3  # asymmetric: a centring error would move the point
    point = np.zeros((48, 50))
    point[20, 30] = 100.0
    blurred = convolve_same(point, psf / psf.sum())
    restored = richardson_lucy(blurred, psf, iterations=200)
    assert np.unravel_index(int(restored.argmax()), restored.shape) == (20, 30)
    assert restored[19:22, 29:32].sum() > 0.8 * restored.sum()
    assert float(restored.sum()) == pytest.approx(100.0, rel=1e-3)


# -- 3D -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def volume_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray, Path]:
    import tifffile

    z_step_nm = 200.0
    optics = Optics(pixel_size_nm=PIXEL_UM * 1000, z_step_nm=z_step_nm, **OPTICS)
    psf = psf_3d(optics, (15, 33, 33))
    obj = 300.0 * filaments((16, 64, 64), 2, voxel_aspect=z_step_nm / (PIXEL_UM * 1000))
    blurred = np.maximum(convolve_same(obj, psf), 0.0)
    rng = np.random.default_rng(1)
    noisy = rng.poisson(blurred + 5.0).astype(np.float32) + (BACKGROUND - 5.0)
    path = tmp_path_factory.mktemp("psf3d") / "psf3d.tif"
    tifffile.imwrite(path, psf.astype(np.float32))
    return noisy, (obj + BACKGROUND).astype(np.float32), path


def test_3d_psf_file_runs_3d_deconvolution(volume_case: tuple[np.ndarray, np.ndarray, Path]) -> None:
    noisy, truth, path = volume_case
    predictor = _predictor(psf=str(path))
    out = predictor.predict(ImageData(noisy, "ZYX"))
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert predictor.last_psf is not None and predictor.last_psf.ndim == 3
    assert len(predictor.backgrounds) == 1  # one volume
    assert psnr(out, truth) > psnr(noisy, truth) + 1.0
    assert float(out.sum(dtype=np.float64)) == pytest.approx(float(noisy.sum(dtype=np.float64)), rel=0.01)
    # 3D beats deconvolving each plane with the in-focus plane of the same PSF
    plane_wise = _predictor(**OPTICS).predict(
        ImageData(noisy, "ZYX", pixel_size={"X": PIXEL_UM, "Y": PIXEL_UM, "Z": 0.2})
    )
    assert psnr(out, truth) > psnr(plane_wise, truth)


def test_3d_with_a_computed_psf_needs_the_z_step(volume_case: tuple[np.ndarray, np.ndarray, Path]) -> None:
    noisy, _, _ = volume_case
    small = noisy[:, :40, :40]
    with pytest.raises(InputError, match="z_step_nm"):
        _predictor(**OPTICS, dims=3, iterations=2).predict(_image(small, "ZYX"))
    predictor = _predictor(**OPTICS, dims=3, iterations=5)
    out = predictor.predict(_image(small, "ZYX", Z=0.2))
    assert out.shape == small.shape
    assert predictor.last_psf is not None and predictor.last_psf.shape[0] == 2 * small.shape[0] - 1


def test_3d_psf_needs_a_z_axis(volume_case: tuple[np.ndarray, np.ndarray, Path]) -> None:
    _, _, path = volume_case
    with pytest.raises(InputError, match="PSF is 3D"):
        _predictor(psf=str(path)).predict(ImageData(np.ones((32, 32), np.float32), "YX"))
    with pytest.raises(InputError, match="dims=2 needs a 2D PSF"):
        _predictor(psf=str(path), dims=2)
