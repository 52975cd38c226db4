"""The npe2 manifest: valid, its python names importable, and no torch import when napari discovers it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

npe2 = pytest.importorskip("npe2")

MANIFEST = Path(__file__).resolve().parents[2] / "microrestore" / "napari" / "napari.yaml"


def test_manifest_is_valid_and_its_python_names_import():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "microrestore"
    manifest.validate_imports()  # every command's python_name resolves
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert widgets == {"Restore", "Self-supervised denoise", "Train", "Assess and compare", "SIM reconstruct"}
    assert {s.key for s in manifest.contributions.sample_data} == {"demo", "sim_stack"}


def test_pyproject_declares_the_manifest_entry_point():
    text = (MANIFEST.parents[2] / "pyproject.toml").read_text()
    assert '[project.entry-points."napari.manifest"]' in text
    assert 'microrestore = "microrestore.napari:napari.yaml"' in text


def test_discovery_and_widget_modules_do_not_import_torch():
    """Loading the manifest (what napari does at start-up) and even the widget module import no torch."""
    code = (
        "import sys, npe2; m = npe2.PluginManifest.from_file(sys.argv[1]); "
        "import microrestore.napari.widgets, microrestore.napari.reader, microrestore.napari.samples; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(MANIFEST)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_napari_discovers_the_plugin_without_importing_it(tmp_path):
    """A fresh napari with the manifest's entry point (as ``pip install`` writes it) starts, finds the plugin,
    imports neither torch nor the widgets, and docks each widget by its display name."""
    dist = tmp_path / "microrestore_probe-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: microrestore\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[napari.manifest]\nmicrorestore = microrestore.napari:napari.yaml\n")
    code = (
        "import sys, napari, npe2\n"
        "v = napari.Viewer(show=False)\n"
        "pm = npe2.PluginManager.instance()\n"
        "print('microrestore' in pm._manifests, 'torch' in sys.modules, 'microrestore.napari.widgets' in sys.modules)\n"
        "names = ('Restore', 'Self-supervised denoise', 'Train', 'Assess and compare', 'SIM reconstruct')\n"
        "for name in names:\n"
        "    v.window.add_plugin_dock_widget('microrestore', name)\n"
        # the sample's layer data through npe2 (adding it to the canvas needs an OpenGL context, which a
        # loaded headless X server does not always give a second process)
        "sample = {c.key: c for p, cs in pm.iter_sample_data() if p == 'microrestore' for c in cs}['demo']\n"
        "print(len(v.window._dock_widgets), [meta.get('name') for _, meta, *rest in sample.open()])\n"
        "v.close()\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    env["PYTHONPATH"] = __import__("os").pathsep.join([str(tmp_path), str(root), str(root / "plugins")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    first, second = out.stdout.strip().splitlines()[-2:]
    assert first == "True False False"
    assert second.startswith("5 ") and "'demo noisy'" in second and "'demo clean'" in second
