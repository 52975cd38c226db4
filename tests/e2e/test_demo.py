"""`microrestore demo`: the bundled model restores the bundled sample offline, in the input's units."""

from __future__ import annotations

import json

import numpy as np
import tifffile


def test_demo_writes_outputs_and_beats_raw(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    for name in ("input.tif", "restored_care.tif", "restored_nl-means.tif", "metrics.json", "figure.png"):
        assert (out / name).is_file(), name
    scores = json.loads((out / "metrics.json").read_text())
    care, raw = scores["care"], scores["input"]
    assert care["psnr"] > raw["psnr"] + 8
    assert care["ssim"] > 0.85
    # Intensities are data: the restored image is in the input's units (no rescaling needed).
    assert 0.9 < care["affine_scale"] < 1.1
    assert care["saturated"] == 0
    # Not posterised: float32 in the input's units (rounding to 16-bit counts would cost about 1 dB here).
    restored = tifffile.imread(out / "restored_care.tif")
    assert restored.dtype == np.float32
    noisy = tifffile.imread(out / "input.tif")
    assert noisy.dtype == np.uint16
    assert len(np.unique(restored)) > 20 * len(np.unique(np.rint(restored)))
