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


def test_remaining_seconds_is_capped_by_the_time_budget() -> None:
    from microrestore.engine.progress import remaining_seconds

    assert remaining_seconds(10, 100, 5.0) == 45.0  # the steps left at the rate so far
    assert remaining_seconds(10, 100, 5.0, budget=20.0) == 15.0  # the budget ends the run first
    assert remaining_seconds(10, 100, 5.0, budget=600.0) == 45.0
    assert remaining_seconds(0, 100, 5.0) is None
    assert remaining_seconds(0, 100, 5.0, budget=20.0) == 15.0
    assert remaining_seconds(10, 100, 30.0, budget=20.0) == 0.0


def test_plain_lines_show_the_budget_eta() -> None:
    out = io.StringIO()
    with TrainingDisplay(2000, log_every=10, log_seconds=1e9, file=out, max_seconds=120.0) as display:
        display.update(10)
    line = out.getvalue().splitlines()[0]
    # 10 steps took a moment: at that rate 2000 steps would end within seconds too, but never after 2:00.
    eta = line.split("ETA ")[1].split()[0]
    hours, minutes, seconds = (int(v) for v in eta.split(":"))
    assert hours * 3600 + minutes * 60 + seconds <= 120


def test_live_bar_eta_never_exceeds_the_budget() -> None:
    out = io.StringIO()
    with TrainingDisplay(10**9, file=out, force_terminal=True, max_seconds=90.0) as display:
        display.update(1, {"loss": 0.5})
    text = out.getvalue()
    assert "0:01:30" in text or "0:01:29" in text or "0:01:28" in text


def test_plain_progress_prints_first_every_interval_and_last() -> None:
    from microrestore.engine.progress import PlainProgress

    now = [0.0]
    out = io.StringIO()
    progress = PlainProgress("inference tiles", file=out, log_seconds=10.0, clock=lambda: now[0])
    for done in range(1, 41):
        now[0] = done * 1.0
        progress.update(done, 40)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("inference tiles 1/40 (2 %)")
    assert len(lines) == 5  # at 1, 11, 21, 31 s and the last tile
    assert "ETA 0:00:18" in lines[2]  # 21 tiles in the 20 s since the first line: 19 left at that rate
    assert lines[-1].startswith("inference tiles 40/40 (100 %)") and lines[-1].endswith("ETA done")
    progress.restart("b.tif: inference tiles")
    progress.update(1, 2)
    assert out.getvalue().splitlines()[-1].startswith("b.tif: inference tiles 1/2 (50 %)")
