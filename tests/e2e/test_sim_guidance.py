"""SIM for a newcomer: wrong optics are caught, the Wiener constant is chosen from the noise, an rdl model
whose pattern period does not fit the data is named (or replaced), plain 9 n-frame TIFFs read without --axes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

pytestmark = pytest.mark.usefixtures("torch_one_thread")

DETECTION = ["--na", "1.3", "--wavelength", "525", "--pixel-size", "62.6"]
EXCITATION = ["--na-exc", "1.35", "--wavelength-exc", "488"]
TRUE_K = 2 * 1.35 / 0.488  # per um, the simulated pattern (181 nm period)


def _simulate(root: Path, photons: float, shape: tuple[int, int] = (128, 128), seed: int = 3) -> Path:
    from microrestore.simulation import simulate

    simulate(
        "sim", root, n=1, seed=seed, shape=shape, photons=photons, na=1.3, wavelength_nm=525.0,
        na_exc=1.35, wavelength_exc_nm=488.0, gt_mode="sim",
    )  # fmt: skip
    return root / "raw" / "field_000.tif"


@pytest.fixture(scope="module")
def bright(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated raw stack at 300 photons, pattern of NA_exc 1.35 at 488 nm."""
    return _simulate(tmp_path_factory.mktemp("bright"), 300.0)


def _k_values(path: Path) -> list[float]:
    data = json.loads(path.read_text())
    px = data["pixel_size_nm"] / 1000.0
    return [np.hypot(o["ky"], o["kx"]) / px for o in data["orientations"]]


