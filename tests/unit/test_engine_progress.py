from __future__ import annotations

import io

from microrestore.engine.progress import TrainingDisplay, format_metrics


def test_format_metrics() -> None:
    assert format_metrics({"G": 0.123456, "D": 1.5e-5}, lr=2e-4) == "G 0.123  D 1.5e-05  lr 2.0e-04"


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    with TrainingDisplay(100, log_every=25, log_seconds=1e9, file=out) as display:
        for step in range(1, 101):
            display.update(step, {"loss": 1.0 / step} if step % 10 == 0 else None, lr=1e-3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("training step  25/100") and "it/s" in lines[0] and "ETA" in lines[0]
    assert "loss 0.02" in lines[1] and "lr 1.0e-03" in lines[1]
    assert lines[-1].startswith("training step 100/100")


def test_resume_start_and_quiet() -> None:
    out = io.StringIO()
    with TrainingDisplay(50, start=40, log_every=100, log_seconds=1e9, file=out) as display:
        display.update(45)
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert "45/50" in out.getvalue()
    quiet = io.StringIO()
    with TrainingDisplay(10, enabled=False, file=quiet) as display:
        for step in range(1, 11):
            display.update(step, {"loss": 1.0})
        display.message("hello")
    assert quiet.getvalue() == ""


def test_live_bar_on_a_terminal() -> None:
    out = io.StringIO()
    with TrainingDisplay(20, file=out, force_terminal=True) as display:
        assert display.live
        for step in range(1, 21):
            display.update(step, {"loss": 0.5}, lr=1e-4)
        display.message("note")
    text = out.getvalue()
    assert "20/20" in text and "loss 0.5" in text and "note" in text
