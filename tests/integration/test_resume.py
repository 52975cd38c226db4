"""Exact resume: interrupted and resumed runs end with the same weights as uninterrupted ones."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from microrestore.engine.checkpoints import read_checkpoint_record

REPO = Path(__file__).resolve().parents[2]

# The tasks live in source text so that the killed subprocess runs exactly the same code as the test.
TASKS = '''
import os
import signal
import time

import numpy as np
import torch
from torch import nn

from microrestore.engine.pools import ImagePool
from microrestore.engine.trainer import Trainer, TrainerConfig, constant_then_linear_decay
from microrestore.losses import GANLoss, l1


class TinyTask:
    """One network with dropout (torch RNG) and a decaying learning rate."""

    def __init__(self, sleep=0.0, interrupt_at=None):
        torch.manual_seed(0)
        self.networks = {"net": nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.25), nn.Conv2d(4, 1, 3, padding=1))}
        self.sleep, self.interrupt_at = sleep, interrupt_at

    def configure_optimizers(self):
        return {"net": torch.optim.Adam(self.networks["net"].parameters(), lr=1e-2)}

    def lr_factor(self, step, total):
        return constant_then_linear_decay(step, total)

    def training_step(self, batch, step, ctx):
        x, y = batch
        loss = ((self.networks["net"](x) - y) ** 2).mean()
        ctx.minimize(loss, "net")
        if self.sleep:
            time.sleep(self.sleep)
        if step == self.interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)
        return {"loss": loss.detach()}

    def validation_step(self, batch):
        x, y = batch
        return {"mse": ((self.networks["net"](x) - y) ** 2).mean()}


class TinyGAN:
    """Two networks, two optimisers, an image pool drawing from ctx.rng, per-network schedules."""

    def __init__(self):
        torch.manual_seed(0)
        self.networks = {
            "G": nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 1, 3, padding=1), nn.Tanh()),
            "D": nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3)),
        }
        self.pool = ImagePool(size=3)
        self.gan = GANLoss("lsgan", real_label=0.9)

    def configure_optimizers(self):
        return {
            "G": torch.optim.Adam(self.networks["G"].parameters(), lr=2e-3, betas=(0.5, 0.999)),
            "D": torch.optim.Adam(self.networks["D"].parameters(), lr=1e-3, betas=(0.5, 0.999)),
        }

    def lr_factor(self, step, total):
        return {"G": constant_then_linear_decay(step, total), "D": 1.0 - 0.5 * step / total}

    def training_step(self, batch, step, ctx):
        a, b = batch
        G, D = self.networks["G"], self.networks["D"]
        with ctx.autocast():
            fake = G(a)
            loss_g = self.gan(D(fake), True) + 10 * l1(fake, a)
        ctx.minimize(loss_g, "G")
        pooled = self.pool.query(fake.detach(), ctx.rng)
        with ctx.autocast():
            loss_d = 0.5 * (self.gan(D(b), True) + self.gan(D(pooled), False))
        ctx.minimize(loss_d, "D")
        return {"G": loss_g.detach(), "D": loss_d.detach()}

    def state_tensors(self):
        return {f"pool/{k}": v for k, v in self.pool.state_tensors().items()}

    def load_state_tensors(self, tensors):
        self.pool.load_state_tensors({k[5:]: v for k, v in tensors.items() if k.startswith("pool/")})


def paired(rng, batch_size):
    x = rng.standard_normal((batch_size, 1, 8, 8)).astype(np.float32)
    return x, 0.5 * np.roll(x, 1, axis=-1)


def unpaired(rng, batch_size):
    a = rng.standard_normal((batch_size, 1, 8, 8)).astype(np.float32)
    b = np.tanh(rng.standard_normal((batch_size, 1, 8, 8))).astype(np.float32)
    return a, b


def config(steps, **kw):
    base = dict(steps=steps, batch_size=2, seed=5, device="cpu", checkpoint_every=20, log_every=1, val_every=5)
    base.update(kw)
    return TrainerConfig(**base)
'''

SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
{tasks}
out = sys.argv[1]
Trainer(TinyTask(sleep=0.01), paired, out, config(400, log_every=10, val_every=100), progress=False,
        validation_batch=paired(np.random.default_rng(123), 4)).fit()
"""


