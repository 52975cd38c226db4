"""The command line as a user meets it: restore, inputs and outputs, bad input, exit codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile


def _noisy(shape=(64, 64), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = 200 + 800 * np.exp(-((yy - shape[0] / 2) ** 2 + (xx - shape[1] / 3) ** 2) / 60.0)
    return (rng.poisson(clean) + 100).astype(np.uint16)


def test_help_does_not_import_torch():
    code = (
        "import sys\n"
        "from microrestore.cli.app import main\n"
        "rc = main(['--help'])\n"
        "main(['methods'])\n"
        "assert 'torch' not in sys.modules, 'torch imported at start-up'\n"
        "assert 'bioimageio' not in ' '.join(sys.modules)\n"
        "print('rc', rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "rc 0" in result.stdout


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and "microrestore" in result.stdout


def test_denoise_one_file_keeps_units_axes_and_pixel_size(cli, tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _noisy(), imagej=True, resolution=(1 / 0.065, 1 / 0.065), metadata={"unit": "micron"})
    result = cli("denoise", src, "-o", tmp_path / "out.tif", "--method", "nl-means", "--quiet")
    assert result.exit_code == 0, result.output
    from microrestore.io import read_image

    out = read_image(tmp_path / "out.tif")
    # --dtype auto: float32 in the input's units (rounding to 16-bit counts would posterise); same: uint16.
    assert out.data.dtype == np.float32 and out.axes == "YX"
    assert "float32" in result.output
    result = cli("denoise", src, "-o", tmp_path / "same.tif", "--method", "nl-means", "--dtype", "same", "-q")
    assert result.exit_code == 0, result.output
    same = read_image(tmp_path / "same.tif").data
    assert same.dtype == np.uint16
    np.testing.assert_array_equal(same, np.rint(out.data).astype(np.uint16))
    assert out.pixel_size["X"] == pytest.approx(0.065, rel=1e-3)
    assert np.asarray(out.data, float).std() < _noisy().astype(float).std()
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_denoise_folder_and_glob_keep_names(cli, tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(3):
        tifffile.imwrite(folder / f"f{i}.tif", _noisy(seed=i))
    result = cli("denoise", folder, "-o", tmp_path / "out", "--method", "nl-means", "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f0.tif", "f1.tif", "f2.tif"]
    result = cli("denoise", str(folder / "f*.tif"), "-o", tmp_path / "out2", "--method", "nl-means", "-q")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out2").iterdir())) == 3


def test_tta_runs_a_network_method_and_refuses_a_classical_one(cli, tmp_path):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _noisy())
    outputs = {}
    for flag in ([], ["--tta"]):
        out = tmp_path / f"care{len(flag)}.tif"
        result = cli("denoise", src, "-o", out, "--method", "care", "--dtype", "float32", "-q", *flag)
        assert result.exit_code == 0, result.output
        outputs[len(flag)] = tifffile.imread(out)
    assert outputs[1].shape == outputs[0].shape and not np.array_equal(outputs[1], outputs[0])
    assert np.corrcoef(outputs[0].ravel(), outputs[1].ravel())[0, 1] > 0.95
    result = cli("denoise", src, "-o", tmp_path / "nlm.tif", "--method", "nl-means", "--tta")
    _assert_one_line_error(result, "--tta", "nl-means")
    assert not (tmp_path / "nlm.tif").exists()


def test_float32_dtype_option(cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "nl-means", "--dtype", "float32")
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "o.tif").dtype == np.float32


def _assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.mark.parametrize(
    "name, content",
    [("garbage.tif", b"this is not a tiff file at all" * 10), ("empty.tif", b"")],
)
def test_unreadable_file(cli, tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    result = cli("denoise", tmp_path / name, "-o", tmp_path / "out.tif", "--method", "nl-means")
    _assert_one_line_error(result, name)
    assert not (tmp_path / "out.tif").exists()


def test_truncated_tiff(cli, tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, _noisy((256, 256)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = cli("denoise", path, "-o", tmp_path / "out.tif", "--method", "nl-means")
    _assert_one_line_error(result, "cut.tif")
    assert not (tmp_path / "out.tif").exists()


def test_missing_file(cli, tmp_path):
    result = cli("denoise", tmp_path / "nope.tif", "-o", tmp_path / "out.tif", "--method", "nl-means")
    _assert_one_line_error(result, "nope.tif")


def test_nan_input(cli, tmp_path):
    image = _noisy().astype(np.float32)
    image[3, 4] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", image)
    result = cli("denoise", tmp_path / "nan.tif", "-o", tmp_path / "out.tif", "--method", "nl-means")
    _assert_one_line_error(result, "nan.tif", "NaN")
    assert not (tmp_path / "out.tif").exists()


def test_wrong_axes(cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "nl-means", "--axes", "ZYX")
    _assert_one_line_error(result, "in.tif")


def test_unknown_method_lists_known(cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "magic")
    _assert_one_line_error(result, "magic", "nl-means")


def test_deblur_method_refused_by_denoise(cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "richardson-lucy")
    _assert_one_line_error(result, "deblur")


def test_model_of_another_method_is_refused(cli, tmp_path):
    from microrestore.engine.modeldir import save_model
    from microrestore.nn import UNet

    net = UNet(base_filters=4, depth=1)
    save_model(
        tmp_path / "m",
        method="other-method",
        networks={"net": net},
        network_specs={"net": net.spec},
        normalization={"kind": "percentile", "low": 1.0, "high": 99.8},
        config={},
        axes="YX",
        provenance={},
        metrics={},
    )
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli(
        "denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "care", "--model", tmp_path / "m"
    )
    _assert_one_line_error(result, "other-method")


def test_no_method_given_lists_choices(cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif")
    _assert_one_line_error(result, "--method", "nl-means")


def test_debug_shows_traceback(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"nope")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "microrestore",
            "--debug",
            "denoise",
            str(tmp_path / "bad.tif"),
            "-o",
            str(tmp_path / "o.tif"),
            "--method",
            "nl-means",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_usage_error_exit_code(cli):
    result = cli("denoise")
    assert result.exit_code == 2


def test_refuses_to_overwrite_input(cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _noisy())
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "in.tif", "--method", "nl-means")
    assert result.exit_code == 2
    assert tifffile.imread(tmp_path / "in.tif").dtype == np.uint16
