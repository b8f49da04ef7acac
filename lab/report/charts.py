"""Report charts as PNG bytes (matplotlib, Agg canvas, no pyplot global state): accuracy by language
and condition with CI error bars, the evaluate gate's intervals against its thresholds, the PPXC
heatmap, neurons per layer. A chart is drawn only for
data that exists, so a study that stopped early still exports."""

from __future__ import annotations

import io
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")  # never a GUI backend: exports run headless

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lab.report.evidence import conditions, language_order, neurons_per_layer, ppxc_matrix  # noqa: E402
from lab.report.facts import StudyFacts  # noqa: E402
from lab.report.gates import gate_numbers  # noqa: E402

DPI = 110
COLORS = {"baseline": "#7a7a7a", "intervention": "#1f6fb4", "control": "#d98b2b"}


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def accuracy_chart(facts: StudyFacts) -> Optional[bytes]:
    rows = facts.rows("evaluate", "accuracy")
    if not rows:
        return None
    conds = conditions(facts)
    langs = language_order(facts, [m.language for m in rows])
    by = {(m.language, m.condition): m for m in rows}
    fig = Figure(figsize=(max(4.5, 1.1 * len(langs) * max(1, len(conds)) / 2 + 2), 3.4))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(conds))
    for i, cond in enumerate(conds):
        xs, ys, err_lo, err_hi = [], [], [], []
        for j, lang in enumerate(langs):
            m = by.get((lang, cond))
            if m is None:
                continue
            xs.append(j + (i - (len(conds) - 1) / 2) * width)
            ys.append(100 * m.value)
            err_lo.append(100 * (m.value - m.ci_low) if m.ci_low is not None else 0.0)
            err_hi.append(100 * (m.ci_high - m.value) if m.ci_high is not None else 0.0)
        ax.bar(xs, ys, width, yerr=[err_lo, err_hi], capsize=3, label=cond, color=COLORS.get(cond))
    ax.set_xticks(range(len(langs)), [f"{x}*" if x in facts.targets else x for x in langs])
    ax.set_ylabel("accuracy (%) with 95% CI")
    ax.set_ylim(0, 100)
    ax.set_title("Accuracy by language and condition (* = target)")
    ax.legend(fontsize=8, ncols=min(len(conds), 4), loc="upper right")
    return _png(fig)


def ppxc_heatmap(facts: StudyFacts) -> Optional[bytes]:
    grid = ppxc_matrix(facts)
    if grid is None:
        return None
    langs = grid["languages"]
    panels = [("identified", grid["identified"])] + ([("random control", grid["control"])] if grid.get("control") else [])
    fig = Figure(figsize=(3.6 * len(panels) + 0.8, 3.4))
    vmax = max(abs(v) for _, g in panels for row in g for v in row) or 1.0
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image: Any = None
    for k, (ax, (title, g)) in enumerate(zip(axes, panels)):
        image = ax.imshow(g, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_yticks(range(len(langs)), langs)
        ax.set_xlabel("language scored")
        if k == 0:
            ax.set_ylabel("neurons switched off")
        ax.set_title(f"PPL change: {title}", fontsize=10)
        for i, row in enumerate(g):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="ΔPPL")
    return _png(fig)


def neurons_chart(facts: StudyFacts) -> Optional[bytes]:
    table = neurons_per_layer(facts)
    langs = [c for c in table.columns if c != "layer"]
    if table.empty or not langs:
        return None
    fig = Figure(figsize=(max(4.5, 0.35 * len(table) + 2.5), 3.2))
    ax = fig.add_subplot()
    bottom = [0] * len(table)
    for lang in langs:
        vals = table[lang].tolist()
        ax.bar(table["layer"].tolist(), vals, bottom=bottom, label=lang)
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer")
    ax.set_ylabel("neurons")
    ax.set_title("Identified neurons per layer")
    ax.legend(fontsize=8, ncols=min(len(langs), 6))
    return _png(fig)


def gate_interval_chart(facts: StudyFacts) -> Optional[bytes]:
    """Each comparison's interval as a horizontal bar with its threshold marked (matplotlib, Agg)."""
    comps = gate_numbers(facts, "evaluate").get("comparisons") or []
    if not comps:
        return None
    colors = {"go": "#2e7d32", "no-go": "#c62828", "inconclusive": "#8e44ad"}
    fig = Figure(figsize=(6.4, 0.55 * len(comps) + 1.2))
    ax = fig.add_subplot()
    for i, c in enumerate(reversed(comps)):
        col = colors.get(c["verdict"], "#555555")
        ax.plot([c["low"], c["high"]], [i, i], color=col, linewidth=3, solid_capstyle="butt")
        ax.plot([c["value"]], [i], "o", color=col)
        ax.plot([c["threshold"]], [i], "|", color="black", markersize=16, markeredgewidth=2)
    ax.set_yticks(range(len(comps)), [f"{c['name']} ({c['verdict']})" for c in reversed(comps)], fontsize=8)
    ax.axvline(0, color="#999999", linewidth=0.8, linestyle=":")
    ax.set_xlabel("points (estimate ● with interval; | = threshold)")
    ax.set_title("Evaluate gate: intervals against thresholds")
    return _png(fig)


CHARTS = {"accuracy": ("Accuracy by language and condition", accuracy_chart),
          "gate_intervals": ("Evaluate gate: intervals against thresholds", gate_interval_chart),
          "ppxc": ("Perplexity-change matrix", ppxc_heatmap),
          "neurons_per_layer": ("Neurons per layer", neurons_chart)}


def render_charts(facts: StudyFacts) -> dict[str, tuple[str, bytes]]:
    """name → (title, PNG bytes) for every chart whose data exists."""
    out: dict[str, tuple[str, bytes]] = {}
    for name, (title, draw) in CHARTS.items():
        png = draw(facts)
        if png is not None:
            out[name] = (title, png)
    return out