def test_wrong_excitation_optics_are_named_and_the_agreeing_fit_is_used(cli, bright: Path, tmp_path: Path) -> None:
    # Only the detection optics: the nominal pattern is 2 x 1.3 / 525 nm, 11 % below the real one.
    result = cli("sim", "estimate", bright, *DETECTION, "-o", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    assert "check --na-exc / --wavelength-exc" in result.stderr
    assert "agree with each other" in result.stderr
    for k in _k_values(tmp_path / "p.json"):
        assert abs(k / TRUE_K - 1) < 0.01
    # With the right optics, no such hint.
    result = cli("sim", "estimate", bright, *DETECTION, *EXCITATION)
    assert "check --na-exc" not in result.stderr


def test_a_single_off_nominal_peak_is_not_trusted() -> None:
    from microrestore.structured_illumination.estimate import _agreeing_off_nominal
    from microrestore.structured_illumination.options import EstimationOptions

    opts = EstimationOptions()
    k_nom = 0.31
    # two significant peaks that agree, 60 degrees apart, 12 % off nominal: adopted
    assert _agreeing_off_nominal([0.35, 0.348, 0.3], [25.0, 145.0, 80.0], [27.0, 12.0, 6.0], [False] * 3, k_nom, opts)
    # one significant peak only: not adopted
    assert not _agreeing_off_nominal([0.35, 0.3, 0.3], [25.0, 145.0, 80.0], [27.0, 6.0, 6.0], [False] * 3, k_nom, opts)
    # two peaks that disagree (5 %): not adopted
    assert not _agreeing_off_nominal([0.35, 0.3675, 0.3], [25, 145, 80], [27.0, 12.0, 6.0], [False] * 3, k_nom, opts)
    # not on the 60-degree grid: not adopted
    assert not _agreeing_off_nominal([0.35, 0.35, 0.3], [25, 110, 80], [27.0, 12.0, 6.0], [False] * 3, k_nom, opts)
    # an orientation fitted the nominal value: the rule does not apply
    assert not _agreeing_off_nominal([0.35, 0.35, 0.3], [25, 145, 80], [27, 12, 20], [False, False, True], k_nom, opts)


def test_mt_mrc_readme_line_without_excitation_optics_matches_the_right_optics(
    cli, shared_data: Path, tmp_path: Path
) -> None:
    mt = shared_data / "sim" / "rdlsim_microtubules" / "MT.mrc"
    wrong = cli("sim", "estimate", mt, *DETECTION, "-o", tmp_path / "wrong.json")
    right = cli("sim", "estimate", mt, *DETECTION, *EXCITATION, "-o", tmp_path / "right.json")
    assert wrong.exit_code == right.exit_code == 0, wrong.output + right.output
    assert "check --na-exc / --wavelength-exc" in wrong.stderr
    np.testing.assert_allclose(_k_values(tmp_path / "wrong.json"), _k_values(tmp_path / "right.json"), rtol=1e-3)


def test_auto_wiener_grows_with_the_noise(tmp_path: Path) -> None:
    from microrestore.io import read_image
    from microrestore.structured_illumination import SIMOptions
    from microrestore.structured_illumination.otf import load_otf
    from microrestore.structured_illumination.reconstruct import raw_stacks
    from microrestore.structured_illumination.wiener_auto import W_MAX, W_MIN, choose_wiener

    options = SIMOptions(na=1.3, wavelength_nm=525, na_exc=1.35, wavelength_exc_nm=488, pixel_size_nm=62.6)
    otf = load_otf(options, 62.6)
    chosen = []
    for photons in (5.0, 30.0, 1000.0):
        stacks = raw_stacks(read_image(_simulate(tmp_path / str(photons), photons)), options)
        choice = choose_wiener(options, stacks, otf, 62.6)
        assert choice.auto and choice.noise_to_signal is not None
        chosen.append(choice.value)
    assert W_MAX >= chosen[0] > chosen[1] > chosen[2] >= W_MIN
    assert chosen[2] < 0.08 < 0.15 < chosen[1]  # bright: sharp; dim: smoothed (the best PSNR is near these)
    given = choose_wiener(options.model_copy(update={"wiener": 0.2}), stacks, otf, 62.6)
    assert (given.value, given.auto) == (0.2, False)


def test_wiener_flag_auto_default_number_and_errors(cli, bright: Path, tmp_path: Path) -> None:
    result = cli("sim", "reconstruct", bright, "-o", tmp_path / "a.tif", *DETECTION, *EXCITATION)
    assert result.exit_code == 0, result.output
    assert "Wiener constant w = " in result.stderr and "(auto, from the noise" in result.stderr
    result = cli("sim", "reconstruct", bright, "-o", tmp_path / "b.tif", *DETECTION, *EXCITATION, "--wiener", "0.2")
    assert result.exit_code == 0 and "w = 0.2 (given)" in result.stderr
    result = cli("sim", "reconstruct", bright, "-o", tmp_path / "c.tif", *DETECTION, "--wiener", "lots")
    assert result.exit_code == 2 and "--wiener must be auto or a number" in result.stderr
    assert not (tmp_path / "c.tif").exists()
    help_text = " ".join(cli("sim", "reconstruct", "--help").stdout.replace("│", " ").split())
    assert "auto" in help_text and "0.2 to 0.5" in help_text


def test_mt_mrc_auto_wiener_is_not_the_honeycomb_default(shared_data: Path) -> None:
    from microrestore.io import read_image
    from microrestore.structured_illumination import SIMOptions
    from microrestore.structured_illumination.otf import load_otf
    from microrestore.structured_illumination.reconstruct import raw_stacks
    from microrestore.structured_illumination.wiener_auto import choose_wiener

    folder = shared_data / "sim" / "rdlsim_microtubules"
    base = {"na": 1.3, "wavelength_nm": 525, "na_exc": 1.35, "wavelength_exc_nm": 488}
    for extra in ({}, {"otf": folder / "TIRF488_cam1_0_z30_OTF2d.mrc"}):
        options = SIMOptions(**base, **extra)
        image = read_image(folder / "MT.mrc")
        px = options.resolved_pixel_size_nm(image.pixel_size)
        choice = choose_wiener(options, raw_stacks(image, options), load_otf(options, px), px)
        assert 0.15 <= choice.value <= 0.6, choice  # 0.05 gives honeycomb noise, 0.2 is clean


def test_plain_nine_frame_tiff_reads_without_axes(cli, bright: Path, tmp_path: Path) -> None:
    frames = tifffile.imread(bright)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, frames)  # no ImageJ / OME axes
    result = cli("sim", "reconstruct", plain, "-o", tmp_path / "sr.tif", *DETECTION, *EXCITATION, "-q")
    assert result.exit_code == 0, result.output
    assert "reading its 9 frames as raw SIM frames" in result.stderr
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.concatenate([frames, frames]))
    result = cli("sim", "reconstruct", two, "-o", tmp_path / "sr2.tif", *DETECTION, *EXCITATION, "-q")
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "sr2.tif").shape == (2, 256, 256)
    bad = tmp_path / "ten.tif"
    tifffile.imwrite(bad, np.concatenate([frames, frames[:1]]))
    result = cli("sim", "reconstruct", bad, "-o", tmp_path / "sr3.tif", *DETECTION, *EXCITATION)
    assert result.exit_code == 2
    assert "10 frames are not a multiple of the 9 frames" in result.stderr
    assert "ZYX" not in result.stderr and not (tmp_path / "sr3.tif").exists()


