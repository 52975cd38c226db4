"""Inference benchmark: every method's throughput by image size, tiling overhead, streamed peak memory.

Run: ``python bench/bench_inference.py`` (sizes and budget as arguments; about 15 minutes on 2 cores with the
defaults). Writes the "Inference" section of docs/benchmarks.md. Ratios are measured side by side in one run,
since machines are noisy.

1. Throughput: each registered method that runs without a model or has a default model (discovered from the
   registry, so new methods join automatically) on uint16 images of ``--sizes`` (default 256^2 .. 4096^2; add
   8192 for the full range), through the same predictor ``microrestore denoise`` uses (default tiling, fp32).
2. Tiling overhead: for methods whose predictor runs a network, the predictor's time against one untiled
   forward pass of the same network on the same (normalised) image, at ``--overhead-size``.
3. Memory: 2048^2 and 8192^2 uint16 TIFFs denoised by ``microrestore denoise`` (CARE U-Net, ~330k parameters)
   in a subprocess, streamed from a memory-mapped input to a memory-mapped output, plus the 8192^2 image as a
   zlib-compressed tiled TIFF (read lazily through zarr) and as OME-Zarr when zarr is installed; peak
   anonymous memory (heap and tensors, sampled every 20 ms from /proc) against the tiler's working set. The
   same peak for a 16x larger image shows that memory follows the tile budget, not the image.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402


def make_model(folder: Path, filters: int = 32) -> int:
    """Save an (untrained) CARE U-Net model folder; speed and memory do not depend on the weights."""
    import torch

    from microrestore.engine.modeldir import save_model
    from microrestore.engine.normalization import PercentileNormalizer
    from microrestore.nn import UNet, count_parameters

    torch.manual_seed(0)
    net = UNet(in_channels=1, out_channels=1, ndim=2, depth=2, base_filters=filters, kernel_size=3, residual=True)
    save_model(
        folder,
        method="care",
        networks={"net": net},
        network_specs={"net": net.spec},
        normalization=PercentileNormalizer().to_dict(),
        config={},
        axes="YX",
        provenance={"note": "untrained, for benchmarking"},
        metrics={},
    )
    return count_parameters(net)


def _noisy(size: int) -> np.ndarray:
    rng = np.random.default_rng(size)
    return (rng.poisson(50, (size, size)) + 100).astype(np.uint16)


def _time(function, repeats: int) -> float:
    return _times(function, repeats)[0]


def _times(function, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time (this process) of ``repeats`` calls."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        function()
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


#: Options for methods that cannot run on a bare image without them (the optics of the simulated data).
OPTIONS = {"richardson-lucy": {"na": 1.3, "wavelength_nm": 520.0, "pixel_size_nm": 65.0}}


def _options(name: str):
    from microrestore.plugins import PredictOptions

    return PredictOptions(device="cpu", params=dict(OPTIONS.get(name, {})))


def methods_to_run() -> tuple[list[object], list[str]]:
    """Registered methods that run without a model or have a default one; notes on the others."""
    from microrestore.plugins import get_registry

    run, skipped = [], []
    for method in sorted(get_registry().methods.values(), key=lambda m: m.name):
        if method.needs_model and method.default_model is None:
            skipped.append(f"{method.name} (no default model yet)")
        else:
            run.append(method)
    return run, skipped


def throughput(sizes: list[int], budget_s: float) -> tuple[list[dict[str, object]], list[str]]:
    """Megapixels/s of each method's predictor (loaded once) on each image size."""
    from microrestore import api
    from microrestore.errors import MicrorestoreError
    from microrestore.io import ImageData

    methods, notes = methods_to_run()
    rows = []
    for method in methods:
        try:
            predictor = api.load_predictor(method, None, _options(method.name))
            predictor.predict(ImageData(_noisy(64), "YX"))  # warm-up: lazy initialisation, first kernels
        except MicrorestoreError as exc:
            notes.append(f"{method.name} (cannot run on a bare image: {exc})")
            continue
        for size in sizes:
            image = ImageData(_noisy(size), "YX")
            start = time.perf_counter()
            try:
                predictor.predict(image)
            except MicrorestoreError as exc:
                notes.append(f"{method.name} at {size}^2: {exc}")
                break
            first = time.perf_counter() - start
            repeats = 3 if first < 2 else 1  # small images: best of three after the first (warm) call
            seconds = min(first, _time(lambda p=predictor, im=image: p.predict(im), repeats)) if repeats > 1 else first
            rows.append({"method": method.name, "size": size, "seconds": seconds, "mp_s": size * size / 1e6 / seconds})
            print(json.dumps(rows[-1]), flush=True)
            if seconds > budget_s:
                notes.append(
                    f"{method.name}: sizes above {size}^2 skipped (over the {budget_s:.0f} s budget per image)"
                )
                break
    return rows, notes


