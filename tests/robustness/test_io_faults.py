"""I/O faults: full disks, read-only and impossible destinations, inputs truncated while in use, decompression
bombs, long names, kills during checkpoint saves and the temporary files they leave.

Every fault ends in one line naming the user's file (never a hidden temporary name or a cache copy), a
non-zero exit status, no traceback, no partial output and no temporary file left behind. Faults that used to
kill the process with SIGBUS run in a child process, so that a regression fails the test instead of killing
the test run. The small-disk cases mount a 1 MiB tmpfs and skip where mounting is impossible; the same faults
are injected by monkeypatching (``posix_fallocate``, ``pwrite``) in tests that always run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

from microrestore.io import atomic, read_image
from microrestore.io.atomic import atomic_path, clean_stale_temps, temp_name

ROOT = Path(__file__).resolve().parents[2]
NLM = ["--method", "nl-means", "-q", "--overwrite"]  # several tests keep an old output in place
NLM_KEEP = ["--method", "nl-means", "-q"]


def _image(shape: tuple[int, ...] = (64, 64), dtype: type = np.uint16) -> np.ndarray:
    return (np.random.default_rng(0).poisson(30, shape) + 100).astype(dtype)


def _assert_one_line(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert ".tmp-" not in lines[0], lines[0]  # the user's file, never the temporary name
    return lines[0]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or p.name.endswith(".partial"))


@contextlib.contextmanager
def _small_disk(folder: Path, size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (skips the test where mounting is impossible)."""
    folder.mkdir()
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _run_child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this checkout first on the path (a SIGBUS kills only it)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, env=env, timeout=300
    )


class _Child:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.exit_code, self.stdout, self.stderr = done.returncode, done.stdout, done.stderr


# ------------------------------------------------------------------------------------------ full disk

STREAMED_CLI = """
import sys
from microrestore import api
from microrestore.cli.app import main
api.STREAM_BYTES = 0  # stream every output, as for images larger than the memory
sys.exit(main(sys.argv[1:]))
"""


def test_full_disk_during_a_streamed_output_is_one_line_not_sigbus(tmp_path: Path) -> None:
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image((768, 768)))  # 1.2 MB of output for a 1 MiB disk
    with _small_disk(tmp_path / "disk") as disk:
        (disk / "out.tif").write_bytes(b"old")  # an old output is kept
        result = _Child(_run_child(STREAMED_CLI, "denoise", str(src), "-o", str(disk / "out.tif"), *NLM))
        line = _assert_one_line(result, 1, str(disk / "out.tif"), "not enough space", "bytes needed")
        assert result.exit_code != 135, line
        assert sorted(p.name for p in disk.iterdir()) == ["out.tif"]
        assert (disk / "out.tif").read_bytes() == b"old"


def test_full_disk_while_writing_in_memory_output(cli, tmp_path: Path) -> None:
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image((768, 768)))
    with _small_disk(tmp_path / "disk") as disk:
        result = cli("denoise", src, "-o", disk / "out.tif", *NLM)
        _assert_one_line(result, 1, str(disk / "out.tif"), "no space left on the device", "bytes needed")
        assert list(disk.iterdir()) == []


def test_read_only_folder(cli, tmp_path: Path) -> None:
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image())
    with _small_disk(tmp_path / "disk") as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        result = cli("denoise", src, "-o", disk / "out.tif", *NLM)
        _assert_one_line(result, 2, str(disk / "out.tif"), "read-only")


