"""Command-line conventions: flags read as flags, status on stderr and results on stdout, no silent overwrite."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import tifffile


def _image(path: Path, seed: int = 0, shape=(48, 48)) -> Path:
    rng = np.random.default_rng(seed)
    tifffile.imwrite(path, (rng.poisson(300.0, shape) + 100).astype(np.uint16))
    return path


def _command_paths():
    import typer

    from microrestore.cli.app import build_app

    def walk(command, path):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    return list(walk(typer.main.get_command(build_app()), []))


def test_no_flag_is_shown_as_taking_a_bool(cli) -> None:
    paths = _command_paths()
    assert ["methods"] in paths and ["sim", "reconstruct"] in paths
    for path in paths:
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, f"microrestore {' '.join(path)} --help shows <bool>"
        assert "-h" in result.output  # the short help option is still listed
    flagged = cli("methods", "--help").output
    assert "--json" in flagged


def test_denoise_refuses_to_replace_an_output(cli, tmp_path: Path) -> None:
    src = _image(tmp_path / "in.tif")
    out = tmp_path / "out.tif"
    args = ("denoise", src, "-o", out, "--method", "nl-means", "-q")
    assert cli(*args).exit_code == 0
    before = out.read_bytes()
    out.write_bytes(b"mine")  # a file the user cares about
    refused = cli(*args)
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and str(out) in refused.stderr
    assert "--overwrite" in refused.stderr and "--skip-existing" in refused.stderr
    assert out.read_bytes() == b"mine"
    kept = cli(*args, "--skip-existing")
    assert kept.exit_code == 0 and out.read_bytes() == b"mine"
    both = cli(*args, "--skip-existing", "--overwrite")
    assert both.exit_code == 2 and "contradict" in both.stderr
    replaced = cli(*args, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert out.read_bytes() == before


def test_folder_outputs_refused_by_name(cli, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(3):
        _image(folder / f"f{i}.tif", seed=i)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f1.tif").write_bytes(b"old")
    result = cli("denoise", folder, "-o", tmp_path / "out", "--method", "nl-means", "-q")
    assert result.exit_code == 2 and "f1.tif" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f1.tif"]  # nothing written


def test_other_writers_refuse_existing_outputs(cli, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_bytes(b"x")
    raw = _image(tmp_path / "raw.tif")
    for args in (
        ("sim", "reconstruct", raw, "-o", taken),
        ("sim", "estimate", raw, "-o", taken),
        ("export", "care-demo-2d", "-o", taken),
        ("evaluate", raw, raw, "--figure", taken),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "--overwrite" in result.stderr and str(taken) in result.stderr, args
        assert taken.read_bytes() == b"x"


def test_evaluate_overwrite_replaces_the_figure(cli, tmp_path: Path) -> None:
    a = _image(tmp_path / "a.tif")
    figure = tmp_path / "fig.png"
    figure.write_bytes(b"x")
    result = cli("evaluate", a, a, "--figure", figure, "--overwrite")
    assert result.exit_code == 0, result.output
    assert figure.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture
def group_umask():
    """Run with umask 002 (a shared group folder), then restore the caller's."""
    old = os.umask(0o002)
    yield 0o664
    os.umask(old)


@pytest.mark.usefixtures("one_torch_thread")
def test_training_progress_on_stderr_and_files_with_the_umask(cli, tmp_path: Path, group_umask: int) -> None:
    for name in ("low", "high"):
        (tmp_path / name).mkdir()
        for i in range(2):
            _image(tmp_path / name / f"f{i}.tif", seed=i)
    tiny = ["--set", "patch_size=16", "--set", "batch_size=2", "--set", "depth=1", "--set", "base_filters=4"]
    result = cli("train", "care", "-s", tmp_path / "low", "-t", tmp_path / "high", "-o", tmp_path / "m",
                 "--steps", "2", "--device", "cpu", *tiny)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "", f"status or progress on stdout: {result.stdout!r}"
    assert "step" in result.stderr and "model written" in result.stderr
    files = [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
    assert {"weights.safetensors", "checkpoint-last.safetensors", "config.yaml"} <= {p.name for p in files}
    for path in files:  # safetensors alone would write 0600
        assert stat.S_IMODE(path.stat().st_mode) == group_umask, path
    out = tmp_path / "denoised.tif"
    assert cli("denoise", tmp_path / "low" / "f0.tif", "-o", out, "--method", "nl-means", "-q").exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == group_umask


def test_results_on_stdout_status_on_stderr(cli, tmp_path: Path) -> None:
    a = _image(tmp_path / "a.tif")
    result = cli("evaluate", a, a, "--json")
    assert json.loads(result.stdout)["prediction"]["pcc"] == pytest.approx(1.0)
    result = cli("denoise", a, "-o", tmp_path / "b.tif", "--method", "nl-means")
    assert result.exit_code == 0 and result.stdout == "" and "wrote" in result.stderr


def test_export_of_your_own_model_needs_its_authors(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import microrestore.bioimage
    from microrestore.cli import export

    mine = tmp_path / "my-model"
    mine.mkdir()
    result = cli("export", mine, "-o", tmp_path / "p.zip")
    assert result.exit_code == 2 and "--author" in result.stderr and str(mine) in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "p.zip").exists()

    calls: list[dict] = []

    def fake_export(model, output, **kw):
        calls.append(kw)
        Path(output).write_bytes(b"zip")
        return Path(output)

    monkeypatch.setattr(microrestore.bioimage, "export_model", fake_export)
    monkeypatch.setattr(export, "_interactive", lambda: True)  # on a terminal: asked for
    monkeypatch.setattr("sys.stdin", io.StringIO("Ada Lovelace, Alan Turing\n"))
    assert cli("export", mine, "-o", tmp_path / "p.zip").exit_code == 0
    assert calls[-1]["authors"] == ["Ada Lovelace", "Alan Turing"]
    monkeypatch.setattr(export, "_interactive", lambda: False)
    assert cli("export", mine, "-o", tmp_path / "q.zip", "--author", "Grace Hopper").exit_code == 0
    assert calls[-1]["authors"] == ["Grace Hopper"]
    assert cli("export", "care-demo-2d", "-o", tmp_path / "z.zip").exit_code == 0  # the zoo's authors
    assert calls[-1]["authors"] is None


def test_under_torchrun_a_process_checks_only_its_own_files(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    for i in range(2):
        _image(folder / f"f{i}.tif", seed=i)
    out = tmp_path / "out"
    out.mkdir()
    (out / "f0.tif").write_bytes(b"rank 0 wrote this already")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    result = cli("denoise", folder, "-o", out, "--method", "nl-means", "-q", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (out / "f1.tif").is_file() and (out / "f0.tif").read_bytes() == b"rank 0 wrote this already"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert cli("denoise", folder, "-o", out, "--method", "nl-means", "-q", "--device", "cpu").exit_code == 2


def test_simulate_refuses_a_filled_folder(cli, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ("simulate", "denoise", "-o", out, "--n", "1", "--set", "shape=[32,32]")
    assert cli(*args).exit_code == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    refused = cli(*args, "--seed", "5")
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr and str(out) in refused.stderr
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == files
    assert cli(*args, "--seed", "5", "--overwrite").exit_code == 0
    typo = cli("simulate", "denoize", "-o", tmp_path / "x")
    assert typo.exit_code == 2 and "did you mean 'denoise'?" in typo.stderr
