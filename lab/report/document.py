"""The report as a format-neutral document (sections of paragraphs, lists, tables and charts) that the
Markdown and HTML writers render. Every number comes from headline(), cost() or the evidence tables;
every piece of text here is plain text (writers escape it for their format).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

import pandas as pd

from lab.report import evidence as ev
from lab.report.charts import render_charts
from lab.report.cost import FullSize
from lab.report.facts import StudyFacts, load_facts
from lab.report.summary import summary
from lab.store import Store, Study


@dataclass
class Para:
    text: str
    strong: bool = False


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    frame: pd.DataFrame  # display text in every cell
    caption: str = ""


@dataclass
class Chart:
    name: str
    title: str
    png: bytes


Block = Union[Para, Bullets, Table, Chart]


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    verdict: str
    sections: list[Section]
    data: dict[str, Any]  # the JSON summary the document was built from


def _pts(x: Optional[float], digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:+.{digits}f}"


def _ci(lo: Optional[float], hi: Optional[float]) -> str:
    return "no CI" if lo is None or hi is None else f"95% CI {lo:+.2f} to {hi:+.2f}"


def _kv(rows: list[tuple[str, Any]], caption: str = "") -> Table:
    return Table(pd.DataFrame({"": [k for k, _ in rows], "value": ["—" if v is None else str(v) for _, v in rows]}),
                 caption)


def _table(df: pd.DataFrame, caption: str, empty: str) -> Block:
    return Table(ev.formatted(df), caption) if not df.empty else Para(empty)


def _hours(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds / 3600:.4g} h ({seconds:,.1f} s)"


def headline_section(h: dict[str, Any]) -> Section:
    langs = h["languages"]
    w = h["worst_high_resource"]
    numbers = [
        ("mean gain on targets (points)", f"{_pts(h['mean_gain_points'])} "
         f"({_ci(h['mean_gain_ci_low_points'], h['mean_gain_ci_high_points'])}; {h['mean_gain_source']})"),
        ("random-neuron control (points)", f"{_pts(h['control_gain_points'])} "
         f"({_ci(h['control_gain_ci_low_points'], h['control_gain_ci_high_points'])})"),
        ("gain over control (points)", _pts(h["gain_over_control_points"])),
        ("worst high-resource change (points)", "n/a" if w is None else
         f"{_pts(w['points'])} on {w['language']} ({_ci(w['ci_low'], w['ci_high'])})"),
    ]
    blocks: list[Block] = [Para(h["sentence"], strong=True), Para("Question tested: " + h["question"])]
    if h["description"]:
        blocks.append(Para("Study description: " + h["description"]))
    blocks.append(Para(f"Model: {h['model']['id']} (revision {h['model']['revision'] or 'not recorded'}). "
                       f"Languages: {', '.join(langs['all'])}; targets {', '.join(langs['targets'])}; "
                       f"high-resource {', '.join(langs['high_resource']) or 'none (no regression was checked)'}. "
                       f"Tasks: {', '.join(h['tasks'])}. Identification: {h['method']}; intervention: "
                       f"{h['intervention']['kind']} ({h['intervention']['value']})."))
    blocks.append(_kv(numbers, "Decisive numbers (1 point = 1 percentage point of accuracy)"))
    return Section(f"Verdict: {h['verdict'].upper()}", blocks)


def cost_section(c: dict[str, Any], gain: Optional[float]) -> Section:
    unit = c["unit"]
    stages = pd.DataFrame([{"stage": s["name"], "status": s["status"], "compute (s)": f"{s['compute_seconds']:,.1f}",
                            "GPU (s)": f"{s['gpu_seconds']:,.1f}"} for s in c["stages"]])
    per_hour = "n/a (no evaluated gain or no compute recorded)" if c["points_per_hour"] is None else \
        f"{c['points_per_hour']:+.4g} points per {unit}"
    blocks: list[Block] = [
        Table(stages, "Compute per stage (wall time of each stage's worker)"),
        Para(f"Total: {_hours(c['total_compute_seconds'])} of compute"
             + (f", {_hours(c['total_gpu_seconds'])} on GPU" if c["total_gpu_seconds"] > 0 else ", no GPU used")
             + f". Return: {per_hour} (mean gain {_pts(gain)} points / {c['hours']:.4g} {unit}s)."),
    ]
    thr = c["throughput"]
    measured = []
    if thr["identify"]:
        t = thr["identify"]
        measured.append(f"identify read {t['tokens']:,} tokens in {t['seconds']:,.1f} s: {t['tokens_per_second']:,.0f} tokens/s")
    if thr["evaluate"]:
        t = thr["evaluate"]
        measured.append(f"evaluate scored {t['items']:,} items ({t['languages']} languages x {t['conditions']} "
                        f"conditions) in {t['seconds']:,.1f} s: {t['items_per_second']:,.2f} items/s")
    blocks.append(Para("Measured throughput:") if measured else Para("No throughput measured yet."))
    if measured:
        blocks.append(Bullets(measured))
    fs = c["full_scale"]
    if fs["total_seconds"] is not None:
        blocks.append(Para(f"Full-scale estimate: about {fs['hours']:.3g} {unit}s "
                           f"(identify {_hours(fs['identify_seconds'])}, evaluate {_hours(fs['evaluate_seconds'])}, "
                           f"other stages {_hours(fs['other_seconds'])}). This is an ESTIMATE under these assumptions:",
                           strong=True))
    else:
        blocks.append(Para("Full-scale estimate: not possible yet — " + "; ".join(fs["missing"]) + ". Assumptions it would use:"))
    blocks.append(Bullets(fs["assumptions"]))
    if c.get("batch_halvings"):
        blocks.append(Para("Out of memory: these loops went on at a smaller batch, so their throughput above "
                           "was measured at that size:", strong=True))
        blocks.append(Bullets([f"{h['stage']} ({h['loop']}): batch size halved {h['halvings']} time(s), to "
                               f"{h['batch_size']}" for h in c["batch_halvings"]]))
    return Section("Cost and return", blocks)


def evidence_section(facts: StudyFacts, charts: dict[str, tuple[str, bytes]]) -> Section:
    blocks: list[Block] = []

    def chart(name: str) -> None:
        if name in charts:
            blocks.append(Chart(name, *charts[name]))

    blocks.append(Para("Evaluation per language", strong=True))
    blocks.append(_table(ev.accuracy_table(facts), "Accuracy (%) per condition; Δ = paired difference vs baseline in "
                         "points with its 95% bootstrap CI; McNemar exact p on the same items",
                         "No evaluation results (the evaluate stage has not finished)."))
    chart("accuracy")
    blocks.extend(gate_interval_blocks(facts))
    chart("gate_intervals")
    blocks.extend(generation_blocks(facts))
    blocks.append(Para("Reproducibility", strong=True))
    blocks.append(_table(ev.stability_table(facts), "Split-half Jaccard of the neuron sets (identified vs random control)",
                         "No stability results (the reproduce stage has not finished)."))
    blocks.append(_table(ev.ppxc_table(facts), "Perplexity change on a language when its own neurons are switched off",
                         "No perplexity-change matrix."))
    chart("ppxc")
    blocks.append(Para("Neurons", strong=True))
    blocks.append(_table(ev.neuron_counts(facts), "Neurons per language (identification method and random control)",
                         "No neuron counts (the identify stage has not finished)."))
    blocks.append(_table(ev.neurons_per_layer(facts), "Identified neurons per layer", "No neurons.json."))
    chart("neurons_per_layer")
    blocks.append(Para("Gates and decisions", strong=True))
    blocks.append(_table(ev.gates_table(facts), "Each gate's recommendation and the latest recorded decision",
                         "No gate has a recommendation or a decision yet."))
    history = ev.decisions_table(facts)
    if not history.empty and history["stage"].duplicated().any():
        blocks.append(_table(history, "Decision history (oldest first)", ""))
    return Section("Evidence", blocks)


def gate_interval_blocks(facts: StudyFacts) -> list[Block]:
    """The evaluate gate's comparisons: estimate, interval, threshold, verdict, items to decide."""
    from lab.report.gates import gate_numbers, interval_caption, interval_table

    numbers = gate_numbers(facts, "evaluate")
    table = interval_table(numbers)
    if table.empty:
        return []
    return [Para("Evaluate gate: intervals against thresholds", strong=True), Table(table, interval_caption(numbers))]


