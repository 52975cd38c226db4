"""The example third-party plugin in docs/examples: discovered, listed, runnable, and every hook exercised."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from tests.conftest import EXAMPLE_PLUGIN


@pytest.fixture
def example(install_plugin):
    install_plugin("microrestore-example", "0.1.0", {"example": "microrestore_example"}, path=EXAMPLE_PLUGIN / "src")


def test_example_plugin_is_listed(example, cli):
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["example"]["version"] == "0.1.0"
    assert rows["example"]["hooks"] == ["register_commands", "register_methods", "register_readers", "register_writers"]


def test_hook_register_methods(example, cli, tmp_path):
    methods = {row["name"]: row for row in json.loads(cli("methods", "--json").stdout)}
    assert methods["median"]["plugin"] == "example" and methods["median"]["task"] == "denoise"
    noisy = np.full((40, 40), 100, np.uint16)
    noisy[5, 5] = 60000
    tifffile.imwrite(tmp_path / "in.tif", noisy)
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "out.tif", "--method", "median", "--set", "size=3")
    assert result.exit_code == 0, result.output
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.dtype == np.uint16 and out[5, 5] == 100


def test_hook_register_commands(example, cli):
    result = cli("example-hello", "--name", "tester")
    assert result.exit_code == 0
    assert "hello tester" in result.stdout


def test_hook_register_readers(example, tmp_path):
    from microrestore.io import read_image

    np.save(tmp_path / "a.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    image = read_image(tmp_path / "a.npy")
    assert image.axes == "YX" and image.data.shape == (3, 4)


def test_hook_register_writers(example, tmp_path):
    from microrestore.io import write_image

    write_image(tmp_path / "b.npy", np.ones((3, 4), np.float32), "YX")
    assert np.load(tmp_path / "b.npy").sum() == 12


def test_bad_method_option_is_one_line(example, cli, tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", np.zeros((8, 8), np.uint16))
    result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "median", "--set", "sise=3")
    assert result.exit_code == 2
    assert "sise: unknown option" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.tif").exists()


def test_broken_plugin_keeps_cli_alive(install_plugin, cli):
    install_plugin("broken-plugin", "2.0", {"broken": "mr_broken"}, {"mr_broken": "import not_a_module_xyz\n"})
    result = cli("methods")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
    assert len(warnings) == 1 and "broken 2.0" in warnings[0]
    assert "care" in result.stdout
    assert cli("--help").exit_code == 0


def test_strict_mode_fails_the_cli(install_plugin, cli, monkeypatch):
    install_plugin("broken-plugin", "2.0", {"broken": "mr_broken"}, {"mr_broken": "import not_a_module_xyz\n"})
    monkeypatch.setenv("MICRORESTORE_STRICT_PLUGINS", "1")
    result = cli("methods")
    assert result.exit_code == 1
    assert "broken 2.0" in result.stderr
