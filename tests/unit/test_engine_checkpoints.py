from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from microrestore.engine import checkpoints as ckpt
from microrestore.engine.checkpoints import has_checkpoint, load_checkpoint, read_checkpoint_record, save_checkpoint
from microrestore.errors import InputError


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3), nn.Conv2d(4, 1, 3, padding=1)
    )


def _optimizers(net: nn.Module) -> dict[str, torch.optim.Optimizer]:
    first, second = list(net.parameters())[:2], list(net.parameters())[2:]
    return {"adam": torch.optim.Adam([{"params": first}, {"params": second, "lr": 5e-4}], lr=1e-3, betas=(0.5, 0.999))}


def _train(net: nn.Module, optimizers: dict[str, torch.optim.Optimizer], steps: int, offset: int = 0) -> None:
    for i in range(steps):
        g = torch.Generator().manual_seed(100 + offset + i)
        x = torch.randn(2, 1, 8, 8, generator=g)
        loss = ((net(x) - x.flip(-1)) ** 2).mean()
        for opt in optimizers.values():
            opt.zero_grad()
        loss.backward()
        for opt in optimizers.values():
            opt.step()


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        assert torch.equal(va, vb), ka


def test_continue_from_checkpoint_equals_continuing_in_memory(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _net()
    opts = _optimizers(net)
    _train(net, opts, 5)
    save_checkpoint(tmp_path, 5, networks={"net": net}, optimizers=opts, extra_json={"note": "x"})
    _train(net, opts, 3, offset=5)  # in memory; uses dropout, hence the torch RNG

    torch.manual_seed(123)  # a different init and RNG state, both overwritten by the checkpoint
    net2 = _net()
    opts2 = _optimizers(net2)
    state = load_checkpoint(tmp_path, {"net": net2}, opts2)
    assert state.step == 5 and state.extra_json == {"note": "x"}
    assert opts2["adam"].param_groups[0]["betas"] == (0.5, 0.999)
    assert opts2["adam"].param_groups[1]["lr"] == 5e-4
    _train(net2, opts2, 3, offset=5)
    _assert_same_weights(net, net2)
    s1, s2 = opts["adam"].state_dict()["state"], opts2["adam"].state_dict()["state"]
    for index in s1:
        for key in s1[index]:
            assert torch.equal(torch.as_tensor(s1[index][key]), torch.as_tensor(s2[index][key]))


def test_sgd_momentum_scalar_state_extras_and_scaler(tmp_path: Path) -> None:
    net = nn.Linear(3, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    opt.state[net.weight]["count"] = 7  # non-tensor state, as older optimisers keep
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    pool = {"pool/00000": torch.arange(6.0).view(1, 1, 2, 3)}
    save_checkpoint(tmp_path, 1, networks={"G": net}, optimizers={"G": opt}, scalers={"G": scaler}, extra_tensors=pool)
    net2 = nn.Linear(3, 2)
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.5)
    scaler2 = torch.amp.GradScaler("cpu", init_scale=2.0)
    state = load_checkpoint(tmp_path, {"G": net2}, {"G": opt2}, {"G": scaler2})
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.param_groups[0]["momentum"] == 0.9
    assert opt2.state[net2.weight]["count"] == 7
    assert torch.equal(opt2.state[net2.weight]["momentum_buffer"], opt.state[net.weight]["momentum_buffer"])
    assert scaler2.get_scale() == 1024.0
    assert torch.equal(state.extra_tensors["pool/00000"], pool["pool/00000"])


def test_files_and_record(tmp_path: Path) -> None:
    net = nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    path = save_checkpoint(tmp_path, 3, networks={"G": net}, optimizers={"G": opt})
    assert path == tmp_path / "checkpoint-last.safetensors"
    assert has_checkpoint(tmp_path)
    record = json.loads((tmp_path / "checkpoint-last.json").read_text())
    assert record["step"] == 3 and record["sha256"] == ckpt.sha256_file(path)
    assert read_checkpoint_record(tmp_path)["step"] == 3
    assert not list(tmp_path.glob("*.partial"))


def test_keep_every(tmp_path: Path) -> None:
    net = nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    for step in (2, 4, 6):
        with torch.no_grad():
            net.weight.fill_(step)
        save_checkpoint(tmp_path, step, networks={"G": net}, optimizers={"G": opt}, keep_every=4)
    assert (tmp_path / "checkpoint-00000004.safetensors").is_file()
    assert not (tmp_path / "checkpoint-00000002.safetensors").exists()
    old = nn.Linear(2, 2)
    state = load_checkpoint(tmp_path, {"G": old}, {"G": torch.optim.Adam(old.parameters())}, name="checkpoint-00000004")
    assert state.step == 4 and torch.all(old.weight == 4)
    last = nn.Linear(2, 2)
    assert load_checkpoint(tmp_path, {"G": last}, {"G": torch.optim.Adam(last.parameters())}).step == 6
    assert torch.all(last.weight == 6)


def _saved(tmp_path: Path) -> tuple[nn.Module, torch.optim.Optimizer]:
    net = nn.Linear(4, 4)
    opt = torch.optim.Adam(net.parameters())
    save_checkpoint(tmp_path, 1, networks={"G": net}, optimizers={"G": opt})
    return net, opt


def test_tampered_tensors_rejected(tmp_path: Path) -> None:
    net, opt = _saved(tmp_path)
    path = tmp_path / "checkpoint-last.safetensors"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt or was modified") as info:
        load_checkpoint(tmp_path, {"G": net}, {"G": opt})
    assert "checkpoint-last.safetensors" in str(info.value) and "\n" not in str(info.value)


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    net, opt = _saved(tmp_path)
    path = tmp_path / "checkpoint-last.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"checkpoint-last\.safetensors"):
        load_checkpoint(tmp_path, {"G": net}, {"G": opt})
    path.unlink()
    with pytest.raises(InputError, match="missing"):
        load_checkpoint(tmp_path, {"G": net}, {"G": opt})
    (tmp_path / "checkpoint-last.json").write_text("{not json")
    with pytest.raises(InputError, match=r"checkpoint-last\.json"):
        load_checkpoint(tmp_path, {"G": net}, {"G": opt})
    with pytest.raises(InputError, match="no checkpoint"):
        load_checkpoint(tmp_path / "empty", {"G": net}, {"G": opt})


def test_crash_between_renames_is_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net, opt = _saved(tmp_path)
    with torch.no_grad():
        net.weight.fill_(2.0)
    real_replace = ckpt.os.replace
    calls = []

    def crash_on_second(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the tensors' rename, before the record's
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, networks={"G": net}, optimizers={"G": opt})
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    fresh = nn.Linear(4, 4)
    state = load_checkpoint(tmp_path, {"G": fresh}, {"G": torch.optim.Adam(fresh.parameters())})
    assert state.step == 2 and torch.all(fresh.weight == 2.0)
    assert json.loads((tmp_path / "checkpoint-last.json").read_text())["step"] == 2


def test_half_written_pair_without_record_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net, opt = _saved(tmp_path)
    with torch.no_grad():
        net.weight.fill_(3.0)
    real_replace = ckpt.os.replace
    calls = []

    def crash_on_second(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 2, networks={"G": net}, optimizers={"G": opt})
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    (tmp_path / "checkpoint-last.json.partial").unlink()
    with pytest.raises(InputError, match="corrupt or was modified"):
        load_checkpoint(tmp_path, {"G": net}, {"G": opt})


def test_mismatched_networks(tmp_path: Path) -> None:
    _saved(tmp_path)
    other = nn.Linear(4, 5)
    with pytest.raises(InputError, match="network 'G' does not match"):
        load_checkpoint(tmp_path, {"G": other}, {"G": torch.optim.Adam(other.parameters())})
    d = nn.Linear(4, 4)
    with pytest.raises(InputError, match="holds networks"):
        load_checkpoint(tmp_path, {"D": d}, {"G": torch.optim.Adam(d.parameters())})
