"""Lazy arrays (compressed TIFFs, OME-Zarr) and the OME-Zarr reader/writer; zarr tests skip without zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from microrestore import api
from microrestore.errors import InputError
from microrestore.io import ImageData, read_image, write_image
from microrestore.io.lazy import LazyArray
from microrestore.plugins import PredictOptions


class Recorder:
    """An array that records how many elements each read asked for."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape, self.dtype = array, array.shape, array.dtype
        self.reads: list[int] = []

    def __getitem__(self, index: object) -> np.ndarray:
        block = self.array[index]  # type: ignore[index]
        self.reads.append(int(np.size(block)))
        return block


index_item = st.one_of(
    st.integers(-3, 2),
    st.builds(slice, st.none() | st.integers(-4, 4), st.none() | st.integers(-4, 4), st.none() | st.integers(1, 3)),
)


@settings(max_examples=60, deadline=None)
@given(index=st.lists(index_item, min_size=0, max_size=4))
def test_lazy_indexing_equals_numpy_with_unit_axes(index: list[object]) -> None:
    base = np.arange(3 * 4 * 5).reshape(3, 4, 5)
    expanded = base.reshape(3, 1, 4, 5)
    lazy = LazyArray(base, (3, 1, 4, 5))
    key = tuple(index)
    try:
        expected = expanded[key]
    except IndexError:
        with pytest.raises(IndexError):
            lazy[key]
        return
    np.testing.assert_array_equal(lazy[key], expected)


def test_lazy_array_behaves_like_an_array_when_used_whole() -> None:
    base = np.arange(12, dtype=np.uint16).reshape(3, 4)
    lazy = LazyArray(base)
    assert (lazy.shape, lazy.ndim, lazy.size, lazy.nbytes, len(lazy)) == ((3, 4), 2, 12, 24, 3)
    np.testing.assert_array_equal(np.asarray(lazy), base)
    np.testing.assert_array_equal(lazy + 1, base + 1)
    assert lazy.astype(np.float32).dtype == np.float32 and lazy.max() == 11
    np.testing.assert_array_equal(lazy[..., 1], base[..., 1])
    with pytest.raises(TypeError):
        lazy[[0, 1]]
    with pytest.raises(ValueError):
        lazy.reshape(4, 3)


def test_predictor_reads_tiles_not_the_image() -> None:
    import torch

    from microrestore.engine.normalization import PercentileNormalizer
    from microrestore.engine.predictor import NetworkPredictor

    data = (np.random.default_rng(0).poisson(30, (300, 280)) + 100).astype(np.uint16)
    recorder = Recorder(data)
    image = ImageData(LazyArray(recorder), "YX")
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    predictor = NetworkPredictor(net, PercentileNormalizer().to_dict(), PredictOptions(device="cpu", tile=64))
    result = predictor.predict(image)
    reference = predictor.predict(ImageData(data, "YX"))
    np.testing.assert_array_equal(result, reference)
    window = (64 + 2 * predictor.halo) ** 2
    reads = sorted(recorder.reads)
    # One read of the whole (small) image by the normaliser's fit (larger images are subsampled), then tiles.
    assert reads[-1] == data.size and reads[-2] <= window and len(reads) > 20


# ---------------------------------------------------------------------------------------------- with zarr


def test_without_zarr_compressed_tiffs_are_read_whole_and_zarr_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    data = (np.arange(64 * 48) % 300).reshape(64, 48).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", data, compression="zlib")
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now fails
    image = read_image(tmp_path / "c.tif", memmap=True)
    assert isinstance(image.data, np.ndarray)
    np.testing.assert_array_equal(image.data, data)
    (tmp_path / "x.ome.zarr").mkdir()
    with pytest.raises(InputError, match=r"x\.ome\.zarr: OME-Zarr needs the zarr package: pip install"):
        read_image(tmp_path / "x.ome.zarr")


@pytest.fixture
def zarr():
    """The zarr module; tests that need it skip without it (the lazy-array tests above run anyway)."""
    return pytest.importorskip("zarr")