@pytest.fixture(scope="module")
def tasks() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "resume_tasks"}
    exec(compile(TASKS, "resume_tasks", "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the killed subprocess uses one thread too: same reduction order
    yield
    torch.set_num_threads(threads)


def _assert_same(a: dict[str, torch.nn.Module], b: dict[str, torch.nn.Module]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        for (key, x), (_, y) in zip(a[name].state_dict().items(), b[name].state_dict().items(), strict=True):
            assert torch.equal(x, y), f"{name}.{key}"


def _steps(folder: Path) -> list[int]:
    with open(folder / "metrics.csv", newline="") as handle:
        return [int(row["step"]) for row in csv.DictReader(handle)]


def _csv_rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_resume_in_process_is_exact(tmp_path: Path, tasks: dict[str, Any]) -> None:
    Trainer, config, paired = tasks["Trainer"], tasks["config"], tasks["paired"]
    validation = paired(__import__("numpy").random.default_rng(7), 4)
    whole = tasks["TinyTask"]()
    Trainer(whole, paired, tmp_path / "whole", config(20), progress=False, validation_batch=validation).fit()

    first = tasks["TinyTask"]()
    Trainer(first, paired, tmp_path / "split", config(20), progress=False, validation_batch=validation).fit(until=10)
    assert read_checkpoint_record(tmp_path / "split" / "checkpoints")["step"] == 10
    second = tasks["TinyTask"]()  # a fresh process would build the task again
    result = Trainer(second, paired, tmp_path / "split", config(20), progress=False, validation_batch=validation).fit(
        resume=True
    )
    _assert_same(whole.networks, second.networks)
    assert _steps(tmp_path / "split") == list(range(1, 21))
    assert _csv_rows(tmp_path / "split") == _csv_rows(tmp_path / "whole")
    assert result["step"] == 20


def test_ctrl_c_then_resume_is_exact(tmp_path: Path, tasks: dict[str, Any]) -> None:
    Trainer, config, paired = tasks["Trainer"], tasks["config"], tasks["paired"]
    whole = tasks["TinyTask"]()
    Trainer(whole, paired, tmp_path / "whole", config(30), progress=False).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(tasks["TinyTask"](interrupt_at=12), paired, tmp_path / "run", config(30), progress=False).fit()
    assert read_checkpoint_record(tmp_path / "run" / "checkpoints")["step"] == 13
    resumed = tasks["TinyTask"]()
    Trainer(resumed, paired, tmp_path / "run", config(30), progress=False).fit(resume=True)
    _assert_same(whole.networks, resumed.networks)
    assert _steps(tmp_path / "run") == list(range(1, 31))


def test_two_network_gan_resumes_exactly(tmp_path: Path, tasks: dict[str, Any]) -> None:
    Trainer, config, unpaired = tasks["Trainer"], tasks["config"], tasks["unpaired"]
    whole = tasks["TinyGAN"]()
    Trainer(whole, unpaired, tmp_path / "whole", config(24, checkpoint_every=7), progress=False).fit()
    first = tasks["TinyGAN"]()
    Trainer(first, unpaired, tmp_path / "split", config(24, checkpoint_every=7), progress=False).fit(until=11)
    assert len(first.pool) == 3
    second = tasks["TinyGAN"]()
    Trainer(second, unpaired, tmp_path / "split", config(24, checkpoint_every=7), progress=False).fit(resume=True)
    _assert_same(whole.networks, second.networks)
    for x, y in zip(whole.pool.images, second.pool.images, strict=True):
        assert torch.equal(x, y)
    rows = _csv_rows(tmp_path / "split")
    assert [int(r["step"]) for r in rows] == list(range(1, 25))
    assert {"lr_G", "lr_D", "G", "D"} <= set(rows[0])
    assert rows == _csv_rows(tmp_path / "whole")


@pytest.mark.slow
def test_sigkill_then_resume_is_exact(tmp_path: Path, tasks: dict[str, Any]) -> None:
    import numpy as np

    Trainer, config, paired = tasks["Trainer"], tasks["config"], tasks["paired"]
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(tasks=TASKS))
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(run)], env=env, stderr=subprocess.PIPE)
    record = run / "checkpoints" / "checkpoint-last.json"
    try:
        deadline = time.monotonic() + 120
        while not record.exists():
            if proc.poll() is not None:
                pytest.fail(f"training subprocess ended early: {proc.stderr.read().decode() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint within 120 s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    killed_at = read_checkpoint_record(run / "checkpoints")["step"]
    assert 20 <= killed_at < 400

    validation = paired(np.random.default_rng(123), 4)
    resumed = tasks["TinyTask"]()
    final = Trainer(
        resumed, paired, run, config(400, log_every=10, val_every=100), progress=False, validation_batch=validation
    ).fit(resume=True)
    assert final["step"] == 400
    assert read_checkpoint_record(run / "checkpoints")["step"] == 400

    whole = tasks["TinyTask"]()
    Trainer(
        whole,
        paired,
        tmp_path / "whole",
        config(400, log_every=10, val_every=100),
        progress=False,
        validation_batch=validation,
    ).fit()
    _assert_same(whole.networks, resumed.networks)
    assert _steps(run) == list(range(10, 401, 10))
    assert _csv_rows(run) == _csv_rows(tmp_path / "whole")


RESUMING_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
{tasks}
from microrestore.engine.checkpoints import has_checkpoint
out = sys.argv[1]
resume = has_checkpoint(out + "/checkpoints")
Trainer(TinyTask(sleep=0.005), paired, out, config(300, checkpoint_every=7, log_every=10, val_every=100),
        progress=False, validation_batch=paired(np.random.default_rng(123), 4)).fit(resume=resume)
"""


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_is_exact(tmp_path: Path, tasks: dict[str, Any]) -> None:
    """Killed three times at random moments (during steps, checkpoint writes or start-up), it still finishes
    with the weights and metrics of an uninterrupted run."""
    import numpy as np

    Trainer, config, paired = tasks["Trainer"], tasks["config"], tasks["paired"]
    script = tmp_path / "train.py"
    script.write_text(RESUMING_SCRIPT.format(tasks=TASKS))
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    rng = np.random.default_rng(2026)
    killed_at = []

    def saved_step() -> int:
        # The record alone, unverified: verifying could finish a save the training process is still making.
        try:
            return int(json.loads((run / "checkpoints" / "checkpoint-last.json").read_text())["step"])
        except (FileNotFoundError, ValueError):
            return 0

    for _ in range(3):
        before = saved_step()
        proc = subprocess.Popen([sys.executable, str(script), str(run)], env=env, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while saved_step() <= before and proc.poll() is None:  # this run is training and has saved once
                if time.monotonic() > deadline:
                    pytest.fail("no new checkpoint within 120 s")
                time.sleep(0.01)
            time.sleep(float(rng.uniform(0.0, 0.5)))  # then a random moment: a step, a save, a metrics row
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
            if proc.stderr:
                proc.stderr.close()
        if proc.returncode != -signal.SIGKILL:
            pytest.fail(f"the run ended before it was killed (status {proc.returncode})")
        killed_at.append(saved_step())
    assert killed_at == sorted(killed_at) and killed_at[-1] < 300

    validation = paired(np.random.default_rng(123), 4)
    resumed = tasks["TinyTask"]()
    settings = config(300, checkpoint_every=7, log_every=10, val_every=100)
    final = Trainer(resumed, paired, run, settings, progress=False, validation_batch=validation).fit(resume=True)
    assert final["step"] == 300
    whole = tasks["TinyTask"]()
    Trainer(whole, paired, tmp_path / "whole", settings, progress=False, validation_batch=validation).fit()
    _assert_same(whole.networks, resumed.networks)
    assert _csv_rows(run) == _csv_rows(tmp_path / "whole")
