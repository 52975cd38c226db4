from __future__ import annotations

import types

import numpy as np
import pytest
import tifffile

from microrestore import formats
from microrestore.errors import InputError
from microrestore.io.inputs import IMAGE_SUFFIXES, expand_inputs, image_suffixes, inputs_are_many, plan_outputs


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    return path


@pytest.fixture
def folder(tmp_path):
    for name in ["img10.tif", "img2.tif", "img1.tiff", "b.mrc", "notes.txt", ".hidden.tif"]:
        (tmp_path / "in" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"x")
    (tmp_path / "in" / "sub").mkdir()
    (tmp_path / "in" / "sub" / "deep.tif").write_bytes(b"x")
    return tmp_path / "in"


def test_suffixes():
    assert {".tif", ".tiff", ".mrc"} <= set(IMAGE_SUFFIXES)
    assert set(IMAGE_SUFFIXES) <= set(image_suffixes())


def test_folder_lists_images_in_natural_order(folder):
    names = [p.name for p in expand_inputs([str(folder)])]
    assert names == ["b.mrc", "img1.tiff", "img2.tif", "img10.tif"]


def test_single_file_and_dedup(folder):
    one = str(folder / "img2.tif")
    result = expand_inputs([one, str(folder), one])
    assert result[0].name == "img2.tif"
    assert len(result) == 4
    assert len(set(result)) == len(result)


def test_explicit_file_with_other_suffix_is_kept(folder):
    assert expand_inputs([str(folder / "notes.txt")])[0].name == "notes.txt"


def test_glob(folder):
    assert [p.name for p in expand_inputs([str(folder / "img*.tif")])] == ["img10.tif", "img2.tif"]
    assert [p.name for p in expand_inputs([str(folder / "**" / "*.tif")])] == ["img10.tif", "img2.tif", "deep.tif"]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        expand_inputs([str(tmp_path / "nope.tif")])


def test_glob_without_matches(tmp_path, folder):
    with pytest.raises(InputError, match="no files match"):
        expand_inputs([str(tmp_path / "*.nothing")])
    with pytest.raises(InputError, match="none is an image"):
        expand_inputs([str(folder / "*.txt")])


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        expand_inputs([str(tmp_path / "empty")])


def test_inputs_are_many(folder):
    assert not inputs_are_many([str(folder / "img2.tif")])
    assert inputs_are_many([str(folder)])
    assert inputs_are_many([str(folder / "*.tif")])
    assert inputs_are_many(["a.tif", "b.tif"])


def test_plugin_reader_suffixes_join_folder_listing(monkeypatch, folder):
    (folder / "x.czi").write_bytes(b"x")
    reader = types.SimpleNamespace(suffixes=(".czi",))
    registry = types.SimpleNamespace(readers=[reader], writers=[])
    monkeypatch.setattr(formats, "_source", lambda: registry)
    assert "x.czi" in [p.name for p in expand_inputs([str(folder)])]
    # a suffix only a reader handles becomes .tif on output
    out = plan_outputs([folder / "x.czi"], folder.parent / "out", many=True)
    assert out[0].name == "x.tif"


def test_plan_single_file(tmp_path):
    src = _touch(tmp_path / "a.tif")
    assert plan_outputs([src], tmp_path / "res.tif", many=False) == [tmp_path / "res.tif"]
    (tmp_path / "outdir").mkdir()
    assert plan_outputs([src], tmp_path / "outdir", many=False) == [tmp_path / "outdir" / "a.tif"]
    assert plan_outputs([src], tmp_path / "new" / "r.tif", many=False) == [tmp_path / "new" / "r.tif"]
    assert (tmp_path / "new").is_dir()


def test_plan_single_unwritable_suffix(tmp_path):
    src = _touch(tmp_path / "a.tif")
    with pytest.raises(InputError, match=r"cannot write '\.png'"):
        plan_outputs([src], tmp_path / "out.png", many=False)


def test_plan_single_without_suffix_is_a_folder(tmp_path):
    src = _touch(tmp_path / "a.mrc")
    assert plan_outputs([src], tmp_path / "results", many=False) == [tmp_path / "results" / "a.mrc"]
    assert plan_outputs([src], tmp_path / "results", many=False, suffix="tif") == [tmp_path / "results" / "a.tif"]


def test_plan_many_creates_folder_and_keeps_names(tmp_path):
    srcs = [_touch(tmp_path / "in" / "a.tif"), _touch(tmp_path / "in" / "b.tiff")]
    out = plan_outputs(srcs, tmp_path / "out", many=True)
    assert out == [tmp_path / "out" / "a.tif", tmp_path / "out" / "b.tiff"]
    assert (tmp_path / "out").is_dir()
    assert plan_outputs(srcs[:1], tmp_path / "out2", many=True) == [tmp_path / "out2" / "a.tif"]


def test_plan_many_into_existing_file_is_refused(tmp_path):
    srcs = [_touch(tmp_path / "a.tif"), _touch(tmp_path / "b.tif")]
    with pytest.raises(InputError, match="must be a folder"):
        plan_outputs(srcs, tmp_path / "a.tif", many=True)


def test_plan_refuses_overwriting_input(tmp_path):
    src = _touch(tmp_path / "a.tif")
    with pytest.raises(InputError, match="overwrite an input"):
        plan_outputs([src], src, many=False)
    with pytest.raises(InputError, match="overwrite an input"):
        plan_outputs([src], tmp_path, many=True)


def test_plan_detects_name_clash(tmp_path):
    srcs = [_touch(tmp_path / "x" / "img.tif"), _touch(tmp_path / "y" / "img.tif")]
    with pytest.raises(InputError, match="would both be written"):
        plan_outputs(srcs, tmp_path / "out", many=True)


def test_plan_no_inputs(tmp_path):
    with pytest.raises(InputError, match="no input"):
        plan_outputs([], tmp_path / "o", many=True)
