"""The UI is a reader of the home's store: it never creates or migrates one (issue #20). An empty home
opens on an empty studies list and nothing is written; `neuron-pilot new` (the form, the demo key)
creates the store when the user asks for a study; a home whose lab.db has an older schema is refused with
how to upgrade it, and left as it was; a study asked for in a home without a store is one line."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from lab.core.errors import BadInput
from lab.store import Store
from tui.app import MissingStore, NeuronPilotApp


def test_an_empty_home_opens_on_an_empty_list_and_stays_empty(tmp_path: Path) -> None:
    home = tmp_path / "home"

    async def drive() -> None:
        app = NeuronPilotApp(home=str(home))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            assert isinstance(app._store, MissingStore) and app.store.studies() == []
            await pilot.press("q")

    asyncio.run(drive())
    assert not (home / "lab.db").exists()  # nothing created: no lab.db, no folders
    assert not home.exists() or not any(home.iterdir())


def test_the_store_appears_once_a_study_is_created(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> None:
    from lab.study.create import create_study
    from tests.helpers import write_study_toml

    home = tmp_path / "home"
    app = NeuronPilotApp(home=str(home))
    assert app.store.studies() == []
    create_study(Store(home), write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "later"))
    assert isinstance(app.store, Store) and [s.name for s in app.store.studies()] == ["later"]


def test_a_study_in_a_home_without_a_store_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no neuron-pilot store in"):
        NeuronPilotApp(home=str(tmp_path / "home"), study="1")
    assert not (tmp_path / "home").exists()


def test_an_older_store_is_refused_not_migrated(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Store(home).engine.dispose()
    with sqlite3.connect(home / "lab.db") as conn:
        conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    before = (home / "lab.db").read_bytes()
    with pytest.raises(BadInput, match="older than this neuron-pilot's .* to upgrade it"):
        NeuronPilotApp(home=str(home))
    assert (home / "lab.db").read_bytes() == before
    with sqlite3.connect(home / "lab.db") as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)


def test_a_cluster_stage_shows_its_job_and_the_schedulers_state(tmp_path: Path, tiny_llama_dir: Path,
                                                                tiny_corpus_dir: Path) -> None:
    """Reopened while a stage's Slurm job waits or runs, the Stage tab shows the job id and what Slurm
    last said (PENDING with its reason, RUNNING with the node), as the coordinator recorded it."""
    from rich.console import Console

    from lab.store import StageState
    from lab.study.create import create_study
    from tests.helpers import write_study_toml
    from tui.render.stage_info import unit_line

    store = Store(tmp_path / "home")
    sid = int(create_study(store, write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir, "job")).id)  # type: ignore[arg-type]
    run = store.update_stage(sid, "identify", state=StageState.running, executor="slurm", job_id="4242",
                             job_state="PENDING (Priority)")
    assert unit_line(run) == "slurm job 4242 · PENDING (Priority)"
    run = store.update_stage(sid, "identify", job_state="RUNNING on node7")
    assert unit_line(run) == "slurm job 4242 · RUNNING on node7"
    assert unit_line(store.stage_run(sid, "model")) == ""  # a local stage: the status line names its worker

    async def drive() -> None:
        app = NeuronPilotApp(home=str(store.home.root), study=str(sid))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            screen = app.screen
            screen.select_stage("identify")  # type: ignore[attr-defined]
            await pilot.pause(0.2)
            info = screen.query_one("#stage-info")  # type: ignore[attr-defined]
            console = Console(width=200, record=True)
            console.print(info.content)
            assert "slurm job 4242 · RUNNING on node7" in console.export_text()
            await pilot.press("q")

    asyncio.run(drive())