def test_no_room_to_reserve_a_streamed_output_is_reported_before_computing(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same fault as the small disk, injected: ``posix_fallocate`` fails with ENOSPC (always runs)."""
    from microrestore import api

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def never(*args, **kwargs):
        raise AssertionError("nothing may be computed when the output has no room")

    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, _image())
    out.write_bytes(b"old")
    monkeypatch.setattr(api, "STREAM_BYTES", 0)
    monkeypatch.setattr(os, "posix_fallocate", full)
    from microrestore_nlmeans import predictor as nlm

    monkeypatch.setattr(nlm.NLMeansPredictor, "predict", never, raising=False)
    result = cli("denoise", src, "-o", out, *NLM)
    _assert_one_line(result, 1, str(out), "not enough space", "bytes needed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]
    assert out.read_bytes() == b"old"


def test_failing_writes_of_a_streamed_output_are_one_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file system that cannot reserve space, then fills up: ``pwrite`` fails with ENOSPC (always runs)."""
    from microrestore import api
    from microrestore.io import rawfile

    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    def full(fd: int, data: bytes, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, _image())
    monkeypatch.setattr(api, "STREAM_BYTES", 0)
    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    monkeypatch.setattr(rawfile.os, "pwrite", full)
    result = cli("denoise", src, "-o", out, *NLM)
    _assert_one_line(result, 1, str(out), "no space left on the device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_short_write_of_an_in_memory_output_names_the_file(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy reports a full disk as ``OSError: N requested and M written`` without errno or file name."""
    real = tifffile.imwrite

    def short(path, data=None, **kwargs):
        real(path, data, **kwargs)
        raise OSError(f"{data.nbytes} requested and 1048400 written")

    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, _image())
    out.write_bytes(b"old")
    monkeypatch.setattr("microrestore.io.images.tifffile.imwrite", short)
    result = cli("denoise", src, "-o", out, *NLM)
    _assert_one_line(result, 1, str(out), "no space left on the device", "bytes needed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]
    assert out.read_bytes() == b"old"


def test_unwritable_temporary_file_is_reported_under_the_output_name(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(path: Path, *, create: bool) -> int:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image())
    monkeypatch.setattr(atomic, "_open_locked", read_only)
    result = cli("denoise", src, "-o", tmp_path / "out.tif", *NLM)
    _assert_one_line(result, 2, str(tmp_path / "out.tif"), "read-only")


@pytest.mark.parametrize("many", [False, True])
def test_parent_path_is_a_file(cli, tmp_path: Path, many: bool) -> None:
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image())
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / ("sub" if many else "out.tif")
    sources = [src, src.with_name("in2.tif")] if many else [src]
    if many:
        tifffile.imwrite(sources[1], _image())
    result = cli("denoise", *sources, "-o", target, *NLM)
    _assert_one_line(result, 2, str(target), "afile is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "x"


# ------------------------------------------------------------------------------------------ truncated inputs

TRUNCATING_CLI = """
import os, sys
from microrestore import api
from microrestore.cli.app import main
api.STREAM_BYTES = 0  # read the input lazily and stream the output
checked = api.check_image

def check_then_truncate(image):
    checked(image)
    if image.path is not None and image.path.name.startswith("cut"):
        os.truncate(image.path, 4096)  # another program shortens the file while it is being restored

api.check_image = check_then_truncate
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("suffix", [".tif", ".mrc"])
def test_input_truncated_while_in_use(tmp_path: Path, suffix: str) -> None:
    from microrestore.io import write_image

    src = tmp_path / f"cut{suffix}"
    write_image(src, _image((256, 256)).astype(np.float32), "YX")
    result = _Child(_run_child(TRUNCATING_CLI, "denoise", str(src), "-o", str(tmp_path / "out.tif"), *NLM))
    assert result.exit_code != -7 and result.exit_code != 135, "SIGBUS"
    _assert_one_line(result, 2, str(src), "truncated while in use")
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_lazy_read_of_a_truncated_file_is_an_error_not_a_signal(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, _image((4, 128, 128)), photometric="minisblack", metadata={"axes": "ZYX"})
    image = read_image(path, memmap=True)
    np.testing.assert_array_equal(image.data[1], _image((4, 128, 128))[1])
    os.truncate(path, 20_000)
    from microrestore.errors import InputError

    with pytest.raises(InputError, match=r"big\.tif: the file was truncated while in use"):
        image.data[3, 100:110]


# ------------------------------------------------------------------------------------------ bombs


def tile_bomb(path: Path, side: int = 72_000, tile: int = 1024) -> Path:
    """A 42 KB zlib TIFF declaring ``side`` x ``side`` uint16 pixels (10 GB): every tile points to one
    compressed tile of zeros, the classic TIFF decompression bomb."""
    count = (-(-side // tile)) ** 2
    data = zlib.compress(bytes(tile * tile * 2), 9)
    tags = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 16), (259, 3, 1, 8), (262, 3, 1, 1)]
    tags += [(277, 3, 1, 1), (322, 3, 1, tile), (323, 3, 1, tile)]
    offsets_at = 8 + 2 + 10 * 12 + 4
    counts_at = offsets_at + 4 * count
    tags += [(324, 4, count, offsets_at), (325, 4, count, counts_at)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags) + struct.pack("<I", 0)
    data_at = counts_at + 4 * count
    tables = struct.pack(f"<{count}I", *[data_at] * count) + struct.pack(f"<{count}I", *[len(data)] * count)
    path.write_bytes(struct.pack("<2sHI", b"II", 42, 8) + ifd + tables + data)
    return path


def test_tiff_decompression_bomb_is_refused_before_decoding(cli, tmp_path: Path) -> None:
    bomb = tile_bomb(tmp_path / "bomb.tif")
    assert bomb.stat().st_size < 100_000
    result = cli("denoise", bomb, "-o", tmp_path / "out.tif", *NLM)
    _assert_one_line(result, 2, str(bomb), "decompression bomb")
    assert not (tmp_path / "out.tif").exists()


def test_legitimately_compressible_images_are_still_read(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "black.tif", np.zeros((4096, 4096), np.uint8), compression="zlib")  # ~1000-fold
    assert read_image(tmp_path / "black.tif").shape == (4096, 4096)


def test_image_larger_than_memory_is_refused_or_read_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from microrestore.errors import InputError
    from microrestore.io import tiff
    from microrestore.io.lazy import LazyArray

    path = tmp_path / "c.tif"
    tifffile.imwrite(path, _image((256, 256)), compression="zlib", tile=(64, 64))
    monkeypatch.setattr(tiff, "_available_memory", lambda: 1000)
    with pytest.raises(InputError, match=r"c\.tif: decoding the image needs .* of memory"):
        read_image(path, memmap=False)
    with contextlib.suppress(ImportError):
        import zarr  # noqa: F401

        image = read_image(path)  # chunk by chunk rather than whole
        assert isinstance(image.data, LazyArray)
        np.testing.assert_array_equal(image.data[10:20, 60:70], _image((256, 256))[10:20, 60:70])


# ------------------------------------------------------------------------------------------ names


@pytest.mark.parametrize("length", [242, 250, 255])
def test_longest_output_names_can_be_written(cli, tmp_path: Path, length: int) -> None:
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _image())
    name = "a" * (length - 4) + ".tif"
    result = cli("denoise", src, "-o", tmp_path / name, *NLM)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "in.tif"])
    tmp = temp_name(tmp_path / name)
    assert len(tmp.name.encode()) <= 255 and tmp.name.startswith(".aaa")


# ------------------------------------------------------------------------------------------ up-front checks


def test_mrc_output_that_cannot_hold_the_data_is_refused_naming_it(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args, **kwargs):
        raise AssertionError("nothing may be computed for an output that cannot be written")

    from microrestore_nlmeans import predictor as nlm

    monkeypatch.setattr(nlm.NLMeansPredictor, "predict", never, raising=False)
    tifffile.imwrite(tmp_path / "u8.tif", _image(dtype=np.uint8))
    # --dtype same: the input's uint8, which MRC cannot hold (--dtype auto would write float32, which it can)
    result = cli("denoise", tmp_path / "u8.tif", "-o", tmp_path / "x.mrc", "--dtype", "same", *NLM)
    _assert_one_line(result, 2, str(tmp_path / "x.mrc"), "cannot hold uint8")
    tifffile.imwrite(tmp_path / "4d.tif", _image((2, 2, 32, 32)), imagej=True, metadata={"axes": "TZYX"})
    result = cli("denoise", tmp_path / "4d.tif", "-o", tmp_path / "y.mrc", *NLM)
    _assert_one_line(result, 2, str(tmp_path / "y.mrc"), "2D or 3D")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4d.tif", "u8.tif"]


def test_complex_mrc_input_is_refused(cli, tmp_path: Path) -> None:
    from microrestore.io.mrc import write_mrc

    write_mrc(tmp_path / "otf.mrc", (np.ones((32, 32)) + 1j).astype(np.complex64), "YX")
    result = cli("denoise", tmp_path / "otf.mrc", "-o", tmp_path / "x.mrc", *NLM)
    _assert_one_line(result, 2, str(tmp_path / "otf.mrc"), "complex")
    assert not (tmp_path / "x.mrc").exists()


def test_tampered_weights_in_a_package_name_the_zip(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from microrestore import zoo
    from microrestore.zoo import package

    monkeypatch.setenv("MICRORESTORE_CACHE", str(tmp_path / "cache"))
    with zipfile.ZipFile(zoo.BUNDLED_DIR / "care-demo-2d.zip") as archive:
        members = {name: archive.read(name) for name in package.MODEL_MEMBERS}
    weights = bytearray(members["weights.safetensors"])
    weights[-3] ^= 0xFF
    bad = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.yaml", members["config.yaml"])
        archive.writestr("weights.safetensors", bytes(weights))
    tifffile.imwrite(tmp_path / "in.tif", _image())
    for _ in range(2):  # fresh extraction, then the cached copy
        result = cli("denoise", tmp_path / "in.tif", "-o", tmp_path / "o.tif", "--method", "care", "--model", bad, "-q")
        line = _assert_one_line(result, 2, str(bad), "corrupt or was modified")
        assert "cache" not in line
    assert not (tmp_path / "o.tif").exists()


# ------------------------------------------------------------------------------------------ leftovers


def _age(path: Path, seconds: float = 10 * 86400) -> Path:
    old = time.time() - seconds
    os.utime(path, (old, old))
    return path


def test_successful_runs_remove_stale_temporary_files_of_their_outputs(cli, tmp_path: Path) -> None:
    src, out = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, _image())
    stale = temp_name(out)  # the file itself, from a killed streamed write
    stale.write_bytes(b"x" * 100)
    _age(stale)
    stale_dir = temp_name(out)  # a folder of a killed plugin writer
    stale_dir.mkdir()
    _age(stale_dir)
    other = tmp_path / ".other.tif.tmp-0123abcd"
    other.write_bytes(b"not ours")
    _age(other)
    fresh = temp_name(out)  # written right now by another process that has not locked it yet
    fresh.write_bytes(b"y")
    held = temp_name(out)  # in use: its writer holds the lock
    held.write_bytes(b"z")
    _age(held)
    import fcntl

    with open(held, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        out.write_bytes(b"finished before")
        result = cli("denoise", src, "-o", out, "--skip-existing", *NLM_KEEP)
        assert result.exit_code == 0, result.stderr
        assert out.read_bytes() == b"finished before"  # skipped
        assert _leftovers(tmp_path) == sorted([other.name, fresh.name, held.name])
    result = cli("denoise", src, "-o", out, *NLM)  # a successful write cleans too (the lock is gone now)
    assert result.exit_code == 0
    with atomic_path(out) as tmp:
        tmp.write_bytes(b"again")
    assert _leftovers(tmp_path) == sorted([other.name, fresh.name])  # newer than this process: never touched


def test_clean_stale_temps_knows_the_shortened_names_of_long_outputs(tmp_path: Path) -> None:
    out = tmp_path / ("b" * 251 + ".tif")
    stale = temp_name(out)
    stale.write_bytes(b"x")
    _age(stale)
    assert clean_stale_temps([out]) == [stale]
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ first checkpoint


@pytest.mark.parametrize("killed_at", ["before-renames", "between-renames", "while-writing"])
def test_kill_during_the_first_checkpoint_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], killed_at: str
) -> None:
    from microrestore.engine import checkpoints as ckpt
    from microrestore.engine.trainer import Trainer
    from tests.unit.test_engine_trainer import Tiny, _config, sample

    real_replace, real_write = ckpt.os.replace, ckpt._write_text_durable
    renames: list[object] = []
    dead = False  # once killed, the trainer's attempt to save again on KeyboardInterrupt dies too

    def killed_replace(src: object, dst: object) -> None:
        nonlocal dead
        if Path(str(dst)).name.startswith("checkpoint-last"):
            renames.append(dst)
            dead = dead or killed_at == "before-renames" or len(renames) == 2
            if dead:
                raise KeyboardInterrupt
        real_replace(src, dst)

    def killed_write(path: Path, text: str) -> None:
        Path(path).write_text(text[: len(text) // 2])  # the record half written
        raise KeyboardInterrupt

    if killed_at == "while-writing":
        monkeypatch.setattr(ckpt, "_write_text_durable", killed_write)
    else:
        monkeypatch.setattr(ckpt.os, "replace", killed_replace)
    with pytest.raises(KeyboardInterrupt):
        Trainer(Tiny(), sample, tmp_path, _config(steps=20), progress=False).fit()
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    monkeypatch.setattr(ckpt, "_write_text_durable", real_write)
    folder = tmp_path / "checkpoints"
    assert not (folder / "checkpoint-last.json").exists() and _leftovers(folder)
    capsys.readouterr()
    result = Trainer(Tiny(), sample, tmp_path, _config(steps=20), progress=False).fit(resume=True)
    assert result["step"] == 20
    note = capsys.readouterr().err
    if killed_at == "while-writing":
        assert "nothing to resume, starting from step 0" in note and str(folder) in note
    else:
        assert note == ""
    assert _leftovers(folder) == []
    assert json.loads((folder / "checkpoint-last.json").read_text())["step"] == 20
    uninterrupted = Trainer(Tiny(), sample, tmp_path / "again", _config(steps=20), progress=False).fit()
    assert result["loss"] == uninterrupted["loss"]
