"""One study: the protocol's stages as a stepper, the selected stage's details and results, the live
progress of whatever runs, the log, decisions and export.

Live events reach this screen two ways: from the app's own runner (messages forwarded by the app),
or, for a stage started by an earlier UI session, by following that stage's worker through
lab.run.workers (its event log and its row in the DB: re-attach). Never touches pids or signals.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, ScrollableContainer, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, RichLog, Static, TabbedContent, TabPane

from lab.run.coordinator import DetachedRun, coordinator_of, runner_log
from lab.run.runner import RunOutcome, Runner
from lab.run.workers import EventLog, StageWorker
from lab.store import Decision, Store
from lab.core.text import escape_controls
from tui.bindings import STUDY_BINDINGS
from tui.formatting import short_model
from tui.lab_app import lab_app
from tui.messages import StageFinished, StageLog, StageProgress
from tui.render.charts import natural_width, results_charts
from tui.render.metrics import PANE_WIDTH, stage_results
from tui.render.stage_info import stage_info
from tui.screens.decision import DecisionScreen
from tui.screens.runner_follow import RunnerFollowing
from tui.screens.worker_follow import WorkerFollowing
from tui.study_state import StageView, current_stage, end_message, not_run, stage_views, stop_point, study_protocol
from tui.widgets.live_bar import LiveBar, RateTracker, stage_work
from tui.widgets.stepper import StageStepper

LEVEL_STYLE = {"warning": "yellow", "error": "bold red", "info": ""}
POLL_S = 0.25


class StudyScreen(WorkerFollowing, RunnerFollowing, Screen[None]):
    BINDINGS = STUDY_BINDINGS

    def __init__(self, study_id: int) -> None:
        super().__init__()
        self.study_id = study_id
        self.trackers: dict[str, RateTracker] = {}
        self.followers: dict[str, StageWorker] = {}  # stage → a worker this UI did not start, followed
        self.last_outcome: Optional[str] = None
        self.highlight_times: list[float] = []  # when a stage highlight was handled (latency checks)
        self.last_progress: dict[str, tuple[int, int]] = {}  # stage → (done, total) last shown
        self._initial_selection = True
        self._ticks = 0
        # a background runner (lab.run.coordinator) this screen follows: started here, or found on open
        self.runner_proc: Optional[DetachedRun] = None
        self.following_runner = False
        self._runner_log: Optional[EventLog] = None
        self._shown: set[str] = set()  # events already in the Log tab (a relayed event is in two files)

    @property
    def store(self) -> Store:
        return lab_app(self).store

    # ---- layout ---------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="study-body"):
            with Vertical(id="left"):
                yield StageStepper(id="stepper")
                yield Static("", id="study-info")
            with TabbedContent(id="tabs", initial="tab-stage"):
                with TabPane("Stage", id="tab-stage"):
                    with VerticalScroll():
                        yield Static("", id="stage-info")
                with TabPane("Results", id="tab-results"):
                    with ScrollableContainer(id="results-scroll"):
                        yield Static("", id="results")
                with TabPane("Log", id="tab-log"):
                    yield RichLog(id="log", wrap=True, max_lines=2000, markup=False)
        yield LiveBar(id="live")
        yield Footer()

    def on_mount(self) -> None:
        self.study = self.store.study(self.study_id)
        protocol = study_protocol(self.store, self.study)
        if protocol is None:
            self.app.notify(f"protocol {self.study.protocol!r} of study {self.study_id} cannot be loaded",
                            severity="error")
            self.app.pop_screen()
            return
        self.protocol = protocol
        self.cfg: dict[str, Any] = json.loads(self.study.config_json)
        self.languages: list[str] = list(self.cfg.get("languages", {}).get("all", []))
        self.sub_title = f"{escape_controls(self.study.name)} · study {self.study_id}"
        self.query_one("#study-info", Static).update(self._study_info())
        self.read_back_log()
        if not self._app_runs_this_study():
            for stage in StageWorker.mark_dead(self.store, self.study_id):
                self.write_log(stage, "warning", "interrupted: its worker is gone; press r to resume")
                self.set_status(f"stage {stage} was interrupted (its worker is gone): press r to resume")
        self.ensure_recommendations()
        self.refresh_view()
        self.attach_running()
        runner = coordinator_of(self.store, self.study_id)
        if runner is not None and not self._app_runs_this_study():
            self.follow_runner(None)
            self.write_log("", "info", f"re-attached: following the background {runner.describe()}")
            self.set_status(f"a background {runner.describe()} drives this study; following it (x cancels)")
        elif runner_log(self.store, self.study_id).exists():  # a background runner stopped: where, and why
            self._say_waiting()
        if runner is None and not self._app_runs_this_study() and not self.followers:
            ended = end_message(self.query_one("#stepper", StageStepper).views)
            if ended:
                self.set_status(ended)
        self.query_one("#stepper", StageStepper).focus()
        self.set_interval(POLL_S, self._poll)

    def _study_info(self) -> Text:
        cfg = self.cfg
        langs = cfg.get("languages", {})
        text = Text()
        text.append(short_model(self.study.model_id, 22) + "\n", style="bold")
        text.append(f"langs {', '.join(langs.get('all', []))}\n")
        text.append(f"targets {', '.join(langs.get('targets', []))}\n")
        text.append(f"{cfg.get('identify', {}).get('method', '?')} · "
                    f"{cfg.get('intervention', {}).get('kind', '?')} "
                    f"{cfg.get('intervention', {}).get('value', '')}\n", style="dim")
        if self.study.trust_remote_code:
            text.append("trust_remote_code ON\n", style="bold yellow")
        return text

    # ---- views ----------------------------------------------------------------------------------
    def refresh_view(self) -> None:
        views = stage_views(self.store, self.store.study(self.study_id), self.protocol)
        stepper = self.query_one("#stepper", StageStepper)
        stepper.set_views(views)
        if self._initial_selection:
            self._initial_selection = False
            current = current_stage(views)
            if current is not None:
                stepper.select_stage(current.name)
        self.update_details()

    def ensure_recommendations(self) -> None:
        """A gated stage that finished while no runner watched (UI closed) gets its rule applied now,
        exactly as the runner would, so its decision form shows the recommendation."""
        for view in stage_views(self.store, self.store.study(self.study_id), self.protocol):
            if view.awaiting_decision and view.recommendation is None:
                try:
                    Runner(self.store, self.study_id).apply_gate(view.name)
                except Exception as exc:  # a rule that cannot run must not take the screen down
                    self.write_log(view.name, "warning", f"its gate rule could not be applied: {exc}")

    def update_details(self) -> None:
        view = self.query_one("#stepper", StageStepper).selected_view
        if view is None:
            return
        views = self.query_one("#stepper", StageStepper).views
        note = None
        if view.stopped_here or (view.is_final and stop_point(views) is not None) or view.name in not_run(views):
            note = end_message(views)
            if note and self.study.source_path:
                note += f" Study file: {escape_controls(self.study.source_path)}"
        self.query_one("#stage-info", Static).update(stage_info(view, self.cfg, note))
        pane = self.query_one("#results-scroll", ScrollableContainer)
        visible = pane.scrollable_content_region.width or PANE_WIDTH
        results = stage_results(self.store, self.study_id, view.name, self.languages,
                                results_charts(self.store, self.study_id, view, self.cfg), text_width=visible)
        box = self.query_one("#results", Static)
        box.styles.width = natural_width(results)  # wider than the pane: it scrolls sideways, never cuts
        box.update(results)

    def on_resize(self) -> None:
        if hasattr(self, "protocol"):  # mounted: captions wrap at the new width of the results pane
            self.call_after_refresh(self.update_details)

    def view_of(self, stage: str) -> Optional[StageView]:
        for v in self.query_one("#stepper", StageStepper).views:
            if v.name == stage:
                return v
        return None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "stepper":
            self.update_details()
            self.highlight_times.append(time.perf_counter())

    def select_stage(self, stage: str) -> None:
        self.query_one("#stepper", StageStepper).select_stage(stage)

    def set_status(self, text: str) -> None:
        self.last_outcome = text
        self.query_one("#live", LiveBar).set_status(text)

    def set_busy(self, text: str) -> None:
        """A status that is still in progress (a spinner turns before it until the next status)."""
        self.last_outcome = text
        self.query_one("#live", LiveBar).set_busy(text)

    def write_log(self, stage: str, level: str, text: str) -> None:
        prefix = f"[{stage}] " if stage else "[run] "
        self.query_one("#log", RichLog).write(Text(prefix + text, style=LEVEL_STYLE.get(level, "")))

    # ---- live events (from the app's runner or from a followed log) -------------------------------
    def show_progress(self, msg: StageProgress) -> None:
        work = stage_work(msg.done, msg.total, msg.unit, msg.label, msg.extra)
        tracker = self.trackers.setdefault(msg.stage, RateTracker())
        tracker.add(msg.t, work.done, work.total, work.unit, msg.label)
        self.last_progress[msg.stage] = (msg.done, msg.total)
        view = self.view_of(msg.stage)
        if view is not None and view.state != "running":
            self.refresh_view()  # the stage just started: show it as running and follow it
            self.select_stage(msg.stage)
        percent = int(100 * work.fraction) if work.total else None
        self.query_one("#stepper", StageStepper).set_percent(msg.stage, percent)
        live = self.query_one("#live", LiveBar)
        if work.done == 0 and (msg.label or "").startswith("loading"):
            live.show_waiting(msg.stage, "loading model")  # the time before any work is the model loading
        else:
            live.show_progress(msg.stage, work, tracker)

    def show_log(self, msg: StageLog) -> None:
        self.write_log(msg.stage, msg.level, msg.text)
        if msg.stage and msg.text.startswith("starting stage"):  # the runner starts its worker process
            self.query_one("#live", LiveBar).show_waiting(msg.stage, "starting worker")
        elif msg.stage and msg.text.startswith("started (attempt"):  # the worker is up: it loads the model
            self.query_one("#live", LiveBar).show_waiting(msg.stage, "loading model")
        if msg.level == "warning":
            self.set_status(msg.text)

    def show_finished(self, msg: StageFinished) -> None:
        self.trackers.pop(msg.stage, None)
        self.query_one("#stepper", StageStepper).set_percent(msg.stage, None)
        level = {"done": "info", "interrupted": "warning"}.get(msg.kind, "error")
        self.write_log(msg.stage, level, f"{msg.kind}: {msg.text}")
        self.query_one("#live", LiveBar).show_idle(f"{msg.stage} {msg.kind}")
        self.refresh_view()

    def run_started(self) -> None:
        self.set_status("running: stages run in their own worker processes (x cancels, q leaves them running)")

    def run_ended(self, outcome: RunOutcome) -> None:
        self.query_one("#live", LiveBar).show_idle("idle")
        self.refresh_view()
        self.write_log("", "info" if outcome.code == 0 else "error", outcome.message)
        stopped = self.view_of(outcome.stopped_at) if outcome.stopped_at else None
        interrupted = stopped is not None and stopped.state == "interrupted"
        hint = " — press r to resume from its checkpoint" if interrupted else ""
        self.set_status(outcome.message + hint)
        if outcome.stopped_at:
            self.select_stage(outcome.stopped_at)
        if outcome.code == 0 and self._say_waiting(open_form=True):
            return  # a gate (or, after a gate ended the pilot, the final verdict) waits: its form is open
        ended = end_message(self.query_one("#stepper", StageStepper).views)
        if ended and outcome.code == 0:
            self.set_status(ended)
            return
        if outcome.awaiting_decision:
            self.open_decision(outcome.awaiting_decision)
        elif interrupted:
            self.app.notify(f"{outcome.message}; press r to resume", title="interrupted", severity="warning", timeout=8)
        elif outcome.code != 0:
            self.app.notify(outcome.message, severity="error", timeout=8)

    def _dispatch(self, msg: Any) -> None:
        if isinstance(msg, StageProgress):
            self.show_progress(msg)
        elif isinstance(msg, StageFinished):
            self.show_finished(msg)
        elif isinstance(msg, StageLog):
            self.show_log(msg)

    def _app_runs_this_study(self) -> bool:
        return lab_app(self).runs_study(self.study_id)

    # ---- actions ------------------------------------------------------------------------------
    def action_run_by_rules(self) -> None:
        """Run in the background with the protocol's rules deciding every gate (nobody need watch)."""
        self.action_run(decide="rules")

    def action_run(self, decide: Optional[str] = None) -> None:
        if self.following_runner:
            self.app.notify("the background runner still drives this study; wait for it or press x to cancel",
                            severity="warning")
            return
        if self.followers:
            stage = next(iter(self.followers))
            self.app.notify(f"stage {stage} is still running in its worker; wait for it or press x to cancel",
                            severity="warning")
            return
        from tui.screens.underpowered import run_confirmed  # power before compute: confirm an underpowered study

        run_confirmed(self.app, self.store, self.study_id, lambda: lab_app(self).start_run(self.study_id, decide))

    def action_cancel(self) -> None:
        if lab_app(self).cancel_run(self.study_id):
            self.set_status("asked the running stage to checkpoint and stop…")
            return
        for worker in self.followers.values():
            if worker.cancel():
                self.set_status(f"asked the followed {worker.describe()} to checkpoint and stop…")
                return
        self.app.notify("nothing is running", severity="information")

    def action_decide(self) -> None:
        view = self.query_one("#stepper", StageStepper).selected_view
        if view is None:
            return
        if not view.has_gate:
            self.app.notify(f"stage {view.name} has no gate to decide", severity="warning")
        elif view.state != "done":
            self.app.notify(f"stage {view.name} is {view.state}; run it before deciding its gate", severity="warning")
        else:
            self.open_decision(view.name)

    def open_decision(self, stage: str) -> None:
        view = self.view_of(stage)
        if view is not None and view.recommendation is None:
            self.ensure_recommendations()
            self.refresh_view()
            view = self.view_of(stage)
        if view is None:
            return
        self.select_stage(stage)
        screen = DecisionScreen(self.store, self.study_id, stage, view.spec.title, view.recommendation)
        self.app.push_screen(screen, self._decided)

    def _decided(self, decision: Optional[Decision]) -> None:
        if decision is None:
            self.set_status("no decision recorded; press d on the stage to decide later")
            return
        self.write_log(decision.stage, "info", f"decision: {decision.verdict} by {escape_controls(decision.by)} — "
                       f"{escape_controls(decision.rationale)}")
        self.refresh_view()
        views = self.query_one("#stepper", StageStepper).views
        view = self.view_of(decision.stage)
        if view is not None and view.is_final and all(v.state == "done" or v.name in not_run(views) for v in views):
            self.set_status(end_message(views) or f"the pilot's verdict is recorded: {decision.verdict}")
            return  # nothing is left to run
        if view is not None and view.stopped_here:
            self.set_status(f"decision on {decision.stage} recorded: {decision.verdict} — the pilot ends at this gate; "
                            f"running the verdict stage")
        else:
            self.set_status(f"decision on {decision.stage} recorded: {decision.verdict}; continuing")
        lab_app(self).start_run(self.study_id)

    def action_export(self) -> None:
        lab_app(self).choose_export(self.study_id)

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#tabs", TabbedContent).active = tab
        if tab == "tab-results":
            self.update_details()

    def action_scroll_pane(self, direction: int) -> None:
        """Page through the active tab without moving focus off the stepper."""
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.active == "tab-log":
            log = self.query_one("#log", RichLog)
            log.scroll_relative(y=direction * max(log.size.height - 2, 1), animate=False)
            return
        pane = self.query_one(f"#{tabs.active} ScrollableContainer" if tabs.active == "tab-results"
                              else f"#{tabs.active} VerticalScroll")
        pane.scroll_relative(y=direction * max(pane.size.height - 2, 1), animate=False)

    def action_generations(self) -> None:
        """Baseline vs intervention continuations of the generation probe, side by side."""
        from lab.core.errors import BadInput
        from tui.screens.generations import GenerationScreen, load_continuations

        try:
            data = load_continuations(self.store, self.study_id)
        except BadInput as exc:
            self.app.notify(f"no generations to show: {exc}", severity="warning")
            return
        self.app.push_screen(GenerationScreen(self.study_id, data))

    def action_back(self) -> None:
        self.app.pop_screen()
