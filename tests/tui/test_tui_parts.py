"""The TUI's parts without real stage runs: keymaps, the study form's checks, the event-log
follower, result rendering, the command palette, themes, and the rule that the UI process never
imports torch."""

from __future__ import annotations

from tests.helpers import ROOT_DIR

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from lab.core.errors import BadInput
from lab.core.events import Event
from lab.run.workers import EventLog
from lab.store import Metric, StageState, Store
from lab.study.studyfile import parse_study
from tui.app import NeuronPilotApp
from tui.keymap import load_keymap, parse_env_keymap
from tui.render.heatmap import cell_colour, heatmap
from tui.render.metrics import json_matrices, metric_matrix, pivot_table
from tui.screens.help import HelpScreen
from tui.screens.study import StudyScreen
from tui.study_form import FormValues, check_values, field_for_error, write_study_file
from tui.widgets.live_bar import RateTracker, progress_text, stage_work

REPO = ROOT_DIR


def render(renderable, width: int = 60) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def make_study(home: Path, name: str = "parts", model: str = "/nowhere/model") -> int:
    from protocols import load_protocol

    store = Store(home)
    cfg = {"study": {"name": name, "protocol": "lsn-staged"}, "model": {"id": model, "dtype": "auto", "device": "auto"},
           "languages": {"all": ["en", "sw"], "targets": ["sw"], "high_resource": ["en"]},
           "corpus": {"path": "/nowhere/corpus", "tokens_per_language": 100}, "identify": {"method": "lape"},
           "intervention": {"kind": "test_time", "value": "p90"}, "evaluate": {"tasks": ["demo_xnli"]}, "criteria": {}}
    study = store.create_study(name=name, protocol="lsn-staged", model_id=model, seed=0, trust_remote_code=False,
                               config=cfg, source_toml="", source_path="",
                               stages=load_protocol("lsn-staged").stage_names)
    return int(study.id)


# ---- keymaps -------------------------------------------------------------------------------------
def test_keymap_file_tables_and_env_override(tmp_path: Path) -> None:
    (tmp_path / "keymap.toml").write_text('"study.run" = "f5"\n[app]\nhelp = "f1"\n', encoding="utf-8")
    keymap = load_keymap(tmp_path, {"NEURON_PILOT_KEYMAP": "study.run=ctrl+r; app.quit=ctrl+q"})
    assert keymap == {"study.run": "ctrl+r", "app.help": "f1", "app.quit": "ctrl+q"}


def test_keymap_rejects_unknown_ids_and_bad_syntax(tmp_path: Path) -> None:
    (tmp_path / "keymap.toml").write_text('"study.runn" = "f5"\n', encoding="utf-8")
    with pytest.raises(BadInput, match="unknown binding id 'study.runn'"):
        load_keymap(tmp_path, {})
    with pytest.raises(BadInput, match="is not id=key"):
        parse_env_keymap("study.run")
    (tmp_path / "keymap.toml").write_text('"study.run" = ', encoding="utf-8")
    with pytest.raises(BadInput, match="not valid TOML"):
        load_keymap(tmp_path, {})


def test_remapped_key_opens_help_and_old_key_does_not(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "keymap.toml").write_text('[app]\nhelp = "f1"\n', encoding="utf-8")

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("question_mark")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("f1")
            assert isinstance(app.screen, HelpScreen)
            table = render(app.screen.query_one("#help-table").content, 100)
            assert "f1" in table and "app.help" in table
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("ctrl+t")
            assert app.theme == "textual-light"
            await pilot.press("ctrl+t")
            assert app.theme == "textual-dark"

    asyncio.run(drive())


