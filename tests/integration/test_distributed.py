"""Data-parallel training on the CPU (gloo, 2 processes) against one process with the same global batch."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from microrestore.engine.checkpoints import read_checkpoint_record

REPO = Path(__file__).resolve().parents[2]

# Source text, so that the ranks (subprocesses) and the single-process reference (this process) run the same
# code. CARE's real task on a U-Net without batch norm; c2GAN's real task (instance norm, image pools).
SCRIPT = """
import sys

import numpy as np
import torch

torch.set_num_threads(1)

from microrestore.engine.trainer import Trainer, TrainerConfig
from microrestore.nn import UNet
from microrestore_c2gan.config import C2GANConfig
from microrestore_c2gan.training import C2GANTask, build_discriminator, build_generator
from microrestore_care.config import CareConfig
from microrestore_care.training import CareTask


def paired(rng, batch_size):
    x = rng.standard_normal((batch_size, 1, 16, 16)).astype(np.float32)
    return x, (0.5 * x + 0.1 * np.roll(x, 1, axis=-1)).astype(np.float32)


def unpaired(rng, batch_size):
    a = np.tanh(rng.standard_normal((batch_size, 1, 32, 32))).astype(np.float32)
    b = np.tanh(0.5 * rng.standard_normal((batch_size, 1, 32, 32))).astype(np.float32)
    return a, b


def make(kind):
    torch.manual_seed(0)
    if kind == "care":
        config = CareConfig(depth=1, base_filters=4, learning_rate=1e-2)
        net = UNet(in_channels=1, out_channels=1, ndim=2, depth=1, base_filters=4, residual=True)
        return CareTask(net, config), paired
    # Thresholds that keep each saliency term away from the kink of its |M - M'|: with c2GAN's soft masks and
    # equal thresholds, many pixels have both masks near 1, where rounding (DDP's gradient average against one
    # batch's) flips the sign of the L1 gradient and Adam amplifies it into a diverging comparison.
    config = C2GANConfig(ngf=4, ndf=4, n_blocks=1, patch_size=32, pool_size=3, threshold_a=60.0, threshold_b=200.0)
    networks = {"G": build_generator(config), "F": build_generator(config),
                "D_A": build_discriminator(config), "D_B": build_discriminator(config)}
    return C2GANTask(networks, config), unpaired


def run(kind, out, steps, until=None, resume=False, batch_size=4):
    task, sample = make(kind)
    config = TrainerConfig(steps=int(steps), batch_size=int(batch_size), seed=3, device="cpu",
                           checkpoint_every=2, log_every=1, val_every=0)
    validation = sample(np.random.default_rng(9), 2)
    Trainer(task, sample, out, config, progress=False, validation_batch=validation).fit(
        resume=bool(resume), until=None if until in (None, "none") else int(until))
    return task


if __name__ == "__main__":
    kind, out, steps, until, resume = sys.argv[1:6]
    batch_size = sys.argv[6] if len(sys.argv) > 6 else 4
    from microrestore.errors import MicrorestoreError
    from microrestore.engine.ranks import exit_process
    try:
        run(kind, out, steps, until, resume == "resume", batch_size)
    except MicrorestoreError as exc:
        print(exc, file=sys.stderr)
        exit_process(exc.exit_code)
    exit_process(0)  # as the CLI's ranks leave
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "ddp_train.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def reference(script: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "ddp_reference"}
    exec(compile(SCRIPT, str(script), "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(script: Path, nproc: int, *args: Any, expect: int = 0) -> list[str]:
    """Start ``nproc`` ranks as torchrun would (environment variables); return their stderr."""
    port = _free_port()
    env_base = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(nproc),
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *map(str, args)],
            env={**env_base, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(nproc)
    ]
    errors = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=240)
            errors.append(err)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    codes = [p.returncode for p in procs]
    assert codes == [expect] * nproc, "\n".join(errors)
    return errors


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(str(folder / "checkpoints" / "checkpoint-last.safetensors"))
    return {k: v for k, v in tensors.items() if k.startswith("net/")}


def _losses(folder: Path, column: str) -> list[float]:
    with open(folder / "metrics.csv", newline="") as handle:
        return [float(row[column]) for row in csv.DictReader(handle)]


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-5) -> None:
    assert a.keys() == b.keys() and a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=atol, msg=key)


