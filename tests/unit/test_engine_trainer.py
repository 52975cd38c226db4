from __future__ import annotations

import csv
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from microrestore.engine.checkpoints import read_checkpoint_record
from microrestore.engine.trainer import (
    StepContext,
    Trainer,
    TrainerConfig,
    TrainingTask,
    constant_then_linear_decay,
)
from microrestore.errors import InputError, MicrorestoreError


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Tiny:
    def __init__(self, lr: float = 1e-2, interrupt_at: int | None = None, nan_at: int | None = None) -> None:
        torch.manual_seed(0)
        self.networks = {"net": nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1))}
        self.lr, self.interrupt_at, self.nan_at = lr, interrupt_at, nan_at

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=self.lr)}

    def lr_factor(self, step: int, total: int) -> float:
        return constant_then_linear_decay(step, total)

    def training_step(self, batch: Any, step: int, ctx: StepContext) -> dict[str, Any]:
        x, y = batch
        with ctx.autocast():
            loss = ((self.networks["net"](x) - y) ** 2).mean()
        ctx.minimize(loss, "net")
        if step == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        if step == self.nan_at:
            return {"loss": torch.tensor(float("nan"))}
        return {"loss": loss.detach(), "const": 2.0}

    def validation_step(self, batch: Any) -> dict[str, Any]:
        x, y = batch
        assert not self.networks["net"].training and not torch.is_grad_enabled()
        return {"mse": ((self.networks["net"](x) - y) ** 2).mean()}


def sample(rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((batch_size, 1, 8, 8)).astype(np.float32)
    return x, 0.5 * np.roll(x, 1, axis=-1)


def _config(**kw: Any) -> TrainerConfig:
    base: dict[str, Any] = {"steps": 20, "batch_size": 2, "seed": 1, "device": "cpu", "checkpoint_every": 10}
    base.update(kw)
    return TrainerConfig(**base)


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_protocol_and_schedule() -> None:
    assert isinstance(Tiny(), TrainingTask)
    assert constant_then_linear_decay(0, 100) == 1.0
    assert constant_then_linear_decay(49, 100) == 1.0
    assert constant_then_linear_decay(50, 100) == 1.0
    assert constant_then_linear_decay(75, 100) == pytest.approx(0.5)
    assert constant_then_linear_decay(99, 100) == pytest.approx(0.02)


def test_fit_writes_metrics_checkpoint_and_returns_final_row(tmp_path: Path) -> None:
    validation = sample(np.random.default_rng(99), 4)
    trainer = Trainer(
        Tiny(), sample, tmp_path, _config(log_every=5, val_every=10), progress=False, validation_batch=validation
    )
    final = trainer.fit()
    rows = _rows(tmp_path)
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert set(rows[0]) == {"step", "loss", "const", "lr", "val_mse"}
    assert rows[0]["val_mse"] == "" and rows[1]["val_mse"] != ""
    assert float(rows[0]["const"]) == 2.0
    assert float(rows[1]["lr"]) == pytest.approx(1e-2) and float(rows[3]["lr"]) == pytest.approx(1e-3)
    assert final["step"] == 20 and final["val_mse"] == pytest.approx(float(rows[-1]["val_mse"]))
    assert read_checkpoint_record(tmp_path / "checkpoints")["step"] == 20
    assert trainer.step == 20


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    Trainer(Tiny(), sample, tmp_path, _config(steps=4), progress=False).fit()
    with pytest.raises(InputError, match="--resume"):
        Trainer(Tiny(), sample, tmp_path, _config(steps=4), progress=False).fit()
    result = Trainer(Tiny(), sample, tmp_path, _config(steps=4), progress=False).fit(resume=True)
    assert result["step"] == 4  # nothing left to do
    with pytest.raises(InputError, match="beyond the requested"):
        Trainer(Tiny(), sample, tmp_path, _config(steps=2), progress=False).fit(resume=True)
    with pytest.raises(InputError, match="seed"):
        Trainer(Tiny(), sample, tmp_path, _config(steps=8, seed=2), progress=False).fit(resume=True)


def test_resume_without_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no checkpoint"):
        Trainer(Tiny(), sample, tmp_path / "new", _config(), progress=False).fit(resume=True)


def test_prefetch_does_not_change_results(tmp_path: Path) -> None:
    a, b = Tiny(), Tiny()
    Trainer(a, sample, tmp_path / "a", _config(prefetch=True), progress=False).fit()
    Trainer(b, sample, tmp_path / "b", _config(prefetch=False), progress=False).fit()
    for p, q in zip(a.networks["net"].parameters(), b.networks["net"].parameters(), strict=True):
        assert torch.equal(p, q)


def test_ctrl_c_checkpoints_the_last_completed_step(tmp_path: Path) -> None:
    task = Tiny(interrupt_at=7)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler; SIG_IGN when run in a background job
    with pytest.raises(KeyboardInterrupt):
        Trainer(task, sample, tmp_path, _config(), progress=False).fit()
    assert read_checkpoint_record(tmp_path / "checkpoints")["step"] == 8
    assert signal.getsignal(signal.SIGINT) is before  # the trainer put back the handler it found
    assert int(_rows(tmp_path)[-1]["step"]) == 8


def test_nan_loss_stops_training(tmp_path: Path) -> None:
    with pytest.raises(MicrorestoreError, match="diverged"):
        Trainer(Tiny(nan_at=12), sample, tmp_path, _config(log_every=5), progress=False).fit()
    assert read_checkpoint_record(tmp_path / "checkpoints")["step"] == 10


def test_invalid_config() -> None:
    with pytest.raises(InputError, match="steps"):
        TrainerConfig(steps=0, batch_size=1)
    with pytest.raises(InputError, match="batch_size"):
        TrainerConfig(steps=1, batch_size=-1)
    with pytest.raises(InputError, match="CUDA is not available"):
        Trainer(
            Tiny(), sample, Path("unused"), TrainerConfig(steps=1, batch_size=1, device="cuda")
        ) if not torch.cuda.is_available() else pytest.skip("has CUDA")


def test_step_context_with_grad_scaler() -> None:
    net = nn.Linear(2, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=8.0)
    ctx = StepContext(
        device=torch.device("cpu"),
        precision="fp32",
        step=0,
        total=1,
        rng=np.random.default_rng(0),
        optimizers={"net": opt},
        scalers={"net": scaler},
    )
    before = net.weight.detach().clone()
    ctx.minimize(net(torch.ones(1, 2)).sum(), "net")
    assert torch.allclose(net.weight, before - 0.1)  # gradients unscaled before the step
    with pytest.raises(MicrorestoreError, match="no optimizer 'G'"):
        ctx.zero_grad("G")


def test_fit_restores_global_determinism_settings(tmp_path: Path) -> None:
    before = torch.are_deterministic_algorithms_enabled()
    Trainer(Tiny(), sample, tmp_path, _config(steps=2, deterministic=not before), progress=False).fit()
    assert torch.are_deterministic_algorithms_enabled() is before


def test_time_budget_stops_with_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    validation = sample(np.random.default_rng(99), 4)
    trainer = Trainer(
        Tiny(), sample, tmp_path, _config(max_seconds=1e-9, val_every=0), progress=False, validation_batch=validation
    )
    final = trainer.fit()
    assert trainer.step == 1 and final["step"] == 1 and "val_mse" in final
    assert read_checkpoint_record(tmp_path / "checkpoints")["step"] == 1
    resumed = Trainer(Tiny(), sample, tmp_path, _config(), progress=False).fit(resume=True)
    assert resumed["step"] == 20
    with pytest.raises(InputError, match="max_seconds"):
        _config(max_seconds=0)
