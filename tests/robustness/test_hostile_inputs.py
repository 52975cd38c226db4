"""A corpus of hostile inputs: each gives one error line naming the problem, exit status 2, no traceback and
no output file.

Cases already covered elsewhere are not repeated here: garbage and empty ``.tif`` files, truncated TIFFs,
missing files, NaN, ``--axes`` that contradict the image, unknown methods and models of another method
(``tests/e2e/test_cli.py``); unknown ``--set`` keys (``tests/integration/test_care.py``); zip path traversal
and zip bombs (``tests/unit/test_zoo_package.py``); tampered checkpoints (``tests/unit/test_engine_checkpoints.py``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.e2e.test_cli import _assert_one_line_error
from tests.robustness.corpus import care_model as _care_model

NOISE = ["--set", "gain=1", "--set", "read_noise=1", "--set", "offset=100"]


def _image(shape: tuple[int, ...] = (64, 64), dtype: type = np.uint16) -> np.ndarray:
    return (np.random.default_rng(0).poisson(30, shape) + 100).astype(dtype)


def _patch(path: Path, tag: str, value: int) -> None:
    """Overwrite a LONG tag value of the first page in place."""
    with tifffile.TiffFile(path) as tif:
        entry = tif.pages.first.tags[tag]
        offset, kind = entry.valueoffset, entry.dtype
    raw = bytearray(path.read_bytes())
    raw[offset : offset + 4] = struct.pack("<I" if kind == 4 else "<HH", *((value,) if kind == 4 else (value, 0)))
    path.write_bytes(bytes(raw))


def corrupt_compressed(tmp: Path) -> tuple[Path, str]:
    path = tmp / "flipped.tif"
    tifffile.imwrite(path, _image((128, 128)), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        start, length = tif.pages.first.dataoffsets[0], tif.pages.first.databytecounts[0]
    raw = bytearray(path.read_bytes())
    for i in range(start + 2, start + length - 4, 7):  # damage the deflate stream, keep the structure
        raw[i] ^= 0xA5
    path.write_bytes(bytes(raw))
    return path, "not a readable TIFF"


def bad_ifd_offset(tmp: Path) -> tuple[Path, str]:
    path = tmp / "ifd.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 10_000_000) + bytes(64))  # first IFD far past the end
    return path, "not a readable TIFF"


def zero_size(tmp: Path) -> tuple[Path, str]:
    path = tmp / "zero.tif"
    with pytest.warns(UserWarning):
        tifffile.imwrite(path, np.zeros((0, 5), np.uint16))
    return path, "empty image (shape (0, 5))"


def infinite(tmp: Path) -> tuple[Path, str]:
    path = tmp / "inf.tif"
    data = _image().astype(np.float32)
    data[5, 6], data[7, 8] = np.inf, -np.inf
    tifffile.imwrite(path, data)
    return path, "contains 2 NaN/Inf values"


def dimension_bomb(tmp: Path) -> tuple[Path, str]:
    path = tmp / "bomb.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    _patch(path, "ImageWidth", 2**31 - 1)
    _patch(path, "ImageLength", 2**31 - 1)
    return path, "image too large"


def imagej_page_bomb(tmp: Path) -> tuple[Path, str]:
    path = tmp / "pages.tif"
    tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint16), imagej=True, metadata={"axes": "ZYX"})
    old, new = b"images=2\nslices=2\nhyperstack=true\n", b"images=999999999\nslices=999999999\n"
    assert len(old) == len(new)  # same length: the file's offsets stay valid, only the claim changes
    path.write_bytes(path.read_bytes().replace(old, new, 1))
    return path, "truncated: expected 128000000208 bytes"


def text_file(tmp: Path) -> tuple[Path, str]:
    path = tmp / "notes.txt"
    path.write_text("not an image\n")
    return path, "unsupported file type '.txt'"


def png_named_tif(tmp: Path) -> tuple[Path, str]:
    path = tmp / "photo.tif"
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)
    path.write_bytes(png + struct.pack(">I", zlib.crc32(png[12:])) + bytes(32))
    return path, "does not start with a TIFF header"


def five_dims_without_axes(tmp: Path) -> tuple[Path, str]:
    path = tmp / "nd.tif"
    tifffile.imwrite(path, np.zeros((2, 2, 2, 8, 8), np.uint16), metadata=None)
    return path, "--axes"


def empty_folder(tmp: Path) -> tuple[Path, str]:
    path = tmp / "nothing"
    path.mkdir()
    (path / "readme.md").write_text("no images here")
    return path, "no image files"


CASES: dict[str, Callable[[Path], tuple[Path, str]]] = {
    "corrupt-compressed-data": corrupt_compressed,
    "ifd-past-the-end": bad_ifd_offset,
    "zero-size": zero_size,
    "inf-values": infinite,
    "dimension-bomb-header": dimension_bomb,
    "imagej-page-count-bomb": imagej_page_bomb,
    "text-file": text_file,
    "png-named-tif": png_named_tif,
    "5d-without-axes": five_dims_without_axes,
    "folder-without-images": empty_folder,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_one_line_exit_2_and_no_output(cli, tmp_path: Path, case: str) -> None:
    src, needle = CASES[case](tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("denoise", src, "-o", out / "result.tif", "--method", "nl-means", *NOISE)
    _assert_one_line_error(result, src.name, needle)
    assert list(out.iterdir()) == []


def test_one_pixel_images_restore_or_fail_in_one_line(cli, tmp_path: Path) -> None:
    for shape in ((1, 1), (1, 40)):
        src = tmp_path / f"px{shape[1]}.tif"
        tifffile.imwrite(src, np.full(shape, 150, np.uint16))
        # A network method restores them (reflect padding of a one-pixel axis repeats the pixel) ...
        result = cli("denoise", src, "-o", tmp_path / "care.tif", "--method", "care", "-q", "--overwrite")
        assert result.exit_code == 0, result.output
        assert tifffile.imread(tmp_path / "care.tif").shape == shape
        # ... nl-means cannot estimate a noise model from them and says so.
        result = cli("denoise", src, "-o", tmp_path / "nlm.tif", "--method", "nl-means")
        _assert_one_line_error(result, src.name, "noise model")
        assert not (tmp_path / "nlm.tif").exists()


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "not-yaml", "swapped-weights"])
def test_damaged_model_folders(cli, tmp_path: Path, damage: str) -> None:
    model = _care_model(tmp_path / "model")
    weights = model / "weights.safetensors"
    if damage == "flipped-byte":
        raw = bytearray(weights.read_bytes())
        raw[-3] ^= 0xFF
        weights.write_bytes(bytes(raw))
        needle = "weights.safetensors"
    elif damage == "truncated":
        weights.write_bytes(weights.read_bytes()[:100])
        needle = "weights.safetensors"
    elif damage == "not-yaml":
        (model / "config.yaml").write_text("format: [unclosed\n")
        needle = "config.yaml"
    else:  # weights of another network under the recorded checksum's name: the checksum catches it
        other = _care_model(tmp_path / "other")
        weights.write_bytes((other / "weights.safetensors").read_bytes())
        needle = "weights.safetensors"
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image())
    result = cli("denoise", src, "-o", tmp_path / "o.tif", "--method", "care", "--model", model)
    _assert_one_line_error(result, needle)
    assert not (tmp_path / "o.tif").exists()


def test_config_file_with_unknown_keys(cli, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("steps: 10\nlearning_rat: 0.001\n")
    tifffile.imwrite(tmp_path / "a.tif", _image())
    result = cli(
        "train",
        "care",
        "--source",
        tmp_path,
        "--target",
        tmp_path,
        "-o",
        tmp_path / "m",
        "-c",
        tmp_path / "config.yaml",
    )
    _assert_one_line_error(result, "learning_rat")
    assert not (tmp_path / "m").exists()


def test_broken_ome_zarr_on_the_command_line(cli, tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(tmp_path / "broken.ome.zarr"), mode="w", zarr_format=2)
    group.attrs["multiscales"] = [{"axes": ["y", "x"], "datasets": [{"path": "missing"}]}]
    result = cli("denoise", tmp_path / "broken.ome.zarr", "-o", tmp_path / "o.tif", "--method", "nl-means")
    _assert_one_line_error(result, "broken.ome.zarr", "OME-Zarr")
    assert not (tmp_path / "o.tif").exists()