def overhead(size: int, repeats: int) -> list[dict[str, object]]:
    """Tiled predictor time / one untiled forward of the same network, for each network method."""
    import torch

    from microrestore import api
    from microrestore.errors import MicrorestoreError
    from microrestore.io import ImageData

    rows = []
    image = ImageData(_noisy(size), "YX")
    for method in methods_to_run()[0]:
        try:
            predictor = api.load_predictor(method, None, _options(method.name))
        except MicrorestoreError:
            continue
        network = getattr(predictor, "network", None)
        if network is None or not hasattr(predictor, "normalizer"):
            continue
        tiled, tiled_cpu = _times(lambda p=predictor: p.predict(image), repeats + 1)
        params = predictor.normalizer.fit(image.data)
        x = torch.from_numpy(predictor.normalizer.apply(image.data, params)[None, None].astype(np.float32))
        x = x.contiguous(memory_format=predictor.memory_format)
        with torch.inference_mode():
            untiled, untiled_cpu = _times(lambda n=network, t=x: n(t), repeats + 1)
        chosen, _ = predictor.plan_tiles([size, size])
        rows.append(
            {
                "method": method.name,
                "size": size,
                "tile": chosen[0],
                "tiled_s": tiled,
                "untiled_s": untiled,
                "ratio": tiled / untiled,
                "ratio_cpu": tiled_cpu / untiled_cpu,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _anon_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def _write_input(work: Path, size: int, kind: str) -> Path:
    """A size x size uint16 image on disk, written band by band: plain TIFF, compressed tiled TIFF or OME-Zarr."""
    import tifffile

    rng = np.random.default_rng(1)

    def band(row: int) -> np.ndarray:
        return rng.poisson(30, (min(1024, size - row), size)).astype(np.uint16) + 100

    if kind == "tif":
        src = work / f"big{size}.tif"
        mm = tifffile.memmap(src, shape=(size, size), dtype=np.uint16, imagej=True)
        for row in range(0, size, 1024):
            mm[row : row + 1024] = band(row)
        mm.flush()
        del mm
    elif kind == "compressed":
        src = work / f"big{size}_zlib.tif"

        def tiles():
            for row in range(0, size, 512):
                block = band(row)[:512]
                for col in range(0, size, 512):
                    yield block[:, col : col + 512]

        tifffile.imwrite(src, tiles(), shape=(size, size), dtype=np.uint16, tile=(512, 512), compression="zlib")
    else:
        from microrestore_zarr.omezarr import create_ome_zarr

        src = work / f"big{size}.ome.zarr"
        with create_ome_zarr(src, (size, size), np.uint16, "YX") as array:
            for row in range(0, size, 1024):
                array[row : row + 1024] = band(row)
    return src


def memory(model_dir: Path, work: Path, size: int, tile: int | None = None, kind: str = "tif") -> dict[str, object]:
    """Peak memory of ``microrestore denoise`` on a size x size uint16 image (subprocess)."""
    import shutil

    src = _write_input(work, size, kind)
    out = work / (f"big{size}_out.ome.zarr" if kind == "zarr" else f"big{size}_out.tif")
    cmd = [
        sys.executable,
        "-m",
        "microrestore",
        "denoise",
        str(src),
        "-o",
        str(out),
        "--method",
        "care",
        "--model",
        str(model_dir),
        "--tile",
        str(tile or 512),
        "--device",
        "cpu",
        "--quiet",
        "--overwrite",  # the same size is measured with several tiles
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    peak_anon = 0
    baseline_anon = None
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_anon
        while not stop.is_set():
            try:
                peak_anon = max(peak_anon, _anon_kb(proc.pid))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"denoise failed: {err}")
    # Baseline: the same process start-up (python, torch, model) without an image.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch, microrestore_care; from microrestore.plugins import PredictOptions; "
            f"microrestore_care.load({str(model_dir)!r}, PredictOptions(device='cpu'));"
            "print([l for l in open('/proc/self/status') if l.startswith('RssAnon')][0].split()[1])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    baseline_anon = int(probe.stdout.strip())
    from microrestore.io import read_image

    result = read_image(out, memmap=True)
    ok = result.shape == (size, size) and result.dtype == np.uint16
    del result
    for path in (src, out):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    float32_mib = size * size * 4 / 2**20
    edge = tile or 512
    return {
        "size": size,
        "input": {"tif": "TIFF (memory-mapped)", "compressed": "zlib tiled TIFF (lazy)", "zarr": "OME-Zarr"}[kind],
        "tile": edge,
        # What the tiler holds: the band accumulator (tile rows x width, float32) and one window's activations
        # as choose_tile estimates them (64 feature maps x 4 alive at once, float32, 16 px halo).
        "band_mib": edge * size * 4 / 2**20,
        "tile_budget_mib": (edge * size * 4 + (edge + 32) ** 2 * 64 * 4 * 4) / 2**20,
        "seconds": seconds,
        "peak_anon_mib": peak_anon / 1024,
        "baseline_anon_mib": baseline_anon / 1024,
        "image_anon_mib": (peak_anon - baseline_anon) / 1024,
        "float32_mib": float32_mib,
        "output_ok": ok,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024,2048,4096", help="Image edges for the throughput table.")
    parser.add_argument("--budget", type=float, default=240.0, help="Skip larger sizes of a method above this (s).")
    parser.add_argument("--overhead-size", type=int, default=2048)
    parser.add_argument("--big", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of this process")
    parser.add_argument("--no-memory", action="store_true", help="Skip the streamed-memory runs.")
    parser.add_argument("--tile256", action="store_true", help="Also a memory row of the big image with tile 256.")
    parser.add_argument("--memory-filters", type=int, default=32, help="Base filters of the memory runs' U-Net.")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    rows, notes = throughput(sizes, args.budget)
    ratios = overhead(args.overhead_size, args.repeats)
    mem: list[dict[str, object]] = []
    n_params = 0
    if not args.no_memory:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            model_dir = work / "care-model"
            n_params = make_model(model_dir, args.memory_filters)
            mem.append(memory(model_dir, work, 2048))
            mem.append(memory(model_dir, work, args.big))
            if args.tile256:
                mem.append(memory(model_dir, work, args.big, tile=256))
            try:
                import zarr  # noqa: F401

                mem.append(memory(model_dir, work, args.big, kind="compressed"))
                mem.append(memory(model_dir, work, args.big, kind="zarr"))
            except ImportError:
                notes.append("zarr not installed: no compressed-TIFF and OME-Zarr memory rows")
    print(json.dumps({"throughput": rows, "overhead": ratios, "memory": mem, "notes": notes}, indent=2))

    cpu = f"{args.threads} torch thread(s) on a {os.cpu_count()}-core machine"
    command = (
        f"`python bench/bench_inference.py --sizes {args.sizes} --overhead-size {args.overhead_size} "
        f"--threads {args.threads} --memory-filters {args.memory_filters}`"
    )
    by_method: dict[str, dict[int, float]] = {}
    for row in rows:
        by_method.setdefault(str(row["method"]), {})[int(row["size"])] = float(row["mp_s"])
    lines = [
        f"Each method's default (model or algorithm), fp32 on {cpu}, default tiling, uint16 input; {command}.",
        "",
        "Throughput in megapixels/s (methods discovered from the registry):",
        "",
        "| method | " + " | ".join(f"{n}^2" for n in sizes) + " |",
        "|---|" + "---|" * len(sizes),
        *(
            f"| {name} | " + " | ".join(f"{values[n]:.2f}" if n in values else "-" for n in sizes) + " |"
            for name, values in by_method.items()
        ),
        "",
        *(["Not measured: " + "; ".join(notes) + ".", ""] if notes else []),
        f"Tiling overhead at {args.overhead_size}^2: the predictor (normalisation, reflect padding, halo reads, "
        "blending, conversion back to uint16) against one untiled forward of the same network on the same "
        "normalised image (target: within 1.15):",
        "",
        "| method | tile | tiled (s) | untiled forward (s) | tiled / untiled (wall) | tiled / untiled (CPU time) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['method']} | {r['tile']} | {r['tiled_s']:.2f} | {r['untiled_s']:.2f} | **{r['ratio']:.2f}** | "
            f"{r['ratio_cpu']:.2f} |"
            for r in ratios
        ),
    ]
    if mem:
        big = [r for r in mem if r["size"] == args.big]
        lines += [
            "",
            f"Streamed `microrestore denoise` with a CARE U-Net of {n_params:,} parameters (depth 2, "
            f"{args.memory_filters} filters), "
            "in a subprocess; peak anonymous memory (heap and tensors; memory-mapped input and output pages are "
            "file-backed page cache) against the tiler's working set (band accumulator of tile rows x width, plus "
            "one window's activations as `choose_tile` estimates them):",
            "",
            "| image | input | tile | float32 size (MiB) | time (s) | peak anonymous (MiB) | start-up + model (MiB) "
            "| tile budget (MiB) | (peak - start-up) / tile budget |",
            "|---|---|---|---|---|---|---|---|---|",
            *(
                f"| {r['size']}^2 uint16 | {r['input']} | {r['tile']} | {r['float32_mib']:.0f} | {r['seconds']:.0f} "
                f"| **{r['peak_anon_mib']:.0f}** | {r['baseline_anon_mib']:.0f} | {r['tile_budget_mib']:.0f} | "
                f"{(r['peak_anon_mib'] - r['baseline_anon_mib']) / r['tile_budget_mib']:.2f} |"
                for r in mem
            ),
            "",
            f"The {args.big}^2 image is {big[0]['float32_mib']:.0f} MiB as float32; the process needs "
            f"{big[0]['peak_anon_mib']:.0f} MiB against {mem[0]['peak_anon_mib']:.0f} MiB for a 2048^2 image: memory "
            "follows the tile budget, not the image. One process's peak varies between runs by up to about 200 MiB "
            "(heap arenas of torch's threads), so compare rows of one run.",
        ]
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "Inference", "\n".join(lines))


if __name__ == "__main__":
    main()
