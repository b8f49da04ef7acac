"""Progress that tells the truth within 80 columns: one bar per stage over all of its work with the
unit of work now (`identify · hi 5/6`), rate and ETA from the measured throughput, words shortened
before numbers, and the time between stages said as what it is (`starting worker · loading model`)."""

from __future__ import annotations

import asyncio
import os
import socket
import re
import time
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Label, ProgressBar

from lab.stages.reproduce import Progress
from lab.store import StageState, Store
from lab.store.tables import utcnow
from tests.tui.demo_fixture import NOW, load_demo_study
from tui.app import NeuronPilotApp
from tui.messages import StageLog, StageProgress
from tui.screens.study import StudyScreen
from tui.widgets.live_bar import WINDOW_S, RateTracker, progress_text, stage_work
from tui.widgets.stepper import StageStepper

LANGS = ["en", "fr", "de", "sw", "hi", "ur"]


def identify_event(lang: str, done: int, per_language: int = 20000) -> dict[str, Any]:
    """What lab/stages/identify.py sends: one language's tokens, with the whole stage's beside them."""
    i = LANGS.index(lang)
    return {"done": done, "total": per_language, "unit": "tokens", "label": lang, "language_index": i,
            "languages": len(LANGS), "overall_done": i * per_language + done, "overall_total": len(LANGS) * per_language}


def test_identify_is_one_bar_over_every_language_with_the_language_now() -> None:
    e = identify_event("hi", 5000)
    work = stage_work(e["done"], e["total"], e["unit"], e["label"], e)
    assert (work.done, work.total, work.unit_label) == (85000, 120000, "hi 5/6")
    assert work.fraction == pytest.approx(85000 / 120000)  # never back to 0% at each language


def test_reproduce_reports_its_place_inside_a_pass() -> None:
    sent: list[dict[str, Any]] = []

    class Ctx:
        def progress(self, done: int, total: int, unit: str, label: str | None = None, force: bool = False,
                     **extra: Any) -> None:
            sent.append({"done": done, "total": total, "unit": unit, "label": label, **extra})

    p = Progress(Ctx(), 15, LANGS)  # type: ignore[arg-type]
    p.inside("half1", "fr", 5000, 10000)  # the second of six languages, half read
    e = sent[-1]
    assert e["done"] == 0 and e["unit_label"] == "pass 1/15 half1"
    assert e["fraction"] == pytest.approx(round((1.5 / 6) / 15, 4))
    work = stage_work(e["done"], e["total"], e["unit"], e["label"], e)
    assert work.fraction > 0  # the bar moves before the first pass ends
    p.finished("half1")
    assert sent[-1]["fraction"] == pytest.approx(round(1 / 15, 4))


def test_rate_and_eta_come_from_recent_throughput() -> None:
    tracker = RateTracker()
    tracker.add(0.0, 0, 1000, "tokens")
    tracker.add(10.0, 500, 1000, "tokens")  # 50/s at first …
    for t in range(11, 11 + int(WINDOW_S) + 5):
        tracker.add(float(t), 500 + 10 * (t - 10), 1000, "tokens")  # … then 10/s
    assert tracker.rate == pytest.approx(10.0)  # the measured throughput now, not since the start
    last_t = 10 + int(WINDOW_S) + 5
    assert tracker.eta == pytest.approx((1000 - (500 + 10 * (last_t - 10))) / 10.0)


def test_words_are_shortened_before_numbers_within_80_columns() -> None:
    e = identify_event("hi", 5000)
    tracker = RateTracker()
    tracker.add(0.0, 60000, 120000, "tokens")
    tracker.add(10.0, 85000, 120000, "tokens")
    work = stage_work(e["done"], e["total"], e["unit"], "hi", e)
    assert progress_text("identify", work, tracker) == "identify · hi 5/6 · 70% · 2.5k tokens/s · ETA 0:14"
    long = stage_work(3, 24, "runs", "sw · intervention (p90 on sw's lape neurons) · demo_cloze: accuracy 0.610",
                      {"unit_label": "sw intervention 4/24"})
    slow = RateTracker()
    slow.add(0.0, 1, 24, "runs")
    slow.add(60.0, 3, 24, "runs")
    for width in (64, 48, 36):
        text = progress_text("evaluate", long, slow, width)
        assert len(text) <= width or width == 36, (width, text)
        assert "12%" in text and "2 runs/min" in text and "ETA 10:30" in text  # the numbers, whole
    assert progress_text("evaluate", long, slow, 64) == "evaluate · sw intervention 4/24 · 12% · 2 runs/min · ETA 10:30"
    wide = progress_text("evaluate", long, slow, 80)  # room for some of the label: it is shortened, not the rest
    assert wide.startswith("evaluate · sw intervention 4/24 · 12% · 2 runs/min · ETA 10:30 · sw · interv")
    assert wide.endswith("…") and len(wide) == 80


def test_the_live_bar_at_80x24_between_and_during_stages(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = load_demo_study(home, until="model")

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid), clock=lambda: NOW)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            text = screen.query_one("#live-text", Label)
            screen.show_log(StageLog(sid, "identify", "info", "starting stage identify in a worker process (local executor)"))
            await pilot.pause(0.05)
            assert re.fullmatch(r"identify · starting worker \d+ s", str(text.content))
            screen.show_log(StageLog(sid, "identify", "info", "started (attempt 1) in pid 4242 on host"))
            screen.show_progress(StageProgress(sid, "identify", 0, 1, "models", "loading model", time.time()))
            await pilot.pause(1.1)
            shown = str(text.content)
            assert re.fullmatch(r"identify · starting worker · loading model [1-9]\d* s", shown), shown
            # the worker has started: the DB says running (as its first heartbeat writes)
            Store(home).update_stage(sid, "identify", state=StageState.running, attempts=1, pid=os.getpid(),
                                     host=socket.gethostname(), heartbeat_at=utcnow())
            t0 = time.time()
            for k, (lang, done) in enumerate((("hi", 1000), ("hi", 5000))):
                e = identify_event(lang, done)
                screen.show_progress(StageProgress(sid, "identify", e["done"], e["total"], "tokens", lang, t0 + 2 * k,
                                                   {k2: v for k2, v in e.items() if k2 not in ("done", "total", "unit", "label")}))
            await pilot.pause(0.1)
            bar = screen.query_one("#live-progress", ProgressBar)
            assert bar.display and (bar.progress, bar.total) == (85000, 120000)
            shown = str(text.content)
            assert shown.startswith("identify · hi 5/6 · 70% · 2k tokens/s · ETA ") and "…" not in shown
            assert text.region.right <= 80
            stepper = screen.query_one("#stepper", StageStepper)
            line = next(stepper.get_option_at_index(i).prompt.plain for i, v in enumerate(stepper.views)
                        if v.name == "identify")
            assert line.endswith("70%")  # the stepper agrees with the bar

    asyncio.run(drive())
