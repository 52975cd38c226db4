"""Inputs a newcomer has: grayscale PNG/JPEG, ImageJ time-lapses whose frame interval must survive restoration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from microrestore.io import read_image


def _gray(shape=(48, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.poisson(80.0, shape) + 20, 0, 255).astype(np.uint8)


def test_grayscale_png_8_and_16_bit_are_read_as_yx(tmp_path: Path) -> None:
    g8 = _gray()
    Image.fromarray(g8).save(tmp_path / "a.png")
    g16 = g8.astype(np.uint16) * 257
    Image.fromarray(g16).save(tmp_path / "b.png")
    Image.fromarray(np.stack([g8] * 3, axis=-1)).save(tmp_path / "gray-as-rgb.png")
    for name, expected in (("a.png", g8), ("b.png", g16), ("gray-as-rgb.png", g8)):
        image = read_image(tmp_path / name)
        assert image.axes == "YX" and image.data.dtype == expected.dtype, name
        np.testing.assert_array_equal(image.data, expected)
        assert image.metadata["format"] == "png"


def test_denoise_a_png_writes_a_tiff(cli, tmp_path: Path) -> None:
    Image.fromarray(_gray()).save(tmp_path / "cells.png")
    result = cli("denoise", tmp_path / "cells.png", "-o", tmp_path / "out", "--method", "nl-means", "-q")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "cells.tif"  # PNG is read only: the output is a TIFF of the same name
    restored = tifffile.imread(out)
    # --dtype auto: float32 in the 8-bit input's units (rounding to uint8 would posterise the restoration)
    assert restored.dtype == np.float32 and 0 <= restored.min() and restored.max() <= 255
    assert "JPEG" not in result.stderr


def test_jpeg_is_read_with_a_lossy_warning(cli, tmp_path: Path) -> None:
    Image.fromarray(_gray()).save(tmp_path / "shot.jpg", quality=95)
    result = cli("denoise", tmp_path / "shot.jpg", "-o", tmp_path / "shot.tif", "--method", "nl-means", "-q")
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "shot.jpg" in warning[0] and "lossy" in warning[0]
    assert (tmp_path / "shot.tif").is_file()


@pytest.mark.parametrize("mode", ["RGB", "RGBA-transparent"])
def test_colour_images_are_refused_with_a_hint(cli, tmp_path: Path, mode: str) -> None:
    g = _gray()
    if mode == "RGB":
        Image.fromarray(np.stack([g, g // 2, 255 - g], axis=-1)).save(tmp_path / "c.png")
    else:
        alpha = np.full_like(g, 255)
        alpha[0, 0] = 0
        Image.fromarray(np.stack([g, g, g, alpha], axis=-1)).save(tmp_path / "c.png")
    result = cli("denoise", tmp_path / "c.png", "-o", tmp_path / "c.tif", "--method", "nl-means", "-q")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "c.png" in result.stderr
    assert ("colour" in result.stderr and "Split Channels" in result.stderr) or "transparency" in result.stderr
    assert not (tmp_path / "c.tif").exists()


def test_png_is_not_an_output_format(cli, tmp_path: Path) -> None:
    Image.fromarray(_gray()).save(tmp_path / "a.png")
    result = cli("denoise", tmp_path / "a.png", "-o", tmp_path / "b.png", "--method", "nl-means", "-q")
    assert result.exit_code == 2 and ".tif" in result.stderr


@pytest.mark.parametrize("streamed", [False, True])
def test_imagej_frame_interval_and_time_unit_are_kept(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, streamed: bool
) -> None:
    if streamed:  # the memory-mapped output path of large inputs
        monkeypatch.setattr("microrestore.api.STREAM_BYTES", 0)
    movie = np.stack([_gray(seed=i).astype(np.uint16) * 10 for i in range(3)])
    src = tmp_path / "movie.tif"
    tifffile.imwrite(
        src, movie, imagej=True, resolution=(1 / 0.1, 1 / 0.1),
        metadata={"axes": "TYX", "unit": "micron", "finterval": 2.5, "tunit": "min", "fps": 4.0},
    )  # fmt: skip
    out = tmp_path / "restored.tif"
    result = cli("denoise", src, "-o", out, "--method", "nl-means", "-q")
    assert result.exit_code == 0, result.output
    with tifffile.TiffFile(out) as tif:
        meta = tif.imagej_metadata
    assert meta["finterval"] == pytest.approx(2.5) and meta["tunit"] == "min" and meta["fps"] == pytest.approx(4.0)
    restored = read_image(out)
    assert restored.axes == "TYX" and restored.pixel_size["X"] == pytest.approx(0.1)
