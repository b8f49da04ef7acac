"""Form and start: placeholders read as examples, an error clears when its field is fixed, keys typed
in a burst (as over a slow SSH link) land in the right fields, the empty studies list offers the demo
on one key (and the palette has it). Export feedback: a spinner while writing, the path where no toast
covers it, the headline's numbers rounded as the tables round them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import events
from textual.widgets import Input, Static

from lab.core.paths import DEMO_STUDY
from lab.report import headline
from lab.store import Store
from tests.tui.demo_fixture import NOW, load_demo_study
from tui import study_form
from tui.app import NeuronPilotApp
from tui.formatting import fmt_points
from tui.screens.export import ExportScreen
from tui.screens.home import HomeScreen
from tui.screens.new_study import NewStudyScreen
from tui.screens.study import StudyScreen
from tui.widgets.live_bar import SPINNER

SIZE = (80, 24)
KEY_NAMES = {"\t": "tab", " ": "space", ",": "comma", "-": "minus", ".": "full_stop", "/": "slash"}


def send_burst(app: NeuronPilotApp, text: str) -> None:
    """Every key at once, before the app handles any: what a slow link delivers after a pause."""
    for ch in text:
        event = events.Key(KEY_NAMES.get(ch, ch), None if ch == "\t" else ch)
        event.set_sender(app)
        app._driver.send_message(event)  # the path real terminal input takes


async def wait_for(pilot, cond, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


def test_placeholders_read_as_examples_and_look_unlike_values(tmp_path: Path) -> None:
    async def drive() -> None:
        app = NeuronPilotApp(home=str(tmp_path / "home"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await pilot.pause(0.1)
            inputs = [w for w in app.screen.query(Input) if w.placeholder]
            assert len(inputs) >= 6
            for w in inputs:
                assert w.placeholder.startswith("e.g. "), w.placeholder
                style = w.get_component_rich_style("input--placeholder")
                assert style.italic, w.id
            value_style = inputs[0].rich_style
            assert not value_style.italic  # a typed value is upright: never mistaken for a placeholder

    asyncio.run(drive())


def test_an_error_clears_as_soon_as_its_field_is_fixed(tmp_path: Path) -> None:
    async def drive() -> None:
        app = NeuronPilotApp(home=str(tmp_path / "home"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("n")
            await pilot.press("ctrl+s")
            screen = app.screen
            assert isinstance(screen, NewStudyScreen)
            await wait_for(pilot, lambda: not screen.busy)
            err_name, err_langs = screen.query_one("#err-name", Static), screen.query_one("#err-languages", Static)
            assert err_name.display and err_langs.display
            assert err_name.styles.text_style.bold  # readable: bold in the theme's text-error colour
            assert screen.focused.id == "f-name"
            await pilot.press(*"swahili-pilot")
            await pilot.pause(0.05)
            assert not err_name.display  # fixed: gone without another submit
            screen.query_one("#f-languages", Input).focus()
            await pilot.press("e", "n")
            await pilot.pause(0.05)
            assert err_langs.display and "at least two" in str(err_langs.content)  # still wrong: still said
            await pilot.press("comma", "space", "s", "w")
            await pilot.pause(0.05)
            assert not err_langs.display

    asyncio.run(drive())


def test_keys_typed_in_a_burst_land_in_the_right_fields(tmp_path: Path) -> None:
    async def drive() -> None:
        app = NeuronPilotApp(home=str(tmp_path / "home"))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.1)
            # n opens the form; the rest arrives before the form exists, tabs between the fields
            send_burst(app, "nswahili-pilot\tmodels/x\ten, sw\tsw")
            await wait_for(pilot, lambda: isinstance(app.screen, NewStudyScreen) and app.screen.is_mounted
                           and app.screen.values().targets == "sw")
            screen = app.screen
            assert isinstance(screen, NewStudyScreen)
            v = screen.values()
            assert (v.name, v.model, v.languages, v.targets) == ("swahili-pilot", "models/x", "en, sw", "sw")
            # and once the form is up: a burst of fields after shift+tab back to the name
            screen.query_one("#f-corpus", Input).focus()
            await pilot.pause(0.05)
            send_burst(app, "./corpora\t123")
            await wait_for(pilot, lambda: screen.values().tokens != "20000")
            await pilot.pause(0.2)
            v = screen.values()
            assert (v.corpus, v.tokens) == ("./corpora", "20000123")

    asyncio.run(drive())


def test_empty_list_offers_the_demo_on_one_key_and_in_the_palette(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    Store(home)
    created: list[int] = []
    runs: list[int] = []

    def fake_create(root: Path, path: Path, timeout_s: float = 300) -> study_form.CreateResult:
        """What `neuron-pilot new examples/studies/demo.toml` leaves: the demo study in the store."""
        from tests.tui.demo_fixture import demo_data
        from protocols import load_protocol

        assert path == DEMO_STUDY
        cfg = demo_data()["config"]
        study = Store(root).create_study(name="demo-pilot", protocol="lsn-staged", model_id=cfg["model"]["id"], seed=0,
                                         trust_remote_code=False, config=cfg, source_toml="",
                                         source_path=str(DEMO_STUDY), stages=load_protocol("lsn-staged").stage_names)
        created.append(int(study.id))
        return study_form.CreateResult(int(study.id), None)

    monkeypatch.setattr(study_form, "create_with_cli", fake_create)
    monkeypatch.setattr(NeuronPilotApp, "start_run", lambda self, sid, decide=None: runs.append(sid) or True)

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.1)
            hint = str(app.screen.query_one("#home-hint", Static).content)
            assert "Press d to create and run the demo study" in hint
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
            assert created == [1] and app.screen.study_id == 1
            await wait_for(pilot, lambda: runs == [1])
            await pilot.press("escape")
            await pilot.pause(0.1)
            assert isinstance(app.screen, HomeScreen)
            # the palette has it too; with the demo there, it opens (and resumes) that study
            await pilot.press("ctrl+p")
            await pilot.press(*"demo: create")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen))
            assert created == [1] and app.screen.study_id == 1
            await wait_for(pilot, lambda: runs == [1, 1])

    asyncio.run(drive())


def test_export_shows_a_spinner_then_the_path_uncovered_and_the_headline_in_points(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sid = load_demo_study(home)

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home), study=str(sid), clock=lambda: NOW)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            status = screen.query_one("#status-line", Static)
            screen.set_busy("writing the md export…")
            await pilot.pause(0.05)
            first = str(status.content)
            await pilot.pause(0.3)
            later = str(status.content)
            assert first[0] in SPINNER and later[0] in SPINNER and first[0] != later[0]  # it turns
            assert first.endswith("writing the md export…")

            logged: list[str] = []
            write_log = screen.write_log
            screen.write_log = lambda stage, level, text: (logged.append(text), write_log(stage, level, text))
            await pilot.press("e")
            assert isinstance(app.screen, ExportScreen)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.last_export is not None, 60)
            await pilot.pause(0.2)
            path = str(app.last_export)
            assert path in (screen.last_outcome or "") and path in str(status.content).replace("\n", "")
            toasts = [w for w in app.screen.walk_children(with_self=False) if type(w).__name__ == "Toast"]
            assert toasts and all(t.region.bottom <= status.region.y for t in toasts)  # nothing covers the path
            h = headline(Store(home), Store(home).study(sid))
            log = "\n".join(logged)
            assert f"exported to {path}" in log
            assert f"mean gain on targets {fmt_points(h['mean_gain_points'])} points" in log
            lo, hi = h["mean_gain_ci_low_points"], h["mean_gain_ci_high_points"]
            assert f"[{fmt_points(lo)}, {fmt_points(hi)}]" in log

    asyncio.run(drive())
