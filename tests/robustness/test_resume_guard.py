"""``--resume`` continues a run only on its own data and its own, unedited checkpoint record.

Before the guard, swapping ``--source`` and ``--target`` (or pointing them at other files) resumed the run on
the wrong data, and a hand-edited step in ``checkpoint-last.json`` was believed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_cli import _assert_one_line_error

TINY = ["--set", "base_filters=4", "--set", "depth=1", "--set", "batch_size=2", "--set", "patch_size=16"]
TINY += ["--set", "checkpoint_every=2", "--set", "validation_every=100", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("resume-data")
    simulate("denoise", root, n=2, seed=5, photons=20, shape=(48, 48))
    return root


@pytest.fixture
def run(cli, data: Path, tmp_path: Path, one_torch_thread: None):
    """A finished 2-step CARE run in ``tmp_path/model``; returns ``train(source, target, *more)``."""
    out = tmp_path / "model"

    def train(source: Path, target: Path, *more: str):
        return cli("train", "care", "--source", source, "--target", target, "-o", out, *TINY, *more)

    result = train(data / "noisy", data / "clean", "--steps", "2")
    assert result.exit_code == 0, result.output
    return train


def _record(tmp_path: Path) -> Path:
    return tmp_path / "model" / "checkpoints" / "checkpoint-last.json"


def test_same_data_resumes(run, data: Path) -> None:
    result = run(data / "noisy", data / "clean", "--steps", "4", "--resume")
    assert result.exit_code == 0, result.output


def test_a_copy_of_the_data_elsewhere_resumes(run, data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    result = run(copy / "noisy", copy / "clean", "--steps", "4", "--resume")
    assert result.exit_code == 0, result.output


def test_swapped_source_and_target_are_refused(run, data: Path, tmp_path: Path) -> None:
    before = _record(tmp_path).read_text()
    result = run(data / "clean", data / "noisy", "--steps", "4", "--resume")
    _assert_one_line_error(result, "checkpoint-last.safetensors", "source and target data are swapped", "--resume")
    assert _record(tmp_path).read_text() == before  # nothing trained, nothing saved


def test_other_target_data_are_refused(run, data: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(data / "clean", other)
    first = sorted(other.glob("*.tif"))[0]
    first.write_bytes(first.read_bytes()[:-1] + bytes([first.read_bytes()[-1] ^ 1]))  # one bit of one pixel
    result = run(data / "noisy", other, "--steps", "4", "--resume")
    _assert_one_line_error(result, "other target files or contents", "another output folder")


def test_hand_edited_step_is_refused(run, data: Path, tmp_path: Path) -> None:
    record = _record(tmp_path)
    document = json.loads(record.read_text())
    document["step"] = 1
    record.write_text(json.dumps(document, indent=1))
    result = run(data / "noisy", data / "clean", "--steps", "4", "--resume")
    _assert_one_line_error(result, str(record), "checkpoint record was modified", "without --resume")


def test_hand_edited_step_with_its_checksum_dropped_is_refused(run, data: Path, tmp_path: Path) -> None:
    """A record without its checksum (as an older version wrote) still has to agree with its tensors' step."""
    record = _record(tmp_path)
    document = json.loads(record.read_text())
    del document["record_sha256"]
    document["step"] = 1
    record.write_text(json.dumps(document, indent=1))
    result = run(data / "noisy", data / "clean", "--steps", "4", "--resume")
    _assert_one_line_error(result, str(record), "says step 1, its tensors were saved at step 2")


def test_edited_data_fingerprint_is_refused(run, data: Path, tmp_path: Path) -> None:
    """Editing the recorded fingerprint to match other data breaks the record's checksum."""
    record = _record(tmp_path)
    document = json.loads(record.read_text())
    document["extra"]["data"]["source"], document["extra"]["data"]["target"] = (
        document["extra"]["data"]["target"],
        document["extra"]["data"]["source"],
    )
    record.write_text(json.dumps(document, indent=1))
    result = run(data / "clean", data / "noisy", "--steps", "4", "--resume")
    _assert_one_line_error(result, "checksum does not match")


def test_fingerprint_sees_roles_counts_and_contents(tmp_path: Path) -> None:
    from microrestore.engine.fingerprint import _describe, data_fingerprint

    a, b, c = (tmp_path / n for n in ("a.tif", "b.tif", "c.tif"))
    a.write_bytes(b"1" * 10)
    b.write_bytes(b"2" * 10)
    c.write_bytes(b"3" * (3 << 20))  # larger than both hashed ends
    saved = data_fingerprint([a, c], [b])
    assert _describe(saved, data_fingerprint([a, c], [b])) is None
    assert _describe(saved, data_fingerprint([b], [a, c])) == "the source and target data are swapped"
    assert "2 target files instead of 1" in _describe(saved, data_fingerprint([a, c], [b, a]))
    raw = bytearray(c.read_bytes())
    raw[-5] ^= 1  # in the last MiB
    c.write_bytes(bytes(raw))
    assert "other source files or contents" in _describe(saved, data_fingerprint([a, c], [b]))
