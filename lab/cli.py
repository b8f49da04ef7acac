"""The `neuron-pilot` command (DESIGN.md's CLI contract). Exit codes: 0 ok, 1 stage failed, 2 bad input."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Optional, Sequence

from sqlalchemy.exc import DBAPIError

from lab.core.errors import BadInput
from lab.core.paths import Home
from lab.core.resources import ResourceExhausted
from lab.core.events import Event
from lab.core.paths import DEMO_STUDY
from lab.core.text import escape_controls


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, `error: what; how` (exit 2), like every bad input."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        hint = f"run `{self.prog} --help` for the usage"
        print(f"error: {' '.join(message.split())}; {hint}", file=sys.stderr)
        raise SystemExit(2)


def _add_home(p: argparse.ArgumentParser, root: bool = False) -> None:
    # A subcommand's --home must not overwrite the root one (`neuron-pilot --home X status 1`):
    # only the root parser has a default; a subcommand sets the value only when it is given.
    p.add_argument("--home", default=None if root else argparse.SUPPRESS,
                   help="lab home (default: $NEURON_PILOT_HOME or the user data dir)")


def build_parser() -> argparse.ArgumentParser:
    ap = OneLineParser(prog="neuron-pilot", description="Staged pilot studies of language-specific neurons.")
    _add_home(ap, root=True)
    sub = ap.add_subparsers(dest="command")
    p = sub.add_parser("tui", help="open the terminal UI")
    p.add_argument("study", nargs="?")
    _add_home(p)
    p = sub.add_parser("demo", help="create (or resume) the demo study and run the whole protocol")
    p.add_argument("--headless", action="store_true", help="no UI: print progress, apply the gate rules")
    p.add_argument("--accept-underpowered", action="store_true",
                   help="run even when the evaluation cannot detect min_gain_points (see docs/statistics.md)")
    _add_home(p)
    p = sub.add_parser("new", help="validate a study file and create the study")
    p.add_argument("study_file")
    _add_home(p)
    p = sub.add_parser("run", help="run (or resume) a study's stages in worker processes")
    p.add_argument("study")
    p.add_argument("--until", default=None, help="stop after this stage")
    p.add_argument("--headless", action="store_true", help="no UI: print progress, apply the gate rules")
    p.add_argument("--detach", action="store_true",
                   help="run in a background runner that outlives this shell (log: <home>/logs/study-N/runner.log)")
    p.add_argument("--decide", choices=["person", "rules"], default=None,
                   help="who decides gates: rules (the protocol's rules) or person (stop at each gate); "
                        "default: the study's [study] decide")
    p.add_argument("--accept-underpowered", action="store_true",
                   help="run even when the evaluation cannot detect min_gain_points (see docs/statistics.md)")
    p.add_argument("--shards", default=None, metavar="N",
                   help="split identification into N units whose statistics are merged exactly (stored with the "
                        "study as [identify] shards; see docs/identify.md)")
    _add_home(p)
    p = sub.add_parser("status", help="stage states, decisions, headline metrics")
    p.add_argument("study")
    p.add_argument("--json", action="store_true")
    _add_home(p)
    p = sub.add_parser("studies", help="list studies")
    p.add_argument("--json", action="store_true")
    _add_home(p)
    p = sub.add_parser("export", help="the go/no-go summary and metric tables")
    p.add_argument("study", nargs="?")
    p.add_argument("--compare", nargs="+", default=None, metavar="STUDY",
                   help="two or more studies: their headlines side by side, with differences")
    p.add_argument("--format", default="json")
    p.add_argument("-o", "--output", default=None)
    p.add_argument("--full-tokens", type=int, default=None,
                   help="cost estimate: identification tokens per language of the full-scale run")
    p.add_argument("--full-items", type=int, default=None,
                   help="cost estimate: evaluation items per language and condition of the full-scale run")
    _add_home(p)
    p = sub.add_parser("decide", help="record a gate decision (what the TUI's decision form does)")
    p.add_argument("study")
    p.add_argument("stage")
    p.add_argument("verdict", choices=["go", "no-go", "revise", "inconclusive"])
    p.add_argument("--rationale", required=True)
    p.add_argument("--by", required=True)
    _add_home(p)
    p = sub.add_parser("cancel", help="stop a study's running stage: it checkpoints and stops, resumable by run")
    p.add_argument("study")
    _add_home(p)
    p = sub.add_parser("cluster", help="Slurm: check that the cluster takes the study's jobs (docs/cluster.md)")
    csub = p.add_subparsers(dest="cluster_command", metavar="check", required=True, parser_class=OneLineParser)
    c = csub.add_parser("check", help="partition exists, study home visible from a compute node, Python works there")
    c.add_argument("study")
    c.add_argument("--wait", type=float, default=300.0,
                   help="seconds to wait for the check job to run (default 300)")
    _add_home(c)
    p = sub.add_parser("bench", help="statistics-collection and intervention overhead vs a plain forward pass")
    p.add_argument("--model", default=None, help="a model folder or hub id (default: a random ~30M Llama)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--tokens", type=int, default=None)
    p.add_argument("--device", default="auto")
    _add_home(p)
    return ap


class ProgressPrinter:
    """Headless progress: one line per stage event, progress at most once a second per stage."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stdout
        self._last: dict[str, float] = {}

    def __call__(self, ev: Event) -> None:
        if ev.event == "progress":
            now = time.monotonic()
            final = ev.data.get("done") == ev.data.get("total")
            if not final and now - self._last.get(ev.stage, 0.0) < 1.0:
                return
            self._last[ev.stage] = now
        if ev.event == "metric":
            return
        prefix = f"[{ev.stage}]" if ev.stage else "[run]"
        print(f"{prefix} {ev.describe()}", file=self.stream, flush=True)


