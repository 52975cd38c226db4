"""Training throughput: the engine's Trainer against a bare PyTorch loop over the same network and batches.

Run: ``python bench/bench_training.py`` (about 5 minutes on 2 cores). Writes the "Training throughput" section of
docs/benchmarks.md.

Both loops train CARE's default U-Net (depth 2, 32 base filters, 332,641 parameters) with Adam on 16 patches of
64 x 64 per step, drawn by the same :class:`~microrestore.engine.patches.PatchSampler` from the same images with
the same per-step generators: the bare loop is what one would write by hand (sample, copy, forward, L1 loss,
zero_grad, backward, step). The engine adds the learning-rate schedule, the step context, loss accumulation and
metrics.csv rows (every 50 steps), and the final checkpoint. The two are run alternately, ``--rounds`` times
each, and the medians are compared. Both wall time and the process's CPU time (all its threads) are measured:
on a shared machine other processes stretch wall time at random, while CPU time counts only this process's
own work, so the overhead is read from CPU time. With ``--threads 1`` (the default) CPU time is the work
itself; with more threads, OpenMP workers spin while they wait for each other, which a busy machine turns into
large, random CPU time. A third loop, the engine without deterministic kernels, splits the engine's overhead
into the price of ``deterministic=True`` (for bit-exact resume) and the loop itself.

With ``--peer PYTHON`` (the interpreter of a venv holding CAREamics: ``bash ../shared/peers/careamics-venv.sh
VENV``, then ``--peer VENV/bin/python``) it instead trains CARE side by side with CAREamics on the same simulated
images, network size and patches (see ``bench/_careamics_peer.py``) and writes the "Training speed against
CAREamics" section: patches per second, start-up, held-out PSNR and prediction time of each tool.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402


def _setup(batch: int, patch: int):
    import torch
    from microrestore_care.config import CareConfig

    from microrestore.engine.patches import PatchSampler
    from microrestore.nn import UNet

    rng = np.random.default_rng(0)
    images = [rng.normal(0, 1, (1, 512, 512)).astype(np.float32) for _ in range(4)]
    targets = [0.5 * x for x in images]
    sampler = PatchSampler(images, targets, (patch, patch), paired=True, augment=True, foreground_bias=0.5)
    torch.manual_seed(0)
    net = UNet(in_channels=1, out_channels=1, ndim=2, depth=2, base_filters=32, kernel_size=3, residual=True)
    config = CareConfig(batch_size=batch, patch_size=patch, validation_fraction=0)
    return net, sampler, config


def bare(steps: int, batch: int, patch: int) -> tuple[float, float]:
    """Wall and CPU seconds for ``steps`` steps of a hand-written loop."""
    import torch
    import torch.nn.functional as F

    from microrestore.engine.seeding import step_rng

    net, sampler, config = _setup(batch, patch)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    net.train()
    start, cpu = time.perf_counter(), time.process_time()
    for step in range(steps):
        source, target = sampler.sample(step_rng(0, step), batch)
        source, target = torch.from_numpy(source), torch.from_numpy(target)
        loss = F.l1_loss(net(source), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    loss.item()
    return time.perf_counter() - start, time.process_time() - cpu


def engine(steps: int, batch: int, patch: int, work: Path, deterministic: bool = True) -> tuple[float, float]:
    """Wall and CPU seconds for ``steps`` steps of the Trainer (CARE's task), its final checkpoint included."""
    from microrestore_care.training import CareTask

    from microrestore.engine.trainer import Trainer, TrainerConfig

    net, sampler, config = _setup(batch, patch)
    out = Path(tempfile.mkdtemp(dir=work))
    settings = TrainerConfig(
        steps=steps,
        batch_size=batch,
        seed=0,
        device="cpu",
        checkpoint_every=10**9,
        val_every=0,
        log_every=50,
        deterministic=deterministic,
    )
    trainer = Trainer(CareTask(net, config), sampler.sample, out, settings, progress=False)
    start, cpu = time.perf_counter(), time.process_time()
    trainer.fit()
    return time.perf_counter() - start, time.process_time() - cpu


def peer(args: argparse.Namespace) -> None:
    """CARE in microrestore and in CAREamics, side by side (see ``bench/_careamics_peer.py``)."""
    from _careamics_peer import compare

    with tempfile.TemporaryDirectory() as tmp:
        rows = compare(args.peer, Path(tmp), args.peer_steps, args.batch, args.patch, args.threads)
    print(json.dumps(rows, indent=2))
    names = {
        "microrestore": "microrestore CARE (U-Net depth 2, 32 filters, no batch norm; its default)",
        "careamics": "CAREamics 0.3.5 CARE (U-Net depth 2, 32 filters, batch norm; its default)",
    }
    base = rows["careamics"]["patches"] / rows["careamics"]["train"]
    lines = [
        f"CARE on the same 8 simulated 256 x 256 training fields (25 photons, seeds no recipe uses), Adam, "
        f"{args.batch} patches of {args.patch} x {args.patch} per step, about {args.peer_steps} steps each, "
        f"{args.threads} torch threads on a {os.cpu_count()}-core machine, each tool in its own process, the two "
        f"alternating twice in one session (each tool's faster run shown); PSNR on 3 held-out fields against "
        f"their noise-free images (input: "
        f"{rows['input']['psnr']:.2f} dB). `python bench/bench_training.py --peer VENV/bin/python --peer-steps "
        f"{args.peer_steps} --threads {args.threads}`.",
        "",
        "| tool | parameters | patches | training s | patches/s | x CAREamics | start-up + set-up s | "
        "process s in all | predict s (3 fields) | held-out PSNR (dB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, name in names.items():
        r = rows[key]
        rate = r["patches"] / r["train"]
        lines.append(
            f"| {name} | {r['params']:,} | {r['patches']} | {r['train']:.1f} | **{rate:.1f}** | {rate / base:.2f} | "
            f"{r['import'] + r['setup']:.1f} | {r['total']:.1f} | {r['predict']:.2f} | {r['psnr']:.2f} |"
        )
    lines += [
        "",
        "Training seconds are the training call alone (CAREamics' includes Lightning's per-epoch validation, "
        "microrestore's its one validation and checkpoint); the networks differ only in CAREamics' batch norm "
        "(1,088 parameters). Training runs (s): "
        + "; ".join(f"{k} " + ", ".join(f"{t:.1f}" for t in rows[k]["train_runs"]) for k in names)
        + ".",
    ]
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "Training speed against CAREamics", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: CPU time is the work itself)")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    parser.add_argument("--peer", metavar="PYTHON", help="CAREamics venv's python: compare CARE training with it")
    parser.add_argument("--peer-steps", type=int, default=128, help="training steps per tool with --peer")
    args = parser.parse_args()
    if args.peer:
        peer(args)
        return
    import torch

    torch.set_num_threads(args.threads)
    loops = {
        "bare": lambda: bare(args.steps, args.batch, args.patch),
        "engine": lambda: engine(args.steps, args.batch, args.patch, Path(tmp)),
        "nodet": lambda: engine(args.steps, args.batch, args.patch, Path(tmp), deterministic=False),
    }
    wall: dict[str, list[float]] = {k: [] for k in loops}
    cpu: dict[str, list[float]] = {k: [] for k in loops}
    with tempfile.TemporaryDirectory() as tmp:
        bare(3, args.batch, args.patch)  # warm-up (allocator, oneDNN kernels)
        for _ in range(args.rounds):
            for key, run in loops.items():
                w, c = run()
                wall[key].append(w)
                cpu[key].append(c)
    med_wall = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    overhead_cpu = med_cpu["engine"] / med_cpu["bare"] - 1
    overhead_nodet = med_cpu["nodet"] / med_cpu["bare"] - 1
    overhead_wall = med_wall["engine"] / med_wall["bare"] - 1
    print(
        json.dumps({"wall": wall, "cpu": cpu, "overhead_cpu": overhead_cpu, "overhead_wall": overhead_wall}, indent=2)
    )
    lines = [
        f"CARE U-Net (depth 2, 32 base filters), Adam, {args.batch} patches of {args.patch} x {args.patch} per step, "
        f"fp32, {args.threads} torch thread(s) on a {os.cpu_count()}-core machine; {args.steps} steps per run, median "
        f"of {args.rounds} alternating runs; `python bench/bench_training.py --steps {args.steps} --rounds "
        f"{args.rounds} --batch {args.batch} --threads {args.threads}`.",
        "",
        "| loop | steps/s (CPU time) | CPU s per run (median) | steps/s (wall) | wall s per run (median) |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | **{args.steps / med_cpu[key]:.2f}** | {med_cpu[key]:.2f} | {args.steps / med_wall[key]:.2f} | "
            f"{med_wall[key]:.2f} |"
            for key, name in (
                ("bare", "bare PyTorch loop"),
                ("engine", "microrestore Trainer (default: deterministic kernels)"),
                ("nodet", "microrestore Trainer, deterministic=False"),
            )
        ),
        "",
        f"Engine overhead: **{100 * overhead_cpu:+.1f} %** in CPU time ({100 * overhead_wall:+.1f} % in wall time; "
        f"target: within 10 %), of which the loop itself {100 * overhead_nodet:+.1f} % and the rest the deterministic "
        "kernels that make resume bit-exact. The engine's runs include its metrics.csv rows and final checkpoint; "
        "both loops sample the same patches. Per-run wall times: bare "
        + ", ".join(f"{t:.1f}" for t in wall["bare"])
        + "; engine "
        + ", ".join(f"{t:.1f}" for t in wall["engine"])
        + " s (the spread is other processes on the shared machine).",
    ]
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "Training throughput", "\n".join(lines))


if __name__ == "__main__":
    main()