def generation_blocks(facts: StudyFacts) -> list[Block]:
    """The generation probe: fidelity per language and condition, and example continuation pairs."""
    from lab.report import generation as gen

    table = gen.fidelity_table(facts)
    blocks: list[Block] = [Para("Generation side effects", strong=True)]
    if table.empty:
        return blocks + [Para("No generation probe results (the generate stage has not finished).")]
    blocks.append(_table(table, "Language fidelity of continuations (greedy and sampled) of fixed prompts: share in "
                         "the prompt's language, Δ vs baseline in points with its paired 95% bootstrap CI over "
                         "prompts, share switched to English, share switched to any other language (the "
                         "identifier's full label set), share degenerate (empty or looping), share of "
                         "prompts whose greedy continuation changed", ""))
    pairs = gen.example_pairs(facts)
    if pairs:
        blocks.append(_table(gen.examples_table(pairs), "Example greedy continuations, baseline vs "
                             f"{pairs[0]['condition']} (detected language in brackets)", ""))
    return blocks


def provenance_section(data: dict[str, Any], facts: StudyFacts) -> Section:
    prov = data["provenance"]
    model = prov["model"]
    hw = prov["hardware"]
    rows = [("model id", model.get("model_id")), ("revision / hash", model.get("revision")),
            ("source", model.get("source")), ("architecture", model.get("architecture")),
            ("adapter / hook", f"{model.get('adapter', '—')} / {model.get('hook', '—')}"),
            ("parameters", model.get("parameters")), ("dtype / device", f"{model.get('dtype', '—')} / {model.get('device', '—')}"),
            ("trust_remote_code", "ON — the study ran the model's own code" if model["trust_remote_code"] else "off"),
            ("seed", prov["seed"]), ("python", prov["python"]), ("git commit", prov["git"]),
            ("hardware", ", ".join(f"{k}={v}" for k, v in hw.items()))]
    blocks: list[Block] = [_kv(rows, "Model and run")]
    pk = pd.DataFrame({"package": list(prov["packages"]), "version": list(prov["packages"].values())})
    blocks.append(Table(pk, "Package versions at export time"))
    corpus = prov["data"]["corpus"]
    if corpus["files"]:
        cf = pd.DataFrame([{"language": f["language"], "file": f.get("file") or "", "sha256": f["sha256"]}
                           for f in corpus["files"]])
        blocks.append(Table(cf, f"Corpus files, {corpus['when']}"))
    else:
        blocks.append(Para("Corpus file hashes: not available (the corpus folder is gone or not local)."))
    arts = data["artifacts"]
    if arts:
        af = pd.DataFrame([{"stage": a["stage"], "name": a["name"], "bytes": f"{a['bytes']:,}", "sha256": a["sha256"],
                            "check": a["check"]} for a in arts])
        blocks.append(Table(af, "Artifacts (sha256 recorded when written; check = re-hashed now)"))
    if facts.tampered:
        blocks.append(Para("WARNING: these artifacts no longer match their recorded sha256 and were not used: "
                           + ", ".join(facts.tampered), strong=True))
    return Section("Provenance", blocks)


def build_document(store: Store, study: Study, size: Optional[FullSize] = None,
                   facts: Optional[StudyFacts] = None) -> Document:
    facts = facts or load_facts(store, study)
    data = summary(store, study, size, facts)
    h = data["headline"]
    reasons = Section("Why", [Bullets(data["verdict"]["reasons"] or ["no gates in this protocol"])])
    charts = render_charts(facts)
    sections = [headline_section(h), reasons, cost_section(data["cost"], h["mean_gain_points"]),
                evidence_section(facts, charts), provenance_section(data, facts)]
    title = f"Go/no-go report: {study.name} (study {facts.sid})"
    if data.get("incomplete"):  # a partial export says so before anything else
        title = f"INCOMPLETE {title}"
        sections.insert(0, Section("Incomplete", [Para(f"Incomplete: {data['incomplete']}. This is not the "
                                                       f"pilot's result.", strong=True)]))
    return Document(title=title, verdict=h["verdict"], sections=sections, data=data)