def _store(args: argparse.Namespace, create: bool = True, migrate: Optional[bool] = None) -> Any:
    """The home's store. Readers (status, studies, export) pass create=False and never write to open it."""
    from lab.store import Store

    return Store(args.home, create=create, migrate=migrate)


def cmd_new(args: argparse.Namespace) -> int:
    from lab.study.create import create_study, validate

    from lab.core import faults
    from lab.store.health import check_home

    faults.set_stage("new")  # tests only: NEURON_PILOT_TEST_FAULT=dbfull:new
    home = Home(args.home)
    check_home(home.root)
    validate(args.study_file, home.root)  # every check before the DB is even opened
    study = create_study(_store(args), args.study_file)
    print(study.id)
    return 0


def _run(store: Any, study_ref: Any, until: Optional[str], headless: bool, accept_underpowered: bool = False,
         detach: bool = False, decide: Optional[str] = None) -> int:
    from lab.run.runner import Runner

    if not headless and not detach and sys.stdout.isatty():
        return _tui(store.home.root, str(study_ref), run=True, decide=decide)
    # the foreground headless run applies the rules unless told --decide person (then it stops at a gate)
    runner = Runner(store, study_ref, headless=decide != "person" or detach, on_event=ProgressPrinter())
    if not accept_underpowered and until != "criteria" and until in (None, *runner.protocol.stage_names):
        from lab.gates.power import underpowered_refusal  # power before compute (docs/statistics.md)

        refusal = underpowered_refusal(store, runner.study)
        if refusal:
            print(f"error: {refusal}", file=sys.stderr)
            return 2
    if detach:
        from lab.run.coordinator import start_detached, study_decide_mode

        started = start_detached(store, runner.study_id, decide=decide, until=until)
        mode = decide or study_decide_mode(runner.study)
        print(f"runner pid {started.pid} drives study {runner.study_id} in the background (decisions by {mode}); "
              f"log: {started.log}; follow it with `neuron-pilot tui {runner.study_id}`")
        return 0
    outcome = runner.run(until=until)
    prefix = "error: " if outcome.code == 2 else ""  # bad input reads like every other exit-2 line
    print(prefix + outcome.message, file=sys.stderr if outcome.code else sys.stdout)
    return outcome.code


def cmd_run(args: argparse.Namespace) -> int:
    store = _store(args, create=False, migrate=True)
    if args.shards is not None:
        from lab.study.create import set_shards

        said = set_shards(store, args.study, str(args.shards))
        if said:
            print(said)
    return _run(store, args.study, args.until, args.headless,
                args.accept_underpowered, args.detach, args.decide)


def cmd_demo(args: argparse.Namespace) -> int:
    from lab.report import write_export
    from lab.study.create import create_study

    store = _store(args)
    existing = [s for s in store.studies() if s.source_path == str(DEMO_STUDY)]
    study = existing[-1] if existing else create_study(store, DEMO_STUDY)
    print(f"demo study {study.id} ({'resumed' if existing else 'created'}) in {store.home.root}")
    headless = args.headless or not sys.stdout.isatty()
    code = _run(store, study.id, None, headless, args.accept_underpowered)
    if code == 0 or headless:
        path = write_export(store, store.study(study.id), "json")
        print(f"summary: {path}")
    return code


