"""simulate, evaluate, methods, plugins and zoo from the command line."""

from __future__ import annotations

import json

import numpy as np
import tifffile


def test_simulate_then_evaluate_with_figure(cli, tmp_path):
    result = cli(
        "simulate",
        "denoise",
        "-o",
        tmp_path / "sim",
        "--n",
        "2",
        "--seed",
        "5",
        "--photons",
        "15",
        "--set",
        "shape=[64,64]",
    )
    assert result.exit_code == 0, result.output
    noisy, clean = tmp_path / "sim" / "noisy" / "field_000.tif", tmp_path / "sim" / "clean" / "field_000.tif"
    assert tifffile.imread(noisy).dtype == np.uint16 and tifffile.imread(clean).dtype == np.float32
    result = cli("denoise", noisy, "-o", tmp_path / "den.tif", "--method", "nl-means", "-q")
    assert result.exit_code == 0, result.output
    result = cli("evaluate", tmp_path / "den.tif", clean, "--input", noisy, "--json", "--figure", tmp_path / "fig.png")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) == {"prediction", "input"}
    for key in (
        "psnr",
        "ssim",
        "pcc",
        "nrmse",
        "psnr_affine",
        "ssim_affine",
        "pcc_affine",
        "nrmse_affine",
        "saturated",
    ):
        assert key in scores["prediction"]
    assert scores["prediction"]["psnr"] > scores["input"]["psnr"] + 3
    assert scores["prediction"]["saturated"] == 0
    from matplotlib.image import imread

    assert imread(tmp_path / "fig.png").shape[0] > 100


def test_evaluate_table_and_shape_mismatch(cli, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((16, 16), np.float32))
    tifffile.imwrite(tmp_path / "b.tif", np.ones((16, 17), np.float32))
    result = cli("evaluate", tmp_path / "a.tif", tmp_path / "b.tif")
    assert result.exit_code == 2 and "a.tif" in result.stderr and "(16, 17)" in result.stderr
    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "c.tif", rng.random((16, 16)).astype(np.float32))
    result = cli("evaluate", tmp_path / "c.tif", tmp_path / "c.tif")
    assert result.exit_code == 0 and "psnr" in result.stdout


def test_simulate_unknown_kind_and_param(cli, tmp_path):
    result = cli("simulate", "holography", "-o", tmp_path / "x")
    assert result.exit_code == 2 and "denoise" in result.stderr
    result = cli("simulate", "denoise", "-o", tmp_path / "y", "--set", "photonz=3")
    assert result.exit_code == 2 and "photonz" in result.stderr


def test_methods_json_lists_builtins(cli):
    rows = {r["name"]: r for r in json.loads(cli("methods", "--json").stdout)}
    assert rows["care"]["task"] == "denoise" and rows["care"]["trainable"]
    assert rows["care"]["default_model"] == "care-generalist-2d"
    assert rows["nl-means"]["plugin"] == "nl-means" and not rows["nl-means"]["trainable"]
    assert rows["richardson-lucy"]["task"] == "deblur"


def test_plugins_table(cli):
    result = cli("plugins")
    assert result.exit_code == 0
    for name in ("care", "nl-means", "richardson-lucy"):
        assert name in result.stdout


def test_zoo_list_and_verify(cli):
    rows = json.loads(cli("zoo", "list", "--json").stdout)
    assert any(r["id"] == "care-demo-2d" and r["bundled"] for r in rows)
    result = cli("zoo", "verify")
    assert result.exit_code == 0, result.output


def test_tampered_bundled_model_is_refused(tmp_path, monkeypatch):
    import shutil

    import pytest

    from microrestore import zoo
    from microrestore.errors import InputError
    from microrestore.zoo import catalog

    monkeypatch.setenv("MICRORESTORE_CACHE", str(tmp_path / "cache"))
    bundled = tmp_path / "bundled"
    shutil.copytree(zoo.BUNDLED_DIR, bundled)
    monkeypatch.setattr(catalog, "BUNDLED_DIR", bundled)
    assert zoo.resolve_model("care-demo-2d").is_dir()  # the model is extracted into the cache once...
    package = bundled / "care-demo-2d.zip"
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0xFF
    package.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):  # ...and the zip is still verified on every use
        zoo.resolve_model("care-demo-2d")
