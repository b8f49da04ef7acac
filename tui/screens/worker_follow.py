"""How a study screen follows stage workers it did not start (re-attach): each running stage's worker
found through lab.run.workers, its events relayed, and its end noticed from its row in the DB. A mixin of
StudyScreen; it touches no process, only lab.run's worker API and the store."""

from __future__ import annotations

import json
import time
from typing import Any

from lab.run.workers import StageWorker
from lab.store import StageState
from tui.messages import StageProgress, progress_extra
from tui.widgets.live_bar import LiveBar, RateTracker
from tui.widgets.stepper import StageStepper

DB_POLL_EVERY = 4  # ticks: the DB row of a followed stage is read once a second


class WorkerFollowing:
    """Following stage workers started earlier (StudyScreen provides the attributes typed below)."""

    study_id: int
    store: Any
    followers: dict[str, StageWorker]
    trackers: dict[str, RateTracker]
    following_runner: bool
    _runner_log: Any
    _ticks: int
    query_one: Any
    write_log: Any
    set_status: Any
    show_progress: Any
    ensure_recommendations: Any
    refresh_view: Any
    _app_runs_this_study: Any
    _relay: Any
    _runner_alive: Any
    _runner_ended: Any
    _say_waiting: Any

    def attach_running(self) -> None:
        """Follow stages that are running in workers this UI did not start."""
        if self._app_runs_this_study():
            return
        for worker in StageWorker.running(self.store, self.study_id):
            if worker.stage in self.followers:
                continue
            self.followers[worker.stage] = worker
            if self.following_runner:  # a stage the background runner started
                self.set_status(f"{worker.stage} is running in the background runner's {worker.describe()} "
                                f"(x cancels; q leaves it running)")
                continue
            self.write_log(worker.stage, "info", f"re-attached: following its {worker.describe()}")
            self.set_status(f"{worker.stage} is running in a worker started earlier; following it (x cancels)")
            run = self.store.stage_run(self.study_id, worker.stage)
            if run.progress_json:
                data = json.loads(run.progress_json)
                self.show_progress(StageProgress(self.study_id, run.stage, int(data.get("done") or 0),
                                                 int(data.get("total") or 0), str(data.get("unit") or ""),
                                                 data.get("label"), time.time(), progress_extra(data)))

    def _poll(self) -> None:
        if not self.followers and not self.following_runner:
            return
        self._ticks += 1
        if self._runner_log is not None:
            self._relay(self._runner_log.poll())
        if self.following_runner and self._ticks % DB_POLL_EVERY == 0:
            self.attach_running()  # each stage the runner starts
            if not self._runner_alive():
                if self._runner_log is not None:
                    self._relay(self._runner_log.poll())
                self._runner_ended()
        for stage, worker in list(self.followers.items()):
            self._relay(worker.poll())
            if self._ticks % DB_POLL_EVERY:
                continue
            run = worker.run()  # a worker found dead has its stage marked interrupted
            if run.state != StageState.running:
                self._relay(worker.poll())
                del self.followers[stage]
                self.trackers.pop(stage, None)
                self.query_one("#stepper", StageStepper).set_percent(stage, None)
                self.query_one("#live", LiveBar).show_idle("idle")
                state = run.state.value
                if self.following_runner:  # the background runner applies the gate and goes on
                    self.set_status(f"stage {stage} {state}; the background runner goes on")
                    self.refresh_view()
                    continue
                self.ensure_recommendations()
                self.refresh_view()
                if self._say_waiting():  # the runner ended first and the pilot waits on a gate: say that
                    continue
                hint = " — press r to continue" if state in ("done", "interrupted") else ""
                self.set_status(f"stage {stage} finished while followed: {state}{hint}")