def test_compressed_tiled_tiff_is_read_lazily(tmp_path: Path, zarr) -> None:
    data = (np.arange(200 * 150) % 3000).reshape(200, 150).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", data, compression="zlib", tile=(64, 64))
    image = read_image(tmp_path / "c.tif", memmap=True)
    assert isinstance(image.data, LazyArray)
    np.testing.assert_array_equal(image.data[10:90, 30:140], data[10:90, 30:140])
    assert isinstance(read_image(tmp_path / "c.tif").data, np.ndarray)  # small files are read whole


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
@pytest.mark.parametrize("axes", ["YX", "ZYX", "TCYX"])
def test_ome_zarr_round_trip(tmp_path: Path, zarr, dtype: type, axes: str) -> None:
    shape = {"YX": (30, 20), "ZYX": (3, 30, 20), "TCYX": (2, 2, 30, 20)}[axes]
    data = (np.random.default_rng(1).random(shape) * 200).astype(dtype)
    sizes = {"X": 0.1, "Y": 0.2, "Z": 0.5} if "Z" in axes else {"X": 0.1, "Y": 0.2}
    write_image(tmp_path / "x.ome.zarr", data, axes, pixel_size=sizes)
    image = read_image(tmp_path / "x.ome.zarr")
    assert isinstance(image.data, LazyArray) and image.axes == axes and image.dtype == data.dtype
    assert image.pixel_size == pytest.approx(sizes) and image.metadata["format"] == "ome-zarr"
    np.testing.assert_array_equal(np.asarray(image.data), data)
    attrs = zarr.open_group(str(tmp_path / "x.ome.zarr"), mode="r").attrs
    assert attrs["multiscales"][0]["version"] == "0.4"


def test_ngff_05_and_bare_arrays_are_read(tmp_path: Path, zarr) -> None:
    root = zarr.open_group(str(tmp_path / "v05.zarr"), mode="w", zarr_format=3)
    root.create_array("s0", shape=(8, 6), dtype="uint16", chunks=(4, 6))[:] = np.arange(48).reshape(8, 6)
    axes = [{"name": "y", "type": "space", "unit": "nanometer"}, {"name": "x", "type": "space", "unit": "nanometer"}]
    transform = [{"type": "scale", "scale": [65.0, 65.0]}]
    root.attrs["ome"] = {
        "version": "0.5",
        "multiscales": [{"axes": axes, "datasets": [{"path": "s0", "coordinateTransformations": transform}]}],
    }
    image = read_image(tmp_path / "v05.zarr")
    assert image.axes == "YX" and image.pixel_size == pytest.approx({"Y": 0.065, "X": 0.065})
    np.testing.assert_array_equal(np.asarray(image.data), np.arange(48).reshape(8, 6))
    zarr.create_array(str(tmp_path / "bare.zarr"), shape=(4, 5), dtype="float32")
    with pytest.raises(InputError, match="give its axes with --axes"):
        read_image(tmp_path / "bare.zarr")
    assert read_image(tmp_path / "bare.zarr", axes="YX").shape == (4, 5)


def test_broken_ome_zarr_is_a_one_line_input_error(tmp_path: Path, zarr) -> None:
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    group.attrs["multiscales"] = [{"axes": ["q", "x"], "datasets": [{"path": "0"}]}]
    with pytest.raises(InputError, match=r"g\.zarr: malformed OME-Zarr metadata"):
        read_image(tmp_path / "g.zarr")
    (tmp_path / "junk.zarr").mkdir()
    with pytest.raises(InputError, match=r"junk\.zarr: not"):
        read_image(tmp_path / "junk.zarr")
    with pytest.raises(InputError, match="TCZYX order"):
        write_image(tmp_path / "bad.ome.zarr", np.zeros((4, 5, 3), np.uint8), "YXC")
    assert not (tmp_path / "bad.ome.zarr").exists()


def test_zarr_to_zarr_is_streamed_and_equals_the_tiff_path(tmp_path: Path, zarr) -> None:
    data = (np.random.default_rng(2).poisson(30, (2, 60, 70)) + 100).astype(np.uint16)
    write_image(tmp_path / "x.ome.zarr", data, "ZYX")
    write_image(tmp_path / "x.tif", data, "ZYX")
    options = PredictOptions(params={"gain": 1.0, "read_noise": 1.0, "offset": 100.0})
    (zarr_result,) = api.restore_files(
        [tmp_path / "x.ome.zarr"], tmp_path / "y.ome.zarr", method="nl-means", options=options
    )
    api.restore_files([tmp_path / "x.tif"], tmp_path / "y.tif", method="nl-means", options=options)
    assert zarr_result.streamed
    np.testing.assert_array_equal(
        np.asarray(read_image(tmp_path / "y.ome.zarr").data), tifffile.imread(tmp_path / "y.tif")
    )
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    # Running again replaces the OME-Zarr output (a folder) as it replaces a file.
    api.restore_files([tmp_path / "x.tif"], tmp_path / "y.ome.zarr", method="nl-means", options=options)
    np.testing.assert_array_equal(
        np.asarray(read_image(tmp_path / "y.ome.zarr").data), tifffile.imread(tmp_path / "y.tif")
    )
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    # A folder of images: the .zarr folder is one image, not a folder to list.
    (tmp_path / "many").mkdir()
    write_image(tmp_path / "many" / "a.ome.zarr", data[0], "YX")
    write_image(tmp_path / "many" / "b.tif", data[1], "YX")
    results = api.restore_files([tmp_path / "many"], tmp_path / "out", method="nl-means", options=options)
    assert sorted(r.output.name for r in results) == ["a.ome.zarr", "b.tif"]
