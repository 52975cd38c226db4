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
    assert widgets == {"Restore", "Self-supervised denoise", "Train", "Assess against ground truth", "SIM reconstruct"}
    assert {s.key for s in manifest.contributions.sample_data} == {"demo", "sim"}


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
