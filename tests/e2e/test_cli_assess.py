"""``assess``, ``compare`` and ``--uncertainty``: JSON keys, files written, ranking, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from scipy.ndimage import gaussian_filter

from microrestore.simulation import CameraModel, apply_camera, nuclei


def _noisy(size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return apply_camera(gaussian_filter(nuclei((size, size), rng), 1.0), CameraModel(photons=20.0), rng)


@pytest.fixture
def noisy_tif(tmp_path):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, _noisy())
    return path


def test_assess_json_reports_error_camera_and_unsupported(cli, noisy_tif):
    result = cli("assess", noisy_tif, "--method", "nl-means", "--json", "--repeats", "1")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"estimated_rmse", "rmse_interval", "psnr", "psnr_interval", "camera", "unsupported"} <= set(report)
    assert 0 < report["estimated_rmse"] < report["noise_rmse"]  # nl-means beats the raw input
    assert {"gain", "offset", "read_noise", "photons_bright", "fit"} <= set(report["camera"])
    assert 0.0 <= report["unsupported"]["unsupported_added"] <= 1.0
    table = cli("assess", noisy_tif, "--method", "nl-means", "--repeats", "1")
    assert table.exit_code == 0 and "estimated RMSE" in table.stdout and "photons" in table.stdout


def test_compare_writes_outputs_table_figure_and_ranks(cli, noisy_tif, tmp_path):
    out = tmp_path / "cmp"
    result = cli("compare", noisy_tif, "--methods", "nl-means,care", "-o", out, "--repeats", "1")
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "compare.json").read_text())
    ranked = [row["method"] for row in report["methods"]]
    assert sorted(ranked) == ["care", "nl-means"] and report["recommended"] == ranked[0]
    rmses = [row["estimated_rmse"] for row in report["methods"]]
    assert rmses == sorted(rmses) and [row["rank"] for row in report["methods"]] == [1, 2]
    assert 0.0 <= report["confidence"] <= 1.0
    for row in report["methods"]:
        assert tifffile.imread(row["output"]).shape == (64, 64)
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "recommended:" in result.stdout
    again = cli("compare", noisy_tif, "--methods", "nl-means", "-o", out)
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_compare_budget_skips_slow_methods_and_bad_input_is_one_line(cli, noisy_tif, tmp_path):
    result = cli("compare", noisy_tif, "--methods", "nl-means", "-o", tmp_path / "c", "--budget", "1e-9")
    assert result.exit_code == 2 and "no method could be assessed" in result.stderr
    assert not (tmp_path / "c").exists()
    for args in (
        ("compare", tmp_path / "missing.tif", "-o", tmp_path / "d"),
        ("compare", noisy_tif, "--methods", "no-such", "-o", tmp_path / "d"),
        ("assess", noisy_tif, "--method", "nl-means", "--repeats", "0"),
    ):
        bad = cli(*args)
        assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (tmp_path / "d").exists()


def test_uncertainty_writes_sigma_in_input_shape(cli, noisy_tif, tmp_path):
    out = tmp_path / "den.tif"
    result = cli("denoise", noisy_tif, "-o", out, "--method", "nl-means", "--uncertainty", "-q")
    assert result.exit_code == 0, result.stderr
    sigma = tifffile.imread(tmp_path / "den_sigma.tif")
    assert sigma.shape == (64, 64) and sigma.dtype == np.float32 and np.all(sigma > 0)
    restored = tifffile.imread(out)
    assert np.sqrt(np.mean(sigma.astype(float) ** 2)) < np.std(_noisy().astype(float) - restored)
    again = cli("denoise", noisy_tif, "-o", out, "--method", "nl-means", "--uncertainty", "-q")
    assert again.exit_code == 2 and "--overwrite" in again.stderr


def test_uncertainty_of_a_flat_noise_free_image_is_refused_without_output(cli, tmp_path):
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.full((64, 64), 7, np.uint16))
    result = cli("denoise", flat, "-o", tmp_path / "o.tif", "--method", "nl-means", "--uncertainty", "-q")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "o_sigma.tif").exists()


def test_api_restore_with_uncertainty_returns_sigma():
    from microrestore import api

    restored, sigma = api.restore(_noisy(), "nl-means", uncertainty=True)
    assert restored.shape == sigma.shape == (64, 64) and sigma.dtype == np.float32


def test_resuming_a_batch_makes_a_missing_sigma_map(noisy_tif, tmp_path):
    # overwrite=False (--skip-existing) skips an input only when its output and, with uncertainty, its map exist
    from microrestore import api

    out = tmp_path / "out.tif"
    api.restore_files([noisy_tif], out, method="nl-means", uncertainty=True)
    sigma = tmp_path / "out_sigma.tif"
    first = tifffile.imread(sigma)
    sigma.unlink()
    redone = api.restore_files([noisy_tif], out, method="nl-means", uncertainty=True, overwrite=False)
    assert len(redone) == 1 and sigma.exists() and tifffile.imread(sigma).shape == first.shape
    assert api.restore_files([noisy_tif], out, method="nl-means", uncertainty=True, overwrite=False) == []