def test_pattern_advice_names_or_picks_a_fitting_model() -> None:
    from microrestore_rdl_sim.pattern import pattern_advice

    zoo = {"rdl-sim-2d": 4.464, "rdl-sim-tirf-2d": 5.533}
    assert pattern_advice(5.55, 5.533, "rdl-sim-tirf-2d", True, zoo) is None
    picked = pattern_advice(5.55, 4.464, "rdl-sim-2d", False, zoo)
    assert picked is not None and picked.use == "rdl-sim-tirf-2d" and "using rdl-sim-tirf-2d" in picked.message
    named = pattern_advice(5.55, 4.464, "rdl-sim-2d", True, zoo)
    assert named is not None and named.use is None and "--model rdl-sim-tirf-2d" in named.message
    assert "180 nm" in named.message and "224 nm" in named.message
    none_fits = pattern_advice(3.0, 4.464, "rdl-sim-2d", True, zoo)
    assert none_fits is not None and none_fits.use is None and "no installed model fits" in none_fits.message


def test_rdl_default_model_is_replaced_by_the_one_that_fits_the_pattern(bright: Path) -> None:
    from microrestore_rdl_sim.pattern import SIMPatternWarning

    from microrestore import api
    from microrestore.io import read_image
    from microrestore.plugins import PredictOptions, get_registry

    method = get_registry().methods["rdl-sim"]
    image = read_image(bright)
    # the default model (224 nm pattern) on 181 nm data, no optics given: replaced, with a warning
    predictor = api.load_predictor(method, None, PredictOptions(device="cpu", params={}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stacks, pixel_nm = predictor._stacks(image)
        predictor.match_pattern(stacks, pixel_nm)
    messages = [str(w.message) for w in caught if issubclass(w.category, SIMPatternWarning)]
    assert messages and "using rdl-sim-tirf-2d instead" in messages[0]
    assert predictor.model_id == "rdl-sim-tirf-2d"
    assert abs(predictor.settings.nominal_k_per_um() / TRUE_K - 1) < 0.01
    # named by the user: kept, and the warning names the model that fits
    named = api.load_predictor(method, "rdl-sim-2d", PredictOptions(device="cpu", params={}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        named.match_pattern(*named._stacks(image))
    messages = [str(w.message) for w in caught if issubclass(w.category, SIMPatternWarning)]
    assert messages and "--model rdl-sim-tirf-2d" in messages[0]
    assert named.model_id == "rdl-sim-2d"
    # the fitting model: no warning
    fitting = api.load_predictor(method, "rdl-sim-tirf-2d", PredictOptions(device="cpu", params={}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitting.match_pattern(*fitting._stacks(image))
    assert not [w for w in caught if issubclass(w.category, SIMPatternWarning)]


def test_rdl_cli_names_the_model_it_switched_to(cli, bright: Path, tmp_path: Path) -> None:
    result = cli("sim", "reconstruct", bright, "-o", tmp_path / "sr.tif", "--method", "rdl", "-q")
    assert result.exit_code == 0, result.output
    assert "using rdl-sim-tirf-2d instead" in result.stderr
    assert "(rdl-sim, model rdl-sim-tirf-2d)" in result.stderr
