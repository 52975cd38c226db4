"""Batch prediction split across processes by rank, resumable, never leaving partial outputs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore import api
from microrestore.plugins import PredictOptions


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        tifffile.imwrite(src / f"img{i}.tif", (rng.poisson(30, (40, 48)) + 100).astype(np.uint16))
    return src


NOISE = {"gain": 1.0, "read_noise": 1.0, "offset": 100.0}  # tiny images: too small to estimate it


def _restore(folder: Path, out: Path, **kw: object) -> list[api.RestoreResult]:
    options = PredictOptions(params=dict(NOISE))
    return api.restore_files([folder], out, method="nl-means", task="denoise", options=options, **kw)  # type: ignore[arg-type]


def test_files_are_split_by_rank_and_together_equal_one_process(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    single = _restore(folder, tmp_path / "single")
    assert len(single) == 5
    monkeypatch.setenv("WORLD_SIZE", "2")
    done = {}
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        done[rank] = [r.input.name for r in _restore(folder, tmp_path / "ddp")]
    assert done == {0: ["img0.tif", "img2.tif", "img4.tif"], 1: ["img1.tif", "img3.tif"]}
    for i in range(5):
        a = tifffile.imread(tmp_path / "single" / f"img{i}.tif")
        b = tifffile.imread(tmp_path / "ddp" / f"img{i}.tif")
        np.testing.assert_array_equal(a, b)


def test_skip_existing_resumes_only_the_missing_outputs(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _restore(folder, out)
    (out / "img3.tif").unlink()
    (out / ".img1.tif.tmp-0badc0de").write_bytes(b"partial")  # what a killed writer leaves: a hidden temp name
    redone = _restore(folder, out, overwrite=False)
    assert [r.input.name for r in redone] == ["img3.tif"]
    assert sorted(p.name for p in out.glob("*.tif")) == [f"img{i}.tif" for i in range(5)]
    assert _restore(folder, out, overwrite=False) == []


@pytest.mark.slow
def test_cli_nproc_splits_the_files(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "microrestore", "denoise", str(folder), "-o", str(tmp_path / "out")]
    cmd += ["--method", "nl-means", "--nproc", "2", "--skip-existing", "-q"]
    cmd += [f"--set={key}={value}" for key, value in NOISE.items()]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("wrote ") == 5  # each process reports its own files
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"img{i}.tif" for i in range(5)]
