"""Front-end hooks (the napari plugin's): training steps reported, Cancel checkpoints and stops, per thread."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from microrestore.engine import observe
from microrestore.engine.checkpoints import read_checkpoint_record
from microrestore.engine.trainer import Trainer
from tests.unit.test_engine_trainer import Tiny, _config, sample


def test_steps_are_reported_with_the_logged_losses(tmp_path: Path) -> None:
    seen: list[tuple[int, int, dict[str, float]]] = []
    with observe.observed(observe.JobObserver(on_training=lambda s, t, v: seen.append((s, t, dict(v))))):
        Trainer(Tiny(), sample, tmp_path, _config(steps=6, log_every=3), progress=False).fit()
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5, 6] and {t for _, t, _ in seen} == {6}
    assert "loss" in seen[2][2] and "loss" in seen[5][2] and seen[0][2] == {}


def test_cancel_writes_a_checkpoint_then_raises_and_resume_continues(tmp_path: Path) -> None:
    steps: list[int] = []

    def cancelled() -> bool:
        return len(steps) >= 3

    watcher = observe.JobObserver(on_training=lambda s, t, v: steps.append(s), cancelled=cancelled)
    with observe.observed(watcher), pytest.raises(observe.Cancelled, match="checkpoint written at step 4"):
        Trainer(Tiny(), sample, tmp_path, _config(steps=20, checkpoint_every=10), progress=False).fit()
    assert read_checkpoint_record(tmp_path / "checkpoints")["step"] == 4
    row = Trainer(Tiny(), sample, tmp_path, _config(steps=20, checkpoint_every=10), progress=False).fit(resume=True)
    assert row["step"] == 20


def test_no_observer_changes_nothing(tmp_path: Path) -> None:
    assert observe.current() is None and not observe.cancel_requested()
    observe.check_cancelled()
    observe.training_step(1, 2, {"loss": 1.0})
    row = Trainer(Tiny(), sample, tmp_path, _config(steps=4), progress=False).fit()
    assert row["step"] == 4


def test_observers_belong_to_their_thread() -> None:
    seen: dict[str, Any] = {}
    with observe.observed(observe.JobObserver(cancelled=lambda: True)):
        assert observe.cancel_requested()
        thread = threading.Thread(target=lambda: seen.setdefault("other", observe.cancel_requested()))
        thread.start()
        thread.join()
        with pytest.raises(observe.Cancelled):
            observe.check_cancelled()
    assert seen["other"] is False and observe.current() is None


def test_restore_warn_hears_the_domain_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """api.restore(warn=...) hands over the domain guard's lines, as restore_files does."""
    from microrestore import api

    class Guarded:
        def domain_warnings(self, image: Any) -> list[str]:
            return [f"input unlike the training data ({image.data.shape})"]

        def predict(self, image: Any, out: Any = None) -> Any:
            out[...] = np.asarray(image.data, dtype=np.float32)
            return out

    monkeypatch.setattr(api, "load_predictor", lambda method, model, options: Guarded())
    heard: list[str] = []
    result = api.restore(np.ones((8, 8), np.float32), "care", warn=heard.append)
    assert heard == ["input unlike the training data ((8, 8))"] and result.shape == (8, 8)
    assert api.restore(np.ones((8, 8), np.float32), "care").shape == (8, 8)  # no warn: not checked, no error


def test_observer_log_every_adds_loss_points(tmp_path: Path) -> None:
    """A front end's ``log_every`` makes the live curve denser than the trainer's own logging."""
    logged: list[int] = []
    watcher = observe.JobObserver(on_training=lambda s, t, v: logged.extend([s] if v else []), log_every=2)
    with observe.observed(watcher):
        Trainer(Tiny(), sample, tmp_path, _config(steps=8, log_every=50, checkpoint_every=50), progress=False).fit()
    assert logged == [2, 4, 6, 8]
