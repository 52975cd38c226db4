"""Every table stays whole: plain and complete when piped, readable at 80 columns, and ``--json`` beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch):
    """Make stdout count as an 80-column terminal (rich reads TTY_COMPATIBLE and COLUMNS)."""

    def set_width(columns: int = 80) -> None:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("NO_COLOR", "1")
        monkeypatch.setenv("COLUMNS", str(columns))

    return set_width


def _names():
    from microrestore.plugins import get_host, get_registry
    from microrestore.zoo import entries

    return sorted(get_registry().methods), sorted(get_host().plugins), sorted(entries())


def _whole(text: str, names: list[str]) -> None:
    """Each name is on the page as a whole word; nothing was cut with an ellipsis."""
    assert "…" not in text and "..." not in text
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{name} missing or cut:\n{text}"


def _fits(text: str, width: int = 80) -> None:
    for line in ANSI.sub("", text).splitlines():
        assert len(line) <= width, f"line wider than {width}: {line!r}"


def test_methods_piped_is_plain_and_complete(cli) -> None:
    result = cli("methods")
    assert result.exit_code == 0, result.output
    methods, _, _ = _names()
    _whole(result.stdout, methods)
    assert not re.search(r"[┏┃│━]", result.stdout), "box drawing when piped"
    lines = result.stdout.splitlines()
    assert lines[1].split()[:3] == ["method", "task", "plugin"]
    # every row has its task and its summary, whole
    from microrestore.plugins import get_registry

    for method in get_registry().methods.values():
        row = next(line for line in lines if line.startswith(method.name + " "))
        assert f" {method.task} " in row and row.endswith(method.summary)


@pytest.mark.parametrize("columns", [80, 60, 200])
def test_methods_on_a_terminal_fit_its_width(cli, terminal, columns: int) -> None:
    terminal(columns)
    result = cli("methods")
    assert result.exit_code == 0, result.output
    methods, _, _ = _names()
    _whole(result.stdout, methods)
    _fits(result.stdout, columns)
    # the summaries are all there, wrapped but not cut
    from microrestore.plugins import get_registry

    flat = " ".join(re.sub(r"[│┃]", " ", ANSI.sub("", result.stdout)).split())
    for method in get_registry().methods.values():
        for word in method.summary.split():
            assert word in flat


def test_plugins_and_zoo_piped_and_at_80_columns(cli, terminal) -> None:
    _, plugins, models = _names()
    piped = cli("plugins")
    assert piped.exit_code == 0
    _whole(piped.stdout, plugins)
    assert "register_readers, register_writers" in piped.stdout  # a long cell on one line, not wrapped
    zoo = cli("zoo", "list")
    assert zoo.exit_code == 0
    _whole(zoo.stdout, models)
    from microrestore.zoo import entries

    for entry in entries().values():  # the descriptions too, whole, when piped
        assert entry.description in zoo.stdout

    terminal(80)
    for args, names in ((("plugins",), plugins), (("zoo", "list"), models)):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        _whole(result.stdout, names)
        _fits(result.stdout)
        assert "see --json" in result.stdout  # says which columns it left out


def test_every_table_command_has_json(cli) -> None:
    methods, plugins, models = _names()
    assert {row["name"] for row in json.loads(cli("methods", "--json").stdout)} == set(methods)
    assert {row["name"] for row in json.loads(cli("plugins", "--json").stdout)} == set(plugins)
    assert {row["id"] for row in json.loads(cli("zoo", "list", "--json").stdout)} == set(models)


def test_evaluate_table_piped_and_json(cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(100, 1000, (32, 32)).astype(np.float32)
    tifffile.imwrite(tmp_path / "gt.tif", gt)
    tifffile.imwrite(tmp_path / "pred.tif", gt + rng.normal(0, 10, gt.shape).astype(np.float32))
    result = cli("evaluate", tmp_path / "pred.tif", tmp_path / "gt.tif")
    assert result.exit_code == 0, result.output
    assert not re.search(r"[┏┃│━]", result.stdout)
    assert re.search(r"^psnr\s+\d", result.stdout, re.M)
    scores = json.loads(cli("evaluate", tmp_path / "pred.tif", tmp_path / "gt.tif", "--json").stdout)
    assert scores["prediction"]["psnr"] > 20


def _params():
    from microrestore.structured_illumination.params import OrientationParams, SIMParams

    orientations = [OrientationParams.from_angle(a, 0.35, [0.1, 2.2, 4.3], 0.8) for a in (15.0, 75.0, 135.0)]
    orientations[0].fallback = ["k", "modulation"]
    return SIMParams(orientations, pixel_size_nm=62.6, source="estimated")


@pytest.mark.parametrize("columns", [None, 80, 50])
def test_sim_parameter_table(capsys: pytest.CaptureFixture[str], terminal, columns: int | None) -> None:
    from microrestore_wiener_sim.cli import print_params

    if columns is not None:
        terminal(columns)
    print_params(_params(), {"na": 1.3, "wavelength_nm": 525.0, "na_exc": 1.35, "wavelength_exc_nm": 488.0})
    out = capsys.readouterr().out
    assert "…" not in out and "nominal |k|" in out and "fallback: k, modulation" in out
    assert out.count("5.5911") == 3  # |k| = 0.35 / 62.6 nm of every orientation, whole
    for angle in ("15.000", "75.000", "135.000"):
        assert angle in out
    if columns is None:  # piped: every column, period and phase included
        assert "period nm" in out and "phase rad" in out and "+0.100" in out
    else:
        _fits(out, columns)


def test_sim_estimate_json(cli, tmp_path: Path) -> None:
    from microrestore.simulation import simulate

    simulate(
        "sim", tmp_path, n=1, seed=3, shape=(64, 64), photons=300.0, na=1.3, wavelength_nm=525.0,
        na_exc=1.35, wavelength_exc_nm=488.0, gt_mode="sim",
    )  # fmt: skip
    optics = ["--na", "1.3", "--wavelength", "525", "--na-exc", "1.35", "--wavelength-exc", "488"]
    result = cli("sim", "estimate", tmp_path / "raw" / "field_000.tif", *optics, "--json")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert isinstance(found, list) and len(found[0]["orientations"]) == 3
    assert found[0]["format"] == "microrestore-sim-params"