def test_unknown_study_is_bad_input_and_cli_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lab.cli import main

    with pytest.raises(BadInput, match="no neuron-pilot store in"):  # an empty home: nothing to open, nothing made
        NeuronPilotApp(home=str(tmp_path / "h"), study="nope")
    Store(tmp_path / "h").engine.dispose()
    with pytest.raises(BadInput, match="no study 'nope'"):
        NeuronPilotApp(home=str(tmp_path / "h"), study="nope")
    assert main(["tui", "nope", "--home", str(tmp_path / "h")]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


# ---- the study form ------------------------------------------------------------------------------
def test_form_checks_point_at_fields() -> None:
    errors = check_values(FormValues(name="bad name!", languages="en", targets="xx", tokens="-3"), {"taken"})
    assert set(errors) == {"name", "model", "languages", "targets", "corpus", "tokens", "tasks"}
    assert "letters, digits" in errors["name"]
    assert "taken" in check_values(FormValues(name="taken"), {"taken"})["name"]
    ok = FormValues(name="p", model="m/x", languages="en, fr sw", targets="sw", corpus="c", tasks="t1,t2")
    assert check_values(ok, set()) == {}


def test_form_writes_a_study_file_the_schema_accepts(tmp_path: Path) -> None:
    values = FormValues(name="s1", model="org/model", languages="en,sw", targets="sw", corpus="corp", tokens="500",
                        method="act_prob_90p", kind="test_time", value="mean", tasks="demo_real")
    path = write_study_file(tmp_path, values)
    assert path == tmp_path / "studies" / "s1.toml"
    parsed = parse_study(path.read_text(encoding="utf-8"))
    assert parsed.languages.all == ["en", "sw"] and parsed.identify.method == "act_prob_90p"
    assert parsed.corpus.tokens_per_language == 500 and parsed.evaluate.tasks == ["demo_real"]


@pytest.mark.parametrize("message,field", [
    ("/h/studies/x.toml: [model] id 'zz' is not an existing file or folder; fix the path", "model"),
    ("x.toml: [corpus] tokens_per_language: Input should be greater than 0", "tokens"),
    ("x.toml: corpus folder /c has no text for sw; add sw.txt", "corpus"),
    ("[identify] method 'foo' is not an identification method (known: lape); fix it", "method"),
    ("[evaluate] tasks: unknown task 'zz'", "tasks"),
    ("something else entirely", None),
])
def test_errors_map_to_form_fields(message: str, field: str | None) -> None:
    assert field_for_error(message) == field


# ---- following an event log ----------------------------------------------------------------------
def test_follower_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "stage.jsonl"
    log.write_text(Event("log", "identify", 1, {"message": "old"}).to_json() + "\n", encoding="utf-8")
    follower = EventLog(log)
    assert follower.poll() == []
    line = Event("progress", "identify", 1, {"done": 3, "total": 10, "unit": "blocks"}).to_json()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(line[:20])
    assert follower.poll() == []
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(line[20:] + "\nnot json\n")
    events = follower.poll()
    assert [(e.event, e.data["done"]) for e in events] == [("progress", 3)]


def test_rate_and_eta_from_worker_timestamps() -> None:
    tracker = RateTracker()
    tracker.add(100.0, 10, 110, "blocks", "sw")
    tracker.add(110.0, 60, 110, "blocks", "sw")
    assert tracker.rate == pytest.approx(5.0)
    assert tracker.eta == pytest.approx(10.0)
    assert progress_text("identify", stage_work(60, 110, "blocks", "sw"), tracker) == \
        "identify · 54% · 5 blocks/s · ETA 0:10 · sw"


# ---- rendering results -----------------------------------------------------------------------------
def metric(name: str, value: float, language: str = "", condition: str = "", **kw: float) -> Metric:
    return Metric(study_id=1, stage="s", name=name, value=value, language=language, condition=condition, **kw)


def test_pivot_shows_ci_under_the_value() -> None:
    rows = [metric("accuracy_delta", 0.031, "sw", "intervention", ci_low=0.01, ci_high=0.05, n=400),
            metric("accuracy_delta", -0.002, "sw", "control", ci_low=-0.02, ci_high=0.016, n=400)]
    text = render(pivot_table("accuracy_delta", rows, ["en", "sw"]), width=80)
    assert "intervention" in text and "control" in text
    # accuracy changes in points, as the gates and reports state them, intervals under the value
    assert "accuracy_delta (points)" in text
    assert "+3.10" in text and "[+1.00, +5.00]" in text and "[-2.00, +1.60]" in text and "-0.20" in text
    assert "n = 400 paired items" in text  # the n says what it counts
    assert text.index("intervention") < text.index("control")


def test_language_pairs_become_a_matrix_and_other_rows_do_not() -> None:
    rows = [metric("overlap_jaccard", v, a, b) for a, b, v in
            (("en", "en", 1.0), ("en", "sw", 0.1), ("sw", "en", 0.1), ("sw", "sw", 1.0))]
    labels, matrix = metric_matrix(rows, ["en", "fr", "sw"])
    assert labels == ["en", "sw"] and matrix == [[1.0, 0.1], [0.1, 1.0]]
    assert metric_matrix([metric("neurons", 5, "sw", "lape"), metric("neurons", 5, "sw", "control")], ["sw"]) is None


def test_ppxc_artifact_renders_heatmaps_with_hot_diagonal() -> None:
    data = {"languages": ["en", "sw"], "baseline_ppl": {"en": 20.0, "sw": 40.0},
            "identified": [[3.0, 0.5], [0.2, 2.0]], "control": [[0.1, 0.0], [0.0, 0.1]]}
    parts = json_matrices("ppxc.json", data)
    titles = [p.renderables[0].plain for p in parts]  # each part: its title line, the table, a caption
    assert titles == ["ppxc.json · baseline_ppl", "ppxc.json · identified", "ppxc.json · control"]
    shown = render(parts[1])
    assert "3" in shown and "0.500" in shown  # 3 significant digits
    assert [line.split()[0] for line in shown.splitlines()[3:5]] == ["en", "sw"]  # row labels
    hot, cold = cell_colour(3.0, 0.2, 3.0), cell_colour(0.2, 0.2, 3.0)
    assert hot.red > cold.red and hot.blue < cold.blue
    # diverging scale: zero sits at the neutral colour, signs go opposite ways
    assert cell_colour(0.0, -1.0, 1.0) == cell_colour(0.0, -2.0, 2.0)
    assert cell_colour(1.0, -1.0, 1.0).red > cell_colour(-1.0, -1.0, 1.0).red
    assert json_matrices("x.json", {"languages": ["en", "sw"], "m": [[1, 2, 3]]}) == []
    assert render(heatmap("t", ["a", "b"], [[1.0, None], [2.0, 3.0]])).count("—") == 1


# ---- the command palette -------------------------------------------------------------------------
def test_palette_exports_with_keys_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = make_study(home)

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            assert isinstance(app.screen, StudyScreen)
            await pilot.press("ctrl+p")
            await pilot.press(*"export summary as json")
            await pilot.pause(0.5)
            await pilot.press("enter")
            for _ in range(200):
                if app.last_export is not None:
                    break
                await pilot.pause(0.05)
            assert app.last_export is not None
            data = json.loads(Path(app.last_export).read_text(encoding="utf-8"))
            assert data["study"]["id"] == sid and data["verdict"]["decision"] == "undecided"

    asyncio.run(drive())


# ---- a stage whose worker died while no UI watched ------------------------------------------------
def test_dead_worker_shows_interrupted_with_resume(tmp_path: Path) -> None:
    import socket

    from lab.store.tables import utcnow

    home = tmp_path / "home"
    sid = make_study(home)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: this pid belongs to no process now
    Store(home).update_stage(sid, "criteria", state=StageState.running, pid=gone.pid, host=socket.gethostname(),
                             heartbeat_at=utcnow(), progress_json=json.dumps({"done": 1, "total": 4, "unit": "steps"}))

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            assert not screen.followers
            assert screen.view_of("criteria").state == "interrupted"
            assert screen.query_one("#stepper").get_option_at_index(0).prompt.plain.startswith("‖")
            assert "interrupted" in screen.last_outcome and "press r to resume" in screen.last_outcome

    asyncio.run(drive())
    assert Store(home).stage_run(sid, "criteria").state == StageState.interrupted


# ---- errors from background work -------------------------------------------------------------------
def test_runner_error_shows_one_error_modal(tmp_path: Path) -> None:
    """Another live process holds the study's runner lease: running fails with its BadInput message."""
    import datetime as dt
    import socket

    from sqlalchemy import text

    from lab.store.tables import utcnow
    from tui.screens.error import ErrorScreen
    from tui.screens.underpowered import UnderpoweredScreen

    home = tmp_path / "home"
    sid = make_study(home)
    store = Store(home)
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO lease(study_id, holder, pid, host, acquired_at, expires_at) "
                          "VALUES(:s, 'neuron-pilot run', 1, :h, :a, :e)"),
                     {"s": sid, "h": socket.gethostname(), "a": utcnow(), "e": utcnow() + dt.timedelta(minutes=5)})

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            await pilot.press("r")
            for _ in range(200):
                if isinstance(app.screen, UnderpoweredScreen):  # the tiny test study is underpowered
                    await pilot.press("y")
                if isinstance(app.screen, ErrorScreen):
                    break
                await pilot.pause(0.05)
            assert isinstance(app.screen, ErrorScreen)
            assert "is being run by neuron-pilot run (pid 1" in app.screen.message
            assert app.active_run is None
            await pilot.press("escape")
            assert isinstance(app.screen, StudyScreen)
            await pilot.press("r")  # a second failure opens the modal again, one at a time
            for _ in range(200):
                if isinstance(app.screen, UnderpoweredScreen):  # the tiny test study is underpowered
                    await pilot.press("y")
                if isinstance(app.screen, ErrorScreen):
                    break
                await pilot.pause(0.05)
            assert len([s for s in app.screen_stack if isinstance(s, ErrorScreen)]) == 1
        assert store.stage_run(sid, "criteria").state == StageState.pending

    asyncio.run(drive())