def test_two_processes_match_one_and_resume_with_another_count(script: Path, reference: dict, tmp_path: Path) -> None:
    whole = reference["run"]("care", tmp_path / "whole", 8)
    # 2 processes from scratch to step 4, then 1 process to the end.
    launch(script, 2, "care", tmp_path / "two_one", 8, 4, "fresh")
    record = read_checkpoint_record(tmp_path / "two_one" / "checkpoints")
    assert record["step"] == 4 and record["extra"]["world_size"] == 2
    assert record["extra"]["trainer"]["batch_size"] == 4  # the global batch is the run's setting
    reference["run"]("care", tmp_path / "two_one", 8, resume=True)
    # 1 process to step 4, then 2 processes (both load rank 0's checkpoint) to the end.
    reference["run"]("care", tmp_path / "one_two", 8, until=4)
    launch(script, 2, "care", tmp_path / "one_two", 8, "none", "resume")
    expected = {f"net/net/{k}": v for k, v in whole.networks["net"].state_dict().items()}
    for folder in ("two_one", "one_two"):
        # Plain modules' keys (no "module." of the wrappers), the weights of the single-process run.
        _assert_close(_weights(tmp_path / folder), expected)
        # Rank 0 alone wrote metrics.csv: one row per step, losses averaged over the ranks' shares.
        np.testing.assert_allclose(_losses(tmp_path / folder, "loss"), _losses(tmp_path / "whole", "loss"), rtol=1e-5)


def _outputs(reference: dict, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    task, sample = reference["make"]("gan")
    a, b = (torch.from_numpy(x) for x in sample(np.random.default_rng(1), 2))
    out = {}
    with torch.no_grad():
        for name, net in task.networks.items():
            prefix = f"net/{name}/"
            net.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
            net.eval()
            out[name] = net(a if name in ("G", "D_A") else b)
    return out


def test_gan_with_pools_matches_one_process(script: Path, reference: dict, tmp_path: Path) -> None:
    launch(script, 2, "gan", tmp_path / "ddp", 4, "none", "fresh")
    task = reference["run"]("gan", tmp_path / "single", 4)
    for column in ("G", "D_A", "D_B", "saliency", "cycle_A"):
        np.testing.assert_allclose(
            _losses(tmp_path / "ddp", column), _losses(tmp_path / "single", column), rtol=1e-4, atol=1e-6
        )
    # Same networks, compared by what they compute: the bias of a conv followed by instance norm has a zero
    # gradient up to rounding, which Adam blows up to +-lr either way; it cancels in the output.
    ddp, single = _outputs(reference, _weights(tmp_path / "ddp")), _outputs(reference, _weights(tmp_path / "single"))
    for name in ddp:
        torch.testing.assert_close(ddp[name], single[name], rtol=1e-3, atol=1e-4, msg=name)
    # The pools are global: rank 0's checkpoint holds the pool a single process holds.
    saved = load_file(str(tmp_path / "ddp" / "checkpoints" / "checkpoint-last.safetensors"))
    pooled = [saved[f"extra/task/pool_b/{i:05d}"] for i in range(len(task.pool_b))]
    assert len(pooled) == 3
    for x, y in zip(pooled, task.pool_b.images, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_cli_nproc_trains_care_and_reports_bad_input_once(tmp_path: Path) -> None:
    from microrestore.engine.modeldir import load_model
    from microrestore.simulation import simulate

    simulate("denoise", tmp_path / "sim", n=2, seed=3, photons=20, shape=(64, 64))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    base = [sys.executable, "-m", "microrestore", "train", "care", "--source", str(tmp_path / "sim" / "noisy")]
    base += ["--target", str(tmp_path / "sim" / "clean"), "--device", "cpu", "--nproc", "2", "-q", "--steps", "3"]
    tiny = ["--set", "base_filters=4", "--set", "depth=1", "--set", "patch_size=16", "--set", "validation_every=3"]
    run = subprocess.run(
        [*base, *tiny, "--set", "batch_size=4", "-o", str(tmp_path / "model")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("model written to") == 1  # rank 0 alone reports
    bundle = load_model(tmp_path / "model", expected_method="care")
    assert bundle.provenance["steps"] == 3
    assert "val_loss" in bundle.metrics  # validated on rank 0, shared with every rank
    bad = subprocess.run(
        [*base, *tiny, "--set", "batch_size=3", "-o", str(tmp_path / "odd")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    lines = [line for line in bad.stderr.splitlines() if line.strip()]
    assert lines == [
        "Error: the batch of 3 cannot be split evenly across 2 processes; choose a batch_size that is a multiple of 2"
    ], bad.stderr
    assert not (tmp_path / "odd" / "checkpoints").exists()
