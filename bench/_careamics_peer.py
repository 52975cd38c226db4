"""Side-by-side CARE training: microrestore against CAREamics, on the same network, patches and images.

Used by ``bench/bench_training.py --peer PYTHON`` where PYTHON is the interpreter of a venv with CAREamics
(``bash ../shared/peers/careamics-venv.sh VENV`` makes one; then ``--peer VENV/bin/python``).

Each tool runs in its own subprocess on the same simulated images (written once as ``.npy`` files), with the same
torch thread count: a training of about ``patches`` patches of ``patch x patch`` in batches of ``batch``, then
prediction of the held-out fields. Each subprocess reports its start-up (imports), set-up (data, model), training
and prediction seconds, the patches it trained on and the network's parameter count; the parent scores both
tools' predictions against the same noise-free images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run in the CAREamics venv: CAREamics' documented array workflow (CAREamist.train / predict).
CAREAMICS_DRIVER = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    args = json.loads(sys.argv[1])
    import numpy as np, torch
    torch.set_num_threads(args["threads"])
    from careamics import CAREamist
    from careamics.config import create_advanced_care_config
    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    x = np.load(args["work"] + "/train_noisy.npy"); y = np.load(args["work"] + "/train_clean.npy")
    per_epoch = max(1, (x.shape[0] * (x.shape[1] // args["patch"]) * (x.shape[2] // args["patch"])) // args["batch"])
    epochs = max(1, -(-args["steps"] // per_epoch))
    config = create_advanced_care_config(
        experiment_name="bench", data_type="array", axes="SYX", patch_size=[args["patch"]] * 2,
        batch_size=args["batch"], num_epochs=epochs, num_workers=0, seed=1,
        model_params={"use_batch_norm": args["batch_norm"]},
    )
    careamist = CAREamist(config, work_dir=args["out"], enable_progress_bar=False)
    net = careamist.model.model
    params = sum(p.numel() for p in net.parameters())
    t_setup = time.perf_counter() - t1
    t2 = time.perf_counter()
    careamist.train(train_data=x, train_data_target=y)
    t_train = time.perf_counter() - t2
    steps = int(careamist.trainer.global_step)
    held = np.load(args["work"] + "/test_noisy.npy")
    t3 = time.perf_counter()
    found = careamist.predict(pred_data=held, axes="SYX", data_type="array")
    preds = list(np.asarray(found[0] if isinstance(found, tuple) else found, np.float32).reshape(held.shape))
    t_predict = time.perf_counter() - t3
    np.save(args["out"] + "/pred.npy", np.stack(preds).astype(np.float32))
    print(json.dumps({"import": t_import, "setup": t_setup, "train": t_train, "predict": t_predict,
                      "steps": steps, "patches": steps * args["batch"], "params": params}))
    """
)

# Run with this project's interpreter: the same work through microrestore's public API.
MICRORESTORE_DRIVER = textwrap.dedent(
    """
    import json, sys, time
    t0 = time.perf_counter()
    args = json.loads(sys.argv[1])
    import numpy as np, torch
    torch.set_num_threads(args["threads"])
    from microrestore import api
    from microrestore.engine.modeldir import load_model
    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    import tifffile
    from pathlib import Path
    work, out = Path(args["work"]), Path(args["out"])
    for name in ("noisy", "clean"):
        (work / name).mkdir(exist_ok=True)
        for i, im in enumerate(np.load(work / f"train_{name}.npy")):
            tifffile.imwrite(work / name / f"f{i:02d}.tif", im)
    config = {"depth": 2, "base_filters": 32, "batch_size": args["batch"], "patch_size": args["patch"],
              "validation_every": args["steps"], "checkpoint_every": args["steps"], "seed": 0}
    t_setup = time.perf_counter() - t1
    t2 = time.perf_counter()
    api.train("care", [work / "noisy"], out / "model", target=[work / "clean"], steps=args["steps"],
              progress=False, config=config)
    t_train = time.perf_counter() - t2
    params = sum(int(np.prod(t.shape)) for t in load_model(out / "model").state_dicts["net"].values())
    held = np.load(work / "test_noisy.npy")
    t3 = time.perf_counter()
    preds = [api.restore(im, "care", model=out / "model", axes="YX") for im in held]
    t_predict = time.perf_counter() - t3
    np.save(out / "pred.npy", np.stack(preds).astype(np.float32))
    print(json.dumps({"import": t_import, "setup": t_setup, "train": t_train, "predict": t_predict,
                      "steps": args["steps"], "patches": args["steps"] * args["batch"], "params": params}))
    """
)


def make_data(work: Path, n_train: int, n_test: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Simulated widefield fields no recipe used (photons 25, seeds 7301/7302); returns the held-out pair."""
    from microrestore.io import read_image
    from microrestore.simulation import simulate

    arrays: dict[str, np.ndarray] = {}
    for split, n, seed in (("train", n_train, 7301), ("test", n_test, 7302)):
        root = work / f"sim_{split}"
        manifest = simulate("denoise", root, n=n, seed=seed, photons=25, shape=(size, size))
        for kind in ("noisy", "clean"):
            arrays[f"{split}_{kind}"] = np.stack(
                [read_image(root / f[kind]).data.astype(np.float32) for f in manifest["files"]]
            )
    for key, value in arrays.items():
        np.save(work / f"{key}.npy", value)
    return arrays["test_noisy"], arrays["test_clean"]


def run_driver(python: str, driver: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one driver in a subprocess; its last stdout line is its JSON report (wall time added as ``total``)."""
    Path(args["out"]).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    done = subprocess.run(
        [python, "-c", driver, json.dumps(args)], capture_output=True, text=True, env=env, cwd=args["out"]
    )
    total = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["total"] = total
    report["pred"] = np.load(Path(args["out"]) / "pred.npy")
    return report


def compare(
    peer_python: str, work: Path, steps: int, batch: int, patch: int, threads: int, rounds: int = 2
) -> dict[str, Any]:
    """Train and predict with each tool, alternating, ``rounds`` times; keep each tool's fastest training.

    Returns each tool's report (held-out PSNR in dB added) and the input's PSNR under ``input``.
    """
    from microrestore import metrics

    test_noisy, test_clean = make_data(work, n_train=8, n_test=3, size=256)
    rows: dict[str, dict[str, Any]] = {}
    common = {"work": str(work), "steps": steps, "batch": batch, "patch": patch, "threads": threads}
    runs = {
        "microrestore": (sys.executable, MICRORESTORE_DRIVER, {}),
        "careamics": (peer_python, CAREAMICS_DRIVER, {"batch_norm": True}),
    }
    for attempt in range(rounds):
        for name, (python, driver, extra) in runs.items():
            report = run_driver(python, driver, {**common, **extra, "out": str(work / f"{name}-{attempt}")})
            pred = report.pop("pred")
            report["psnr"] = float(np.mean([metrics.psnr(p, t) for p, t in zip(pred, test_clean)]))
            report["train_runs"] = [*rows.get(name, {}).get("train_runs", []), report["train"]]
            print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in report.items()}, flush=True)
            if name not in rows or report["train"] < rows[name]["train"]:
                rows[name] = report
            rows[name]["train_runs"] = report["train_runs"]
    rows["input"] = {"psnr": float(np.mean([metrics.psnr(p, t) for p, t in zip(test_noisy, test_clean)]))}
    return rows
