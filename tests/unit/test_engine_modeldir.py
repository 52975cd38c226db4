from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from microrestore.engine.modeldir import ModelBundle, load_model, save_model
from microrestore.errors import InputError


def build(spec: dict[str, Any]) -> nn.Module:
    return nn.Conv2d(spec["in"], spec["out"], spec["k"], padding=spec["k"] // 2)


def _save(folder: Path, method: str = "care") -> dict[str, nn.Module]:
    torch.manual_seed(0)
    specs = {"G": {"in": 1, "out": 2, "k": 3}, "D": {"in": 2, "out": 1, "k": 1}}
    nets = {name: build(spec) for name, spec in specs.items()}
    save_model(
        folder,
        method=method,
        networks=nets,
        network_specs=specs,
        normalization={"source": {"kind": "percentile", "low": 1.0, "high": 99.8}},
        config={"patch": (64, 64), "lr": 2e-4},
        axes="YX",
        provenance={"seed": 1, "data": [Path("a.tif")], "steps": 10},
        metrics={"psnr": torch.tensor(31.5)},
    )
    return nets


def test_round_trip(tmp_path: Path) -> None:
    nets = _save(tmp_path / "model")
    for where in (tmp_path / "model", tmp_path / "model" / "config.yaml", tmp_path / "model" / "weights.safetensors"):
        bundle = load_model(where, expected_method="care")
        assert isinstance(bundle, ModelBundle)
        assert bundle.method == "care" and bundle.axes == "YX" and bundle.path == tmp_path / "model"
        assert bundle.config == {"patch": [64, 64], "lr": 2e-4}
        assert bundle.metrics == {"psnr": 31.5}
        assert bundle.provenance["seed"] == 1 and bundle.provenance["data"] == ["a.tif"]
        assert {"microrestore", "torch", "date"} <= set(bundle.provenance)
        assert bundle.normalization["source"]["kind"] == "percentile"
    g = bundle.build("G", build)
    assert not g.training
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(g(x), nets["G"](x))
    for key, value in nets["D"].state_dict().items():
        assert torch.equal(bundle.state_dicts["D"][key], value)
    document = yaml.safe_load((tmp_path / "model" / "config.yaml").read_text())
    assert document["format"] == "microrestore-model" and len(document["weights"]["sha256"]) == 64


def test_wrong_method(tmp_path: Path) -> None:
    _save(tmp_path / "m")
    with pytest.raises(InputError) as info:
        load_model(tmp_path / "m", expected_method="c2gan")
    assert str(info.value) == f"model folder {tmp_path / 'm'} was trained with method 'care', not 'c2gan'"


def test_missing_and_broken(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"config\.yaml is missing"):
        load_model(tmp_path / "empty")
    _save(tmp_path / "m")
    config = tmp_path / "m" / "config.yaml"
    good = config.read_text()
    config.write_text("method: [unclosed\n  - x: :")
    with pytest.raises(InputError, match="invalid YAML") as info:
        load_model(tmp_path / "m")
    assert "\n" not in str(info.value)
    config.write_text("just a string\n")
    with pytest.raises(InputError, match="not a microrestore model"):
        load_model(tmp_path / "m")
    config.write_text(good)
    (tmp_path / "m" / "weights.safetensors").unlink()
    with pytest.raises(InputError, match="weights are missing"):
        load_model(tmp_path / "m")


def test_tampered_weights(tmp_path: Path) -> None:
    _save(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt or were modified") as info:
        load_model(tmp_path / "m")
    assert "weights.safetensors" in str(info.value) and "\n" not in str(info.value)


def test_build_errors(tmp_path: Path) -> None:
    _save(tmp_path / "m")
    bundle = load_model(tmp_path / "m")
    with pytest.raises(InputError, match="no network 'F'"):
        bundle.build("F", build)
    with pytest.raises(InputError, match="do not fit"):
        bundle.build("G", lambda spec: nn.Conv2d(1, 3, 3))


def test_invalid_network_name(tmp_path: Path) -> None:
    from microrestore.errors import MicrorestoreError

    with pytest.raises(MicrorestoreError):
        save_model(
            tmp_path,
            method="x",
            networks={"a.b": nn.Linear(1, 1)},
            network_specs={"a.b": {}},
            normalization={},
            config={},
            axes="YX",
        )
