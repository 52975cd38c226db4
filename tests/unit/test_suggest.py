"""'Did you mean ...?' for misspelled method names and ``--set`` keys."""

from __future__ import annotations

import pytest

from microrestore.errors import InputError
from microrestore.suggest import close_matches, did_you_mean


def test_close_matches() -> None:
    methods = ["care", "n2v", "nl-means", "rdl-denoise", "richardson-lucy", "wiener-sim"]
    assert close_matches("nlmeans", methods) == ["nl-means"]
    assert close_matches("NL_Means", methods) == ["nl-means"]
    assert close_matches("richardson", methods) == ["richardson-lucy"]
    assert close_matches("unet", methods) == []
    keys = ["na", "wavelength_nm", "wavelength_exc_nm", "pixel_size_nm", "wiener"]
    assert close_matches("wavelength", keys)[:2] == ["wavelength_nm", "wavelength_exc_nm"]
    assert close_matches("pixelsize", keys) == ["pixel_size_nm"]
    assert did_you_mean("weiner", keys) == " (did you mean 'wiener'?)"
    assert did_you_mean("zzz", keys) == ""


def test_unknown_method_suggests_the_close_name() -> None:
    from microrestore.plugins import get_registry

    with pytest.raises(InputError, match=r"unknown method 'nlmeans' \(did you mean 'nl-means'\?\); known methods"):
        get_registry().method("nlmeans")


def test_unknown_set_key_suggests_the_field(cli, tmp_path) -> None:
    import numpy as np
    import tifffile

    tifffile.imwrite(tmp_path / "a.tif", np.ones((32, 32), np.uint16))
    result = cli(
        "denoise", tmp_path / "a.tif", "-o", tmp_path / "b.tif", "--method", "nl-means", "--set", "patchsize=5"
    )
    assert result.exit_code == 2 and "did you mean 'patch_size'?" in result.stderr
    result = cli("denoise", tmp_path / "a.tif", "-o", tmp_path / "b.tif", "--method", "nlmeans")
    assert result.exit_code == 2 and "did you mean 'nl-means'?" in result.stderr


def test_sim_set_key_and_method_suggestions(cli, tmp_path) -> None:
    import numpy as np
    import tifffile

    raw = tmp_path / "raw.tif"
    tifffile.imwrite(raw, np.ones((9, 32, 32), np.uint16), imagej=True, metadata={"axes": "TYX"})
    result = cli("sim", "estimate", raw, "--na", "1.3", "--set", "wavelength=525")
    assert result.exit_code == 2 and "did you mean 'wavelength_nm'" in result.stderr
    result = cli("sim", "reconstruct", raw, "-o", tmp_path / "sr.tif", "--method", "weiner")
    assert result.exit_code == 2 and "did you mean 'wiener'?" in result.stderr


def test_nested_configuration_keys() -> None:
    from pydantic import BaseModel, ConfigDict

    from microrestore.configs import validate

    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        learning_rate: float = 1e-3

    class Outer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        optimizer: Inner = Inner()

    with pytest.raises(InputError, match=r"optimizer.learning_rat: unknown option \(did you mean 'learning_rate'\?\)"):
        validate(Outer, {"optimizer": {"learning_rat": 1}}, "test")