# ---- the UI process never loads torch --------------------------------------------------------------
NO_TORCH_SCRIPT = textwrap.dedent("""
    import asyncio, json, sys, time
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from lab.store import StageState, Store
    from test_tui_parts import make_study
    from tui.app import NeuronPilotApp
    from tui.screens.decision import DecisionScreen
    from tui.screens.study import StudyScreen
    from tui.screens.underpowered import UnderpoweredScreen

    home = Path({home!r})
    sid = make_study(home)
    store = Store(home)
    # Every stage up to evaluate is done and its earlier gates decided: running goes straight to the
    # evaluate gate (rules evaluated in this process) without starting a worker.
    for stage in ("criteria", "model", "identify", "reproduce", "intervene", "generate", "evaluate"):
        store.update_stage(sid, stage, state=StageState.done)
    for stage in ("criteria", "identify", "reproduce"):
        store.add_decision(sid, stage, "go", "set up by the test", "tester")

    async def wait(pilot, cond, timeout):
        end = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < end, "timed out"
            await pilot.pause(0.05)

    async def main():
        app = NeuronPilotApp(home=str(home))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("enter")
            await wait(pilot, lambda: isinstance(app.screen, StudyScreen), 10)
            await pilot.press("m", "l", "s", "question_mark", "escape", "ctrl+p", "escape")
            await pilot.press("r")
            await wait(pilot, lambda: isinstance(app.screen, (DecisionScreen, UnderpoweredScreen)), 60)
            if isinstance(app.screen, UnderpoweredScreen):  # the tiny test study is underpowered: run anyway
                await pilot.press("y")
                await wait(pilot, lambda: isinstance(app.screen, DecisionScreen), 60)
            rec = app.screen.recommendation
            await pilot.press("escape", "e", "enter")
            await wait(pilot, lambda: app.last_export is not None, 60)
            await pilot.press("escape")
            await wait(pilot, lambda: not isinstance(app.screen, StudyScreen), 10)
            await pilot.press("n")
            await pilot.press(*"x", "tab", *"/nm", "tab", *"en,sw", "tab", *"sw", "tab", *"/tmp",
                              "tab", "tab", "tab", "tab", "tab", *"demo_real", "ctrl+s")
            await wait(pilot, lambda: not app.screen.busy, 30)
            assert app.screen.query_one("#err-model").display, "model error not shown inline"
        print(json.dumps({{"torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules,
                          "gate": rec["verdict"]}}))

    asyncio.run(main())
""")


def test_ui_process_never_imports_torch(tmp_path: Path) -> None:
    script = NO_TORCH_SCRIPT.format(tests=str(REPO / "tests" / "tui"), home=str(tmp_path / "home"))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result == {"torch": False, "transformers": False, "gate": "undecided"}


# ---- typed access to the app ---------------------------------------------------------------------
def test_screens_get_the_app_as_a_lab_app(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from tui.lab_app import LabApp, lab_app

    app = NeuronPilotApp(home=str(tmp_path / "home"))
    assert isinstance(app, LabApp)  # every attribute and method the screens use is there
    assert lab_app(SimpleNamespace(app=app)) is app  # type: ignore[arg-type]
    assert app.runs_study(1) is False
    with pytest.raises(TypeError, match="not neuron-pilot's app"):
        lab_app(SimpleNamespace(app=object()))  # type: ignore[arg-type]
