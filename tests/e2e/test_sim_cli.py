"""``microrestore sim reconstruct`` / ``sim estimate`` and the ``wiener-sim`` method, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore.io import read_image, write_image

OPTICS = ["--na", "1.3", "--wavelength", "525", "--na-exc", "1.35", "--wavelength-exc", "488"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated raw stack (96 x 96 raw pixels, 62.6 nm) with its true parameters and ground truth."""
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("sim")
    simulate(
        "sim", root, n=1, seed=3, shape=(96, 96), photons=300.0, na=1.3, wavelength_nm=525.0,
        na_exc=1.35, wavelength_exc_nm=488.0, gt_mode="sim",
    )  # fmt: skip
    return root


def test_estimate_then_reconstruct(cli, simulated: Path, tmp_path: Path) -> None:
    raw = simulated / "raw" / "field_000.tif"
    result = cli("sim", "estimate", raw, *OPTICS, "-o", tmp_path / "p.json")
    assert result.exit_code == 0, result.output
    assert "SIM parameters" in result.stdout and "nominal |k|" in result.stdout
    found = json.loads((tmp_path / "p.json").read_text())
    truth = json.loads((simulated / "params" / "field_000.json").read_text())
    for o, k in zip(found["orientations"], truth["k_cycles_per_pixel"], strict=True):
        assert abs(abs(o["ky"] * k["ky"] + o["kx"] * k["kx"]) / (k["ky"] ** 2 + k["kx"] ** 2) - 1) < 0.01

    out = tmp_path / "sr.tif"
    result = cli("sim", "reconstruct", raw, "-o", out, *OPTICS, "--params", tmp_path / "p.json", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    image = read_image(out)
    assert image.axes == "YX" and image.data.shape == (192, 192) and image.data.dtype == np.float32
    assert image.pixel_size["X"] == pytest.approx(0.0313)
    gt = read_image(simulated / "gt" / "field_000.tif").data
    wf = read_image(raw).data.astype(np.float32).mean(axis=0)
    from microrestore.metrics import pcc
    from microrestore.structured_illumination.bands import upsample2

    wf2 = upsample2(__import__("torch").from_numpy(wf)).numpy()
    assert pcc(image.data, gt) > pcc(wf2, gt) + 0.02

    # the same with estimation inside reconstruct, the input's dtype, and the true parameters of the simulator
    same = tmp_path / "sr16.tif"
    result = cli("sim", "reconstruct", raw, "-o", same, *OPTICS, "--save-params", tmp_path / "used.json", "--dtype",
                 "same")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert read_image(same).data.dtype == np.uint16
    # the same parameters (estimation is deterministic): the uint16 output is the rounded float32 one
    assert np.array_equal(read_image(same).data, np.clip(np.rint(image.data), 0, 65535).astype(np.uint16))
    assert json.loads((tmp_path / "used.json").read_text())["source"] == "estimated"
    # without the camera offset, Wiener ringing goes below 0: clipped in uint16, and said so
    write_image(tmp_path / "no_offset.tif", np.clip(read_image(raw).data.astype(np.int32) - 100, 0, None).astype(
        np.uint16), "TYX", pixel_size={"X": 0.0626, "Y": 0.0626})  # fmt: skip
    result = cli("sim", "reconstruct", tmp_path / "no_offset.tif", "-o", tmp_path / "c.tif", *OPTICS, "-q",
                 "--dtype", "same")  # fmt: skip
    assert result.exit_code == 0 and "clipped" in result.output and "--dtype float32" in result.output
    # by default (auto) nothing is rounded or clipped: float32 in the input's units
    result = cli("sim", "reconstruct", tmp_path / "no_offset.tif", "-o", tmp_path / "d.tif", *OPTICS, "-q")
    assert result.exit_code == 0 and "clipped" not in result.output, result.output
    default = read_image(tmp_path / "d.tif").data
    assert default.dtype == np.float32 and float(default.min()) < 0


def test_time_series_phase_major_and_mrc(cli, simulated: Path, tmp_path: Path) -> None:
    frames = read_image(simulated / "raw" / "field_000.tif").data
    series = np.concatenate([frames, frames])
    phase_major = series.reshape(2, 3, 3, 96, 96).transpose(0, 2, 1, 3, 4).reshape(18, 96, 96)
    write_image(tmp_path / "pm.tif", phase_major, "TYX", pixel_size={"X": 0.0626, "Y": 0.0626})
    params = simulated / "params" / "field_000.json"
    args = [*OPTICS, "--params", params, "--dtype", "float32", "-q"]
    assert (
        cli(
            "sim", "reconstruct", tmp_path / "pm.tif", "-o", tmp_path / "pm_sr.tif", "--order", "phase-major", *args
        ).exit_code
        == 0
    )
    out = read_image(tmp_path / "pm_sr.tif")
    assert out.axes == "TYX" and out.data.shape == (2, 192, 192)
    assert np.allclose(out.data[0], out.data[1], atol=1e-3 * np.abs(out.data).max())
    write_image(tmp_path / "am.mrc", series, "ZYX", pixel_size={"X": 0.0626, "Y": 0.0626, "Z": 0.1})
    assert cli("sim", "reconstruct", tmp_path / "am.mrc", "-o", tmp_path / "am_sr.tif", *args).exit_code == 0
    assert np.allclose(read_image(tmp_path / "am_sr.tif").data, out.data, atol=1e-3 * np.abs(out.data).max())


def test_bad_inputs_give_one_line_errors(cli, simulated: Path, tmp_path: Path) -> None:
    raw = simulated / "raw" / "field_000.tif"
    frames = read_image(raw).data
    write_image(tmp_path / "eight.tif", frames[:8], "TYX", pixel_size={"X": 0.0626, "Y": 0.0626})
    nan = frames.astype(np.float32)
    nan[0, 5, 5] = np.nan
    write_image(tmp_path / "nan.tif", nan, "TYX", pixel_size={"X": 0.0626, "Y": 0.0626})
    tifffile.imwrite(tmp_path / "plain.tif", frames[0])
    tifffile.imwrite(tmp_path / "nopx.tif", frames, metadata={"axes": "TYX"})
    cases = [
        (("sim", "reconstruct", tmp_path / "eight.tif", "-o", tmp_path / "o.tif", *OPTICS), "multiple of 3"),
        (("sim", "reconstruct", tmp_path / "nan.tif", "-o", tmp_path / "o.tif", *OPTICS), "NaN"),
        (("sim", "reconstruct", tmp_path / "plain.tif", "-o", tmp_path / "o.tif", *OPTICS), "frames"),
        (("sim", "reconstruct", raw, "-o", tmp_path / "o.tif"), "needs an OTF"),
        (("sim", "reconstruct", raw, "-o", tmp_path / "o.tif", "--otf", tmp_path / "missing.mrc"), "not found"),
        (("sim", "reconstruct", tmp_path / "nopx.tif", "-o", tmp_path / "o.tif", *OPTICS), "pixel size"),
        (("sim", "reconstruct", raw, "-o", tmp_path / "o.tif", *OPTICS, "--method", "nope"), "unknown SIM method"),
        (("sim", "reconstruct", raw, "-o", tmp_path / "o.tif", *OPTICS, "--order", "sideways"), "order"),
        (("sim", "estimate", raw, "--otf", simulated / "psf.tif"), "excitation optics"),
        (("sim", "reconstruct", raw, "-o", tmp_path / "o.tif", *OPTICS, "--wiener", "-1"), "wiener"),
        (("sim", "reconstruct", raw, "-o", tmp_path / "o.tif", *OPTICS, "--set", "bogus=1"), "bogus"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not (tmp_path / "o.tif").exists()


def test_restore_command_points_to_sim(cli, simulated: Path, tmp_path: Path) -> None:
    result = cli("restore", simulated / "raw" / "field_000.tif", "-o", tmp_path / "x.tif", "-m", "wiener-sim",
                 "--set", "na=1.3", "--set", "wavelength_nm=525")  # fmt: skip
    assert result.exit_code == 2 and "sim reconstruct" in result.output


def test_mt_mrc_with_the_rdl_sim_otf(cli, shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "sim" / "rdlsim_microtubules"
    result = cli("sim", "estimate", folder / "MT.mrc", *OPTICS, "--otf", folder / "TIRF488_cam1_0_z30_OTF2d.mrc",
                 "-o", tmp_path / "mt.json")  # fmt: skip
    assert result.exit_code == 0, result.output
    params = json.loads((tmp_path / "mt.json").read_text())
    for o in params["orientations"]:  # pattern within 2 % of 2 NA_exc / lambda_exc
        assert abs(o["k_per_um"] / (2 * 1.35 / 0.488) - 1) < 0.02
    angles = sorted(o["angle_deg"] for o in params["orientations"])
    assert np.allclose(np.diff(angles), 60.0, atol=1.0)
