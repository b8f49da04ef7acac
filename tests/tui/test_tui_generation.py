"""The generations screen: baseline vs intervention vs control continuations of one prompt side by
side, read from a stored continuations.json; language and prompt choice; refusal without results or
with a modified artifact; the command palette entry; a snapshot at 80x24."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path


from lab.core.artifacts import sha256_file
from lab.store import StageState, Store
from protocols import load_protocol
from tui.app import NeuronPilotApp
from tui.screens.generations import GenerationScreen
from tui.screens.study import StudyScreen

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
SIZE = (80, 24)


def _cont(text: str, lang: str, degenerate: str | None = None) -> dict:
    return {"text": text, "tokens": len(text.split()), "degenerate": degenerate, "language": lang, "confidence": 0.99}


def _prompt(prompt: str, base: str, inter: str, ctrl: str, lang: str, inter_lang: str | None = None) -> dict:
    return {"prompt": prompt, "conditions": {
        "baseline": {"greedy": _cont(base, lang), "samples": [_cont(base + " tena", lang)]},
        "intervention": {"greedy": _cont(inter, inter_lang or lang), "samples": [_cont("the the the the the the", "en", "loop")]},
        "control": {"greedy": _cont(ctrl, lang), "samples": [_cont(ctrl + " tena", lang)]}}}


CONTINUATIONS = {
    "conditions": ["baseline", "intervention", "control"],
    "intervention": {"kind": "test_time", "value": "zero", "scale": None},
    "settings": {"max_new_tokens": 24, "samples": 1}, "language_id": {"library": "py3langid", "candidates": ["en", "sw"]},
    "skipped": {},
    "languages": {
        "sw": {"prompts": [
            _prompt("Kila asubuhi mama yangu", "huamka mapema na kwenda sokoni.", "went to the market early.",
                    "huamka mapema na kwenda sokoni.", "sw", "en"),
            _prompt("Jana jioni watoto walikwenda", "Iringa kumtembelea dada yake.", "Iringa kumtembelea bibi yake.",
                    "Moshi kumtembelea dada yake.", "sw")]},
        "en": {"prompts": [
            _prompt("Yesterday my brother went", "to the bakery every day.", "to the bakery every week.",
                    "to the bakery every day.", "en")]},
    },
}


def make_home(tmp_path: Path, with_artifact: bool = True) -> Path:
    home = tmp_path / "home"
    store = Store(home)
    cfg = {"study": {"name": "gen-pilot", "protocol": "lsn-staged", "seed": 0, "description": ""},
           "model": {"id": "/models/tiny-polyglot", "dtype": "auto", "device": "auto", "trust_remote_code": False},
           "languages": {"all": ["en", "sw"], "targets": ["sw"], "high_resource": ["en"]},
           "corpus": {"path": "/data/corpora", "tokens_per_language": 20000}, "identify": {"method": "lape"},
           "intervention": {"kind": "test_time", "value": "zero"}, "evaluate": {"tasks": ["demo_qa"]}, "criteria": {}}
    study = store.create_study(name="gen-pilot", protocol="lsn-staged", model_id="/models/tiny-polyglot", seed=0,
                               trust_remote_code=False, config=cfg, source_toml="", source_path="",
                               stages=load_protocol("lsn-staged").stage_names)
    sid = int(study.id)  # type: ignore[arg-type]
    for stage in ("criteria", "model", "identify", "reproduce", "intervene", "generate"):
        store.update_stage(sid, stage, state=StageState.done, attempts=1, compute_seconds=1.0)
    if with_artifact:
        path = store.home.stage_dir(sid, "generate") / "continuations.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(CONTINUATIONS, ensure_ascii=False), encoding="utf-8")
        store.put_artifact(sid, "generate", "continuations.json", path, sha256_file(path), path.stat().st_size)
    return home


def make_app(home: Path) -> NeuronPilotApp:
    return NeuronPilotApp(home=str(home), study="1", clock=lambda: NOW)


def _column(app: NeuronPilotApp, cond: str) -> str:
    return str(app.screen.query_one(f"#gen-text-{cond}").render())


def test_side_by_side_columns_follow_the_chosen_language_and_prompt(tmp_path: Path) -> None:
    async def drive() -> None:
        app = make_app(make_home(tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, StudyScreen)
            await pilot.press("g")
            await pilot.pause()
            assert isinstance(app.screen, GenerationScreen)
            base, inter, ctrl = (_column(app, c) for c in ("baseline", "intervention", "control"))
            assert "huamka mapema na kwenda sokoni." in base and "[sw]" in base
            assert "went to the market early." in inter and "[en]" in inter and "changed" in inter
            assert "loop" in inter  # the degenerate sample is labelled
            assert "same as baseline" in ctrl
            await pilot.press("down")  # the prompt list has focus: next prompt
            await pilot.pause()
            assert "Iringa kumtembelea dada yake." in _column(app, "baseline")
            assert "Iringa kumtembelea bibi yake." in _column(app, "intervention")
            await pilot.press("n")  # next language
            await pilot.pause()
            assert app.screen.language == "en"
            assert "to the bakery every week." in _column(app, "intervention")
            await pilot.press("escape")
            await pilot.pause()
            assert isinstance(app.screen, StudyScreen)

    asyncio.run(drive())


def test_no_results_or_a_modified_artifact_is_refused_with_a_notice(tmp_path: Path) -> None:
    async def drive(home: Path) -> list[str]:
        app = make_app(home)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("g")
            await pilot.pause()
            assert isinstance(app.screen, StudyScreen)
            return [n.message for n in app._notifications]

    notes = asyncio.run(drive(make_home(tmp_path / "a", with_artifact=False)))
    assert any("no generations to show" in n and "run the generate stage" in n for n in notes)
    home = make_home(tmp_path / "b")
    path = home / "artifacts" / "study-1" / "generate" / "continuations.json"
    path.write_text(path.read_text(encoding="utf-8").replace("huamka", "HUAMKA"), encoding="utf-8")
    notes = asyncio.run(drive(home))
    assert any("modified after it was recorded" in n for n in notes)


def test_palette_offers_the_generations_view(tmp_path: Path) -> None:
    from tui.commands import LabCommands

    async def drive() -> None:
        app = make_app(make_home(tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            provider = LabCommands(app.screen)
            names = {name: cb for name, cb, _ in provider.commands()}
            name = next(n for n in names if n.startswith("Generations"))
            names[name]()
            await pilot.pause()
            assert isinstance(app.screen, GenerationScreen)

    asyncio.run(drive())


def test_generations_snapshot(tmp_path: Path, snap_compare) -> None:
    async def open_view(pilot) -> None:
        await pilot.pause()
        await pilot.press("g")
        await pilot.pause(0.1)

    assert snap_compare(make_app(make_home(tmp_path)), terminal_size=SIZE, run_before=open_view)