def status_dict(store: Any, study: Any) -> dict[str, Any]:
    from lab.report import summary

    s = summary(store, study)
    runs = {r.stage: r for r in store.stage_runs(study.id)}
    for st in s["stages"]:
        r = runs[st["name"]]
        st["attempts"] = r.attempts
        st["error"] = r.error
        st["progress"] = json.loads(r.progress_json) if r.progress_json else None
        st["recommendation"] = json.loads(r.recommendation_json) if r.recommendation_json else None
    from lab.run.workers import unit_report

    compute = json.loads(study.config_json or "{}").get("compute") or {}
    for st in s["stages"]:  # where a running stage's unit stands: job id, scheduler state and reason, node
        st["unit"] = unit_report(store, runs[st["name"]], compute)
    lease = store.lease(study.id)
    return {"study": s["study"], "stages": s["stages"], "metrics": s["metrics"], "verdict": s["verdict"],
            "runner": None if lease is None else {"holder": lease.holder, "host": lease.host, "pid": lease.pid}}


def cmd_status(args: argparse.Namespace) -> int:
    store = _store(args, create=False)
    study = store.study(args.study)
    store.mark_stale(study.id)  # a dead local worker's stage shows as interrupted
    data = status_dict(store, study)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"study {study.id}: {escape_controls(study.name)}  (protocol {study.protocol}, "
          f"model {escape_controls(study.model_id)})")
    if study.trust_remote_code:
        print("  trust_remote_code: ON (the study opted in to running the model's own code)")
    for st in data["stages"]:
        d = st["decision"]
        dec = f"  decision: {d['verdict']} by {escape_controls(d['by'])}" if d else ""
        rule = (st.get("gate") or {}).get("recommendation")
        dec += f"  (rule: {rule})" if rule and (not d or d["verdict"] != rule) else ""
        err = f"  ({escape_controls(st['error'])})" if st["error"] and st["status"] != "done" else ""
        unit = st.get("unit")
        if unit:
            p = unit.get("progress") or {}
            done = f" · {p.get('label') or ''} {p.get('done')}/{p.get('total')} {p.get('unit') or ''}" if p else ""
            err += f"  [{escape_controls(unit.get('describe') or str(unit.get('state')))}{escape_controls(done)}]"
        print(f"  {st['name']:<10} {st['status']:<12}{dec}{err}")
        for u in (unit or {}).get("units") or []:  # a stage that runs as several units: one line each
            job = f" job {u['job_id']}" if u.get("job_id") else ""
            p = u.get("progress") or {}
            done = f" · {p.get('label') or ''} {p.get('done')}/{p.get('total')} {p.get('unit') or ''}" if p else ""
            print(f"    {escape_controls(u['unit']):<14} {escape_controls(str(u.get('state') or u['row_state']))}"
                  f"{escape_controls(job)}{escape_controls(done)}")
    print(f"verdict: {data['verdict']['decision']}")
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    store = _store(args, create=False)
    rows = []
    for s in store.studies():
        runs = store.stage_runs(s.id)
        current = next((r for r in runs if r.state.value != "done"), None)
        rows.append({"id": s.id, "name": s.name, "protocol": s.protocol, "model": s.model_id,
                     "stage": current.stage if current else "complete",
                     "state": current.state.value if current else "done",
                     "updated_at": s.updated_at.isoformat()})
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for r in rows:
            name, model = escape_controls(r["name"]), escape_controls(r["model"])
            print(f"{r['id']:>4}  {name:<28} {r['stage']:<10} {r['state']:<12} {model}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from lab.report import FullSize, write_comparison, write_export

    if (args.study is None) == (args.compare is None):
        raise BadInput("export needs either one STUDY or --compare S1 S2 ...; e.g. `neuron-pilot export 1 --format md`")
    from lab.core import faults
    from lab.core.artifacts import check_output_path

    faults.set_stage("export")  # tests only: NEURON_PILOT_TEST_FAULT=enospc:export
    size = FullSize.stated_as(args.full_tokens, args.full_items)
    store = _store(args, create=False)
    if args.output is not None:
        out = check_output_path(args.output, store.home.root)
        if args.format == "md" and out.exists() and not out.is_file():
            raise BadInput(f"-o {args.output}: a Markdown export writes its charts into a folder beside the "
                           f"file; give a file path, or use --format json, csv or html for a device")
    if args.compare is not None:
        path = write_comparison(store, [store.study(s) for s in args.compare], args.format, args.output, size)
    else:
        path = write_export(store, store.study(args.study), args.format, args.output, size)
    print(path)
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    store = _store(args, create=False, migrate=True)
    study = store.study(args.study)
    run = store.stage_run(study.id, args.stage)
    if run.state.value != "done":
        raise BadInput(f"stage {args.stage} is {run.state.value}, not done; run it before deciding its gate")
    rec = json.loads(run.recommendation_json) if run.recommendation_json else None
    d = store.add_decision(study.id, args.stage, args.verdict, args.rationale, args.by, rec)
    print(f"decision {d.id}: {d.verdict} on {args.stage} by {d.by}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Stop the study's pilot: the background runner (which asks its running stage to checkpoint and stop)
    or, with no runner here, each running stage's unit itself (SIGTERM / scancel). Resumable by `run`."""
    from lab.run.coordinator import cancel_coordinator, coordinator_of
    from lab.run.workers import cancel_units

    store = _store(args, create=False)
    study = store.study(args.study)
    info = coordinator_of(store, study.id)
    if info is not None and cancel_coordinator(store, study.id):
        print(f"asked the {info.describe()} to stop: its running stage checkpoints and stops; "
              f"`neuron-pilot run {study.id}` resumes it")
        return 0
    compute = json.loads(study.config_json or "{}").get("compute") or {}
    asked = cancel_units(store, study.id, compute)
    for line in asked:
        print(line)
    if not asked:
        print(f"nothing of study {study.id} is running")
    else:
        print(f"`neuron-pilot run {study.id}` resumes from the last checkpoint")
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """`cluster check STUDY`: each check prints `ok: ...`; the first that fails is one line, exit 2."""
    from lab.run.slurm import cluster_check

    if not math.isfinite(args.wait) or args.wait <= 0:
        raise BadInput(f"--wait {args.wait:g} must be a positive number of seconds")
    store = _store(args, create=False)
    study = store.study(args.study)
    compute = json.loads(study.config_json).get("compute") or {}
    cluster_check(store.home, study.id, compute, wait_s=args.wait, say=lambda line: print(line, flush=True))
    print(f"study {study.id} can run on the cluster: `neuron-pilot run {study.id} --detach`")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from lab.bench.overhead import run_bench  # imported here: the benchmark's module is only needed by this command

    return run_bench(args)


def _tui(home: Any, study: Optional[str] = None, run: bool = False, decide: Optional[str] = None) -> int:
    import multiprocessing.resource_tracker

    multiprocessing.resource_tracker.ensure_running()
    from tui.app import NeuronPilotApp

    app = NeuronPilotApp(home=str(home) if home else None, study=study, autorun=run, detach=True, decide=decide)
    app.run()
    return int(app.return_code or 0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # a usage error (one line, printed) or --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    handlers = {"new": cmd_new, "run": cmd_run, "status": cmd_status, "studies": cmd_studies,
                "export": cmd_export, "demo": cmd_demo, "bench": cmd_bench, "decide": cmd_decide,
                "cluster": cmd_cluster, "cancel": cmd_cancel}
    try:
        if args.command in (None, "tui"):
            from lab.store.health import check_home

            home = Home(args.home)
            check_home(home.root)  # the app opens the store, never creates or migrates it (`new` does)
            return _tui(home.root, getattr(args, "study", None))
        code = handlers[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except (BadInput, ResourceExhausted) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DBAPIError as exc:  # an SQLite fault met after opening (locked, full, read-only, damaged)
        from lab.store.health import explain

        print(f"error: {explain(exc, Home(getattr(args, 'home', None)).root)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; running stages go on in their own processes — `neuron-pilot run` resumes", file=sys.stderr)
        return 130


def _stdout_closed() -> int:
    """The reader of our stdout went away (`status 1 | head -1`): stop quietly, as a pipe writer does."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush then has nowhere to fail
    except (OSError, ValueError):
        pass
    return 141


if __name__ == "__main__":
    sys.exit(main())
