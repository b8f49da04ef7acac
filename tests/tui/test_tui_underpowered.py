"""The UI asks before running an underpowered study (the headless CLI refuses instead)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.app import App

from lab.store import Store
from lab.study.create import create_study
from tests.helpers import write_study_toml
from tui.screens.underpowered import UnderpoweredScreen, run_confirmed


class Host(App[None]):
    """A bare app to host the confirmation (the real app calls run_confirmed from its run actions)."""


def test_underpowered_study_is_run_only_after_confirmation(tmp_path: Path, tiny_llama_dir: Path,
                                                           tiny_corpus_dir: Path) -> None:
    store = Store(tmp_path / "h")
    weak = create_study(store, write_study_toml(tmp_path / "w.toml", tiny_llama_dir, tiny_corpus_dir, name="weak"))
    sized = write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, name="sized")
    sized.write_text(sized.read_text(encoding="utf-8") + "\n[criteria]\nmin_gain_points = 12.0\n", encoding="utf-8")
    sized_study = create_study(store, sized)
    started: list[int] = []

    async def scenario() -> None:
        app = Host()
        async with app.run_test() as pilot:
            run_confirmed(app, store, int(weak.id), lambda: started.append(int(weak.id)))
            await pilot.pause()
            assert isinstance(app.screen, UnderpoweredScreen)
            text = str(app.screen.query_one("#underpowered-message").render())
            assert "10.2 points" in text and "min_gain_points is 1" in text
            await pilot.press("n")
            await pilot.pause()
            assert started == [] and not isinstance(app.screen, UnderpoweredScreen)
            run_confirmed(app, store, int(weak.id), lambda: started.append(int(weak.id)))
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
            assert started == [int(weak.id)]
            run_confirmed(app, store, int(weak.id), lambda: started.append(-1))  # accepted for this session
            await pilot.pause()
            assert started == [int(weak.id), -1] and not isinstance(app.screen, UnderpoweredScreen)
            # a study sized to what it can detect (MDE 10.2 < 12 points) runs without a question
            run_confirmed(app, store, int(sized_study.id), lambda: started.append(int(sized_study.id)))
            await pilot.pause()
            assert started[-1] == int(sized_study.id) and not isinstance(app.screen, UnderpoweredScreen)

    asyncio.run(scenario())
