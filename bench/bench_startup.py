"""CLI start-up time: ``microrestore --help`` and ``microrestore methods`` against bare Python and ``import torch``.

Run: ``python bench/bench_startup.py`` (about 30 s). Writes the "CLI start-up" section of docs/benchmarks.md.
Each command runs in a fresh process, ``--repeats`` times; the table gives the median wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _report import write_section  # noqa: E402

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "microrestore --help": [sys.executable, "-m", "microrestore", "--help"],
    "microrestore methods": [sys.executable, "-m", "microrestore", "methods"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def median_seconds(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    results = {name: median_seconds(cmd, args.repeats) for name, cmd in COMMANDS.items()}
    for name, seconds in results.items():
        print(f"{name:28s} {seconds:.3f} s")
    torch_s = results["python -c 'import torch'"]
    lines = [
        f"Median of {args.repeats} fresh processes each; `python bench/bench_startup.py`.",
        "",
        "| command | seconds | vs `import torch` |",
        "|---|---|---|",
        *(f"| `{name}` | {seconds:.3f} | {seconds / torch_s:.2f} |" for name, seconds in results.items()),
        "",
        "Neither `--help` nor `methods` imports torch or bioimageio (a test checks `sys.modules`).",
    ]
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", "CLI start-up", "\n".join(lines))


if __name__ == "__main__":
    main()
