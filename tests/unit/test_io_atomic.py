from __future__ import annotations

import pytest

from microrestore.errors import InputError
from microrestore.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, fsync_dir


def test_success_renames_into_place(tmp_path):
    dest = tmp_path / "out.bin"
    with atomic_path(dest) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".out.bin.tmp-")
        tmp.write_bytes(b"abc")
        assert not dest.exists()
    assert dest.read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_failure_removes_temp_and_keeps_old_file(tmp_path):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("writer failed")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_keyboard_interrupt_removes_temp(tmp_path):
    dest = tmp_path / "out.bin"
    with pytest.raises(KeyboardInterrupt), atomic_path(dest) as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_keep_name_yields_same_name_in_temp_folder(tmp_path):
    dest = tmp_path / "x.custom"
    with atomic_path(dest, keep_name=True) as tmp:
        assert tmp.name == "x.custom" and tmp.parent.parent == tmp_path
        tmp.write_text("hi")
    assert dest.read_text() == "hi"
    assert [p.name for p in tmp_path.iterdir()] == ["x.custom"]


def test_nothing_written_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "x"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="folder does not exist"), atomic_path(tmp_path / "no" / "x"):
        pass


def test_write_bytes_and_text(tmp_path):
    assert atomic_write_bytes(tmp_path / "a", b"\x00\x01") == tmp_path / "a"
    atomic_write_text(tmp_path / "b.txt", "héllo\n", fsync=False)
    assert (tmp_path / "a").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    atomic_write_text(tmp_path / "b.txt", "again")
    assert (tmp_path / "b.txt").read_text() == "again"


def test_fsync_dir_flushes_a_folder_and_ignores_errors(tmp_path):
    (tmp_path / "f").write_text("x")
    assert fsync_dir(tmp_path) is None
    assert fsync_dir(str(tmp_path / "missing")) is None  # a flush that cannot be done is not an error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
