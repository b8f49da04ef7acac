"""NeuronPilotApp: the Textual lab assistant. It reads the store, starts runs of a study's stages
(each stage in its own worker process, via lab.run: it never handles processes itself) and records
decisions. It never imports torch: everything heavy happens in worker processes.
"""

from __future__ import annotations

import datetime as dt
import traceback
import weakref
from pathlib import Path
from typing import Callable, Optional

from textual import events, work
from textual.app import App
from textual.worker import Worker, WorkerState, get_current_worker

from lab.core.errors import BadInput
from lab.core.paths import DEMO_STUDY, Home
from lab.report import write_export
from lab.run.coordinator import DetachedRun, cancel_coordinator, check_decide, start_detached
from lab.run.runner import RunOutcome, Runner
from lab.run.workers import StageWorker
from lab.store import Store, Study
from lab.store.health import check_home, missing_store
from lab.store.tables import utcnow
from tui.bindings import APP_BINDINGS
from tui.commands import LabCommands
from tui.formatting import fmt_points
from tui.keymap import load_keymap
from tui.messages import StageFinished, StageLog, StageProgress
from tui.screens.error import ErrorScreen
from tui.screens.export import ExportScreen
from tui.screens.help import HelpScreen
from tui.screens.home import HomeScreen
from tui.screens.new_study import NewStudyScreen
from tui.screens.study import StudyScreen
from tui.stage_runs import RunHandle, run_in_daemon

THEMES = ("textual-dark", "textual-light")


def headline_line(h: dict) -> str:
    """The export's headline in one line, its numbers rounded as the Results tables round points."""
    parts = [f"headline: {h.get('verdict', 'undecided')}"]
    if h.get("mean_gain_points") is not None:
        ci = ""
        if h.get("mean_gain_ci_low_points") is not None and h.get("mean_gain_ci_high_points") is not None:
            ci = f" [{fmt_points(h['mean_gain_ci_low_points'])}, {fmt_points(h['mean_gain_ci_high_points'])}]"
        parts.append(f"mean gain on targets {fmt_points(h['mean_gain_points'])} points{ci}")
    if h.get("gain_over_control_points") is not None:
        parts.append(f"over random neurons {fmt_points(h['gain_over_control_points'])} points")
    worst = h.get("worst_high_resource")
    if worst and worst.get("points") is not None:
        parts.append(f"worst high-resource change {fmt_points(worst['points'])} points ({worst.get('language')})")
    return " · ".join(parts)


class MissingStore:
    """A home that has no lab.db yet, as the UI sees it: no studies, nothing written."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def studies(self) -> list:
        return []

    def study(self, ref: str | int) -> Study:
        raise missing_store(self.home.root)


def open_store(home: str | Path | None) -> Store | MissingStore:
    """The home's store for reading and the UI's own writes (decisions, leases), never created or migrated
    here: a home without lab.db is a MissingStore; an older schema says how to upgrade it."""
    where = Home(home)
    check_home(where.root, must_exist=False)
    if not where.db.exists():
        return MissingStore(where)
    return Store(where, create=False, migrate=False)


def demo_study_id(store: Store) -> Optional[int]:
    """The home's demo study (created from examples/studies/demo.toml), the latest if several."""
    found = [int(s.id) for s in store.studies() if s.source_path == str(DEMO_STUDY)]  # type: ignore[arg-type]
    return found[-1] if found else None


class NeuronPilotApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "neuron-pilot"
    BINDINGS = APP_BINDINGS
    COMMANDS = App.COMMANDS | {LabCommands}

    def __init__(self, home: Optional[str] = None, study: Optional[str] = None, autorun: bool = False, *,
                 clock: Optional[Callable[[], dt.datetime]] = None, detach: bool = False,
                 decide: Optional[str] = None) -> None:
        super().__init__()
        # Bad input (unknown study, broken keymap, a damaged or newer lab.db) fails here, before the terminal
        # is taken over. The UI never creates or migrates a store: a home without lab.db shows an empty
        # studies list, and `neuron-pilot new` (the form, the demo key) creates the store when asked to.
        self._store: Store | MissingStore = open_store(home)
        if study and isinstance(self._store, MissingStore):
            raise missing_store(self._store.home.root)
        self.initial_study: Optional[int] = int(self.store.study(study).id) if study else None  # type: ignore[arg-type]
        self.autorun = autorun
        self._typed_ahead: weakref.WeakSet[events.Key] = weakref.WeakSet()  # keys already handed on once
        # detach: runs go to a background runner (lab.run.coordinator) that outlives this UI; the
        # `neuron-pilot` command always asks for it. decide: person | rules (None: the study's own key).
        self.detach = detach
        self.decide = check_decide(decide)
        self.detached_runs: dict[int, DetachedRun] = {}
        self.clock: Callable[[], dt.datetime] = clock or utcnow
        self.user_keymap = load_keymap(self.store.home.root)
        self.active_run: Optional[RunHandle] = None
        self.last_export: Optional[Path] = None

    @property
    def store(self) -> Store:
        """The home's store; until `neuron-pilot new` has made one, a MissingStore that lists no studies."""
        if isinstance(self._store, MissingStore) and self._store.home.db.exists():
            self._store = open_store(self._store.home.root)
        return self._store  # type: ignore[return-value]

    def on_mount(self) -> None:
        if self.user_keymap:
            self.set_keymap(self.user_keymap)
        self.push_screen(HomeScreen())
        if self.initial_study is not None:
            self.open_study(self.initial_study, run=self.autorun)

    async def on_event(self, event: events.Event) -> None:
        """Type-ahead: keys typed before a screen that wants them (TYPE_AHEAD, e.g. the new-study form
        opened with `n`) was ready were dispatched to the screen beneath and come back here unhandled;
        they are handed, in order, to the new screen instead of the old screen's bindings."""
        if isinstance(event, events.Key) and event.is_forwarded and event not in self._typed_ahead \
                and self.screen_stack:
            screen = self.screen
            ready_at = getattr(screen, "ready_at", None)
            if getattr(screen, "TYPE_AHEAD", False) and (ready_at is None or event.time < ready_at):
                again = events.Key(event.key, event.character)
                self._typed_ahead.add(again)  # handed to that screen once, never handed on again
                screen._forward_event(again)
                return
        await super().on_event(event)

    # ---- navigation ---------------------------------------------------------------------------
    def study_screen(self, study_id: int) -> Optional[StudyScreen]:
        """The open screen of that study, even under a modal (it keeps updating beneath)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, StudyScreen) and screen.study_id == study_id:
                return screen
        return None

    def open_study(self, study_id: int, *, replace: bool = False, run: bool = False) -> None:
        screen = StudyScreen(study_id)
        if replace or isinstance(self.screen, StudyScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)
        if run:
            self.call_after_refresh(self.start_run, study_id)

    def action_new_study(self) -> None:
        self.push_screen(NewStudyScreen())

    # ---- the demo study ------------------------------------------------------------------------
    def start_demo(self) -> None:
        """Open the demo study (examples/studies/demo.toml) and run it: the existing one when this home
        has it, else created first (`neuron-pilot new` in a subprocess: the UI never loads torch)."""
        existing = demo_study_id(self.store)
        if existing is not None:
            self.notify(f"opening the demo study (study {existing}) and running / resuming it", title="demo")
            self.open_study(existing, run=True)
            return
        if any(w.group == "demo" and w.is_running for w in self.workers):
            return
        self.notify("creating the demo study (checks the shipped model and corpora: a few seconds)…",
                    title="demo", timeout=6)
        self._create_demo()

    @work(thread=True, group="demo", exclusive=True, exit_on_error=False)
    def _create_demo(self) -> int:
        from tui.study_form import create_with_cli

        result = create_with_cli(self.store.home.root, DEMO_STUDY)
        if result.error or result.study_id is None:
            raise BadInput(f"the demo study could not be created: {result.error}")
        return result.study_id

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    async def action_quit(self) -> None:
        handle = self.active_run
        message = None
        if handle is not None and handle.current_stage:
            message = (f"stage {handle.current_stage} of study {handle.study_id} keeps running in its worker "
                       f"process; reopen neuron-pilot to follow it")
        alive = [sid for sid, run in self.detached_runs.items() if run.alive()]
        if alive:
            message = (f"study {alive[0]}'s runner goes on in the background until a gate needs you; "
                       f"reopen neuron-pilot to follow it")
        self.exit(0, message=message)

    # ---- running ------------------------------------------------------------------------------
    def start_run(self, study_id: int, decide: Optional[str] = None) -> bool:
        """Run (or resume) a study's stages in the background; False when something else runs.
        decide = "rules" (background runs only) lets the protocol's rules decide every gate."""
        if self.active_run is not None:
            which = "this study" if self.active_run.study_id == study_id else f"study {self.active_run.study_id}"
            self.notify(f"{which} is already running; wait for it or cancel it (x)", severity="warning")
            return False
        busy = StageWorker.running(self.store, study_id)
        if busy:
            self.notify(f"stage {busy[0].stage} is still running in {busy[0].describe()}; wait for it or "
                        f"cancel it (x)", severity="warning")
            return False
        if self.detach:
            return self._start_detached(study_id, decide or self.decide)
        if decide == "rules":
            self.notify("rules decide the gates only in a background run (neuron-pilot's default); "
                        "press r and decide each gate", severity="warning")
            return False
        handle = RunHandle(study_id, self.post_message)
        self.active_run = handle
        screen = self.study_screen(study_id)
        if screen is not None:
            screen.run_started()
        self._run_stages(handle)
        return True

    def _start_detached(self, study_id: int, decide: Optional[str]) -> bool:
        """Start the study's background runner and have its screen follow it."""
        try:
            started = start_detached(self.store, study_id, decide=decide)
        except BadInput as exc:
            self.notify(str(exc), severity="warning")
            return False
        self.detached_runs[study_id] = started
        screen = self.study_screen(study_id)
        if screen is not None:
            screen.run_started()
            screen.follow_runner(started)
        return True

    def runs_study(self, study_id: int) -> bool:
        """Whether this UI's own run (not a followed worker) drives that study now."""
        return self.active_run is not None and self.active_run.study_id == study_id

    def cancel_run(self, study_id: int) -> bool:
        handle = self.active_run
        if handle is None or handle.study_id != study_id:
            return cancel_coordinator(self.store, study_id)  # a background runner: it stops its stage
        return handle.cancel()

    @work(thread=True, group="stages", exclusive=True, exit_on_error=False, name="run-stages")
    def _run_stages(self, handle: RunHandle) -> Optional[RunOutcome]:
        worker = get_current_worker()

        def make(h: RunHandle) -> Runner:
            return Runner(self.store, h.study_id, headless=False, on_event=h.on_event, holder="tui")

        return run_in_daemon(handle, make, lambda: worker.is_cancelled)

    def on_stage_progress(self, msg: StageProgress) -> None:
        screen = self.study_screen(msg.study)
        if screen is not None:
            screen.show_progress(msg)

    def on_stage_log(self, msg: StageLog) -> None:
        screen = self.study_screen(msg.study)
        if screen is not None:
            screen.show_log(msg)

    def on_stage_finished(self, msg: StageFinished) -> None:
        screen = self.study_screen(msg.study)
        if screen is not None:
            screen.show_finished(msg)

    # ---- export -------------------------------------------------------------------------------
    def choose_export(self, study_id: int) -> None:
        def chosen(fmt: Optional[str]) -> None:
            if fmt:
                self.export_study(study_id, fmt)

        self.push_screen(ExportScreen(), chosen)

    def export_study(self, study_id: int, fmt: str) -> None:
        screen = self.study_screen(study_id)
        if screen is not None:
            screen.set_busy(f"writing the {fmt} export of study {study_id}…")
        self._export(study_id, fmt)

    @work(thread=True, group="export", exit_on_error=False)
    def _export(self, study_id: int, fmt: str) -> tuple[Path, str]:
        from lab.report import headline

        study = self.store.study(study_id)
        path = write_export(self.store, study, fmt)
        return path, headline_line(headline(self.store, study))

    # ---- worker outcomes ------------------------------------------------------------------------
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "stages":
            self._stages_changed(worker, event.state)
        elif worker.group == "export":
            screen = next((s for s in reversed(self.screen_stack) if isinstance(s, StudyScreen)), None)
            if event.state == WorkerState.SUCCESS:
                path, head = worker.result
                self.last_export = path
                # the path goes to the status line (toasts sit at the top, so none covers it) and the log
                self.notify("export written; its path is in the status line", title="export", timeout=5)
                if screen is not None:
                    screen.set_status(f"exported to {path}")
                    screen.write_log("", "info", f"exported to {path}")
                    screen.write_log("", "info", head)
            elif event.state == WorkerState.ERROR:
                if screen is not None:
                    screen.set_status("the export was not written (see the notice)")
                if isinstance(worker.error, BadInput):
                    self.notify(str(worker.error), title="export", severity="error", timeout=10)
                else:
                    self.show_error("Export failed", worker.error)
        elif worker.group == "demo":
            if event.state == WorkerState.SUCCESS:
                if isinstance(self.screen, HomeScreen):
                    self.screen.refresh_rows()
                self.open_study(int(worker.result), run=True)
            elif event.state == WorkerState.ERROR:
                self.show_error("Demo", worker.error)
        elif event.state == WorkerState.ERROR and worker.group != "create":
            self.show_error(f"{worker.name or 'background work'} failed", worker.error)

    def _stages_changed(self, worker: Worker, state: WorkerState) -> None:
        if state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        handle, self.active_run = self.active_run, None
        study_id = handle.study_id if handle else None
        if state == WorkerState.ERROR:
            self.show_error("Running the study stopped with an error", worker.error)
            if study_id is not None and self.study_screen(study_id):
                self.study_screen(study_id).refresh_view()  # type: ignore[union-attr]
            return
        outcome = worker.result if state == WorkerState.SUCCESS else None
        if outcome is None or study_id is None:
            return
        screen = self.study_screen(study_id)
        if screen is not None:
            screen.run_ended(outcome)
        else:
            self.notify(outcome.message, title=f"study {study_id}", severity="error" if outcome.code else "information")

    def show_error(self, title: str, error: Optional[BaseException]) -> None:
        if error is None:
            message, details = "unknown error", ""
        elif isinstance(error, BadInput):
            message, details = str(error), ""
        else:
            message = f"{type(error).__name__}: {error}"
            details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if isinstance(self.screen, ErrorScreen):
            return  # one error modal at a time
        self.push_screen(ErrorScreen(title, message, details))
