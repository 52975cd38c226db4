"""napari start-up time with and without the microrestore plugin installed (docs/napari.md).

Builds microrestore's wheel, unpacks it into a temporary folder (the "installed" copy, with its
``napari.manifest`` entry point), then times fresh processes, alternating the two cases:

- ``viewer``: ``import napari; napari.Viewer(show=False)`` (plugin discovery included);
- ``discover``: npe2's discovery and manifest loading alone (what the plugin adds at start-up), and whether
  torch was imported.

Without the unpacked folder on ``sys.path`` no ``microrestore`` manifest is found (the development install of
the main checkout declares none). Run under a display (``xvfb-run -a``) with ``QT_QPA_PLATFORM=offscreen``::

    xvfb-run -a python scripts/napari_startup.py --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBES = {
    "viewer": (
        "import time, sys; t = time.perf_counter(); import napari; v = napari.Viewer(show=False); "
        "dt = time.perf_counter() - t; import npe2; pm = npe2.PluginManager.instance(); "
        "print(dt, 'microrestore' in pm._manifests, 'torch' in sys.modules); v.close()"
    ),
    "discover": (
        "import time, sys, npe2; pm = npe2.PluginManager.instance(); t = time.perf_counter(); pm.discover(); "
        "dt = time.perf_counter() - t; print(dt, 'microrestore' in pm._manifests, 'torch' in sys.modules)"
    ),
}


def _install(folder: Path) -> Path:
    wheels = folder / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    site = folder / "site"
    with zipfile.ZipFile(next(wheels.glob("microrestore-*.whl"))) as wheel:
        wheel.extractall(site)
    return site


def _run(probe: str, site: Path | None) -> tuple[float, bool, bool]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    if site is not None:
        env["PYTHONPATH"] = str(site)
    out = subprocess.run(
        [sys.executable, "-c", PROBES[probe]], env=env, capture_output=True, text=True, check=True, cwd="/"
    )
    seconds, found, torch = out.stdout.split()[-3:]
    return float(seconds), found == "True", torch == "True"


def main() -> None:
    """Print the medians (and all runs) as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="napari-startup-") as tmp:
        site = _install(Path(tmp))
        report: dict[str, dict[str, object]] = {}
        for probe in PROBES:
            runs: dict[str, list[float]] = {"without": [], "with": []}
            flags: dict[str, tuple[bool, bool]] = {}
            _run(probe, None), _run(probe, site)  # warm the file cache
            for _ in range(args.repeats):
                for case, path in (("without", None), ("with", site)):
                    seconds, found, torch = _run(probe, path)
                    runs[case].append(seconds)
                    flags[case] = (found, torch)
            report[probe] = {
                case: {
                    "median_s": round(statistics.median(values), 4),
                    "runs_s": [round(v, 4) for v in values],
                    "microrestore_found": flags[case][0],
                    "torch_imported": flags[case][1],
                }
                for case, values in runs.items()
            }
            report[probe]["added_s"] = round(statistics.median(runs["with"]) - statistics.median(runs["without"]), 4)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
