"""Results readable at 80x24: every language × language matrix a labelled heatmap with values to 3
significant digits (wider ones scroll, never cut), accuracies in points, every n saying what it
counts, the gain-against-threshold chart and the fine-tune loss sparkline; snapshots of every
results view of the demo study (its stored results, tests/tui/data/demo_results.json)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from lab.core.events import Event
from lab.store import Metric, Store
from tests.tui.demo_fixture import NOW, demo_data, load_demo_study
from tui.app import NeuronPilotApp
from tui.formatting import fmt_points, fmt_sig
from tui.render.charts import gain_chart, loss_chart, loss_series, natural_width
from tui.render.metrics import json_matrices, metric_renderables, n_caption, stage_results
from tui.screens.study import StudyScreen

SIZE = (80, 24)
LANGS = ["en", "fr", "de", "sw", "hi", "ur"]


def render(renderable, width: int | None = None) -> str:
    """As the Results tab lays it out: at its natural width, titles and captions wrapping at 80 at most."""
    console = Console(width=width or max(natural_width(renderable), 80), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def metric(name: str, value: float, language: str = "", condition: str = "", **kw: float) -> Metric:
    return Metric(study_id=1, stage="s", name=name, value=value, language=language, condition=condition, **kw)


# ---- numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, shown", [(0.0123, "0.0123"), (0.5, "0.500"), (21.34, "21.3"), (412.4, "412"),
                                          (1234.5, "1,234"), (0.99961, "1.00"), (-0.04567, "-0.0457"),
                                          (3.0, "3"), (0.0, "0"), (0.0000605, "6.05e-05"), (None, "—")])
def test_values_to_three_significant_digits(value, shown) -> None:
    assert fmt_sig(value) == shown


def test_points_are_signed_with_two_decimals() -> None:
    assert fmt_points(1.25) == "+1.25" and fmt_points(-0.5) == "-0.50" and fmt_points(71.2, signed=False) == "71.20"


# ---- matrices ------------------------------------------------------------------------------------
def test_prefixed_conditions_become_one_labelled_heatmap_each() -> None:
    """ppxc rows (language scored, condition off:<whose neurons>) → a heatmap per prefix, rows and
    columns labelled, values to 3 significant digits, none cut."""
    rows = [metric("ppxc", 0.1234 * (i + 1) + (0.5 if a == b else 0), b, f"{prefix}:{a}", n=4096)
            for prefix in ("off", "control-off") for i, a in enumerate(LANGS) for b in LANGS]
    parts = metric_renderables(rows, LANGS)
    assert len(parts) == 2
    text = render(parts[0])
    lines = text.splitlines()
    assert lines[0] == "ppxc · off"
    assert lines[1].split() == LANGS  # column labels
    body = [ln.split() for ln in lines[3:9]]
    assert [r[0] for r in body] == LANGS  # row labels
    assert body[0][1:] == ["0.623", "0.123", "0.123", "0.123", "0.123", "0.123"]  # row en: en's neurons off
    assert "…" not in text
    assert "whose neurons are off" in text and "n = 4,096 held-out tokens scored" in text
    assert render(parts[1]).splitlines()[0] == "ppxc · control-off"


def test_language_pairs_become_a_symmetric_heatmap_per_condition() -> None:
    rows = [metric("overlap_jaccard", v, f"{a}|{b}", cond, n=12) for cond in ("lape", "control")
            for a, b, v in (("en", "fr", 0.25), ("en", "sw", 0.0833), ("fr", "sw", 0.1))]
    parts = metric_renderables(rows, ["en", "fr", "sw"])
    assert len(parts) == 2
    lines = render(parts[0]).splitlines()
    assert lines[0] == "overlap_jaccard · lape"
    grid = [ln.split() for ln in lines[3:6]]
    assert grid == [["en", "—", "0.250", "0.0833"], ["fr", "0.250", "—", "0.100"], ["sw", "0.0833", "0.100", "—"]]
    assert "n = 12 neurons in the union" in render(parts[0])
    assert "colour: blue 0.0833 → red 0.250" in render(parts[0])  # what the colours mean


def test_an_artifact_matrix_a_metric_heatmap_already_shows_is_left_out() -> None:
    matrix = [[0.5, 0.1], [0.2, 0.4]]
    rows = [metric("ppxc", matrix[i][j], b, f"off:{a}") for i, a in enumerate(["en", "sw"]) for j, b in enumerate(["en", "sw"])]
    drawn: set = set()
    metric_renderables(rows, ["en", "sw"], drawn)
    data = {"languages": ["en", "sw"], "identified": matrix, "control": [[0.0, 0.1], [0.1, 0.0]]}
    titles = [p.renderables[0].plain for p in json_matrices("ppxc.json", data, drawn)]
    assert titles == ["ppxc.json · control"]


def test_accuracy_in_points_and_every_n_says_what_it_counts() -> None:
    rows = [metric("accuracy", 0.712, "sw", "baseline", n=300), metric("accuracy", 0.724, "sw", "intervention", n=300)]
    text = render(metric_renderables(rows, ["en", "sw"])[0])
    assert "accuracy (points)" in text and "71.2" in text and "72.4" in text  # as the report's tables
    assert "n = 300 items scored per language and condition" in text
    shares = [metric("language_fidelity", 0.859, "sw", "baseline", ci_low=0.701, ci_high=0.941, n=32),
              metric("language_fidelity_delta", 0.0312, "sw", "intervention", ci_low=-0.0312, ci_high=0.0938, n=32)]
    text = "".join(render(r) for r in metric_renderables(shares, ["en", "sw"]))
    assert "language_fidelity (%)" in text and "85.9" in text and "[70.1, 94.1]" in text
    assert "language_fidelity_delta (points)" in text and "+3.1" in text and "[-3.1, +9.4]" in text
    assert "n = 32 continuations scored" in text and "n = 32 paired continuations" in text
    assert n_caption("something_new", [metric("something_new", 1.0, n=7)]) == "n = 7 observations behind each value"


# ---- pictures ------------------------------------------------------------------------------------
def test_gain_chart_draws_each_target_interval_against_the_threshold() -> None:
    rows = [metric("accuracy_delta", 0.012, "sw", "intervention", ci_low=-0.005, ci_high=0.029),
            metric("accuracy_delta", 0.08, "ur", "intervention", ci_low=0.065, ci_high=0.095),
            metric("accuracy_delta", 0.046, "targets", "intervention", ci_low=0.03, ci_high=0.06),
            metric("accuracy_delta", -0.002, "en", "intervention", ci_low=-0.01, ci_high=0.006)]
    chart = gain_chart(rows, ["sw", "ur"], threshold=6.0, confidence=0.95)
    text = render(chart)
    lines = text.splitlines()
    assert "gain per target (points, 95% CI) vs threshold ┃ 6.00" in lines[0]
    assert [ln.split()[0] for ln in lines[1:4]] == ["sw", "ur", "pooled"]  # targets, then the pooled row
    assert "+1.20 [-0.50, +2.90]" in lines[1] and "+8.00 [+6.50, +9.50]" in lines[2]
    assert "en" not in [ln.split()[0] for ln in lines[1:4]]  # high-resource languages are not drawn
    sw, ur = lines[1], lines[2]
    # on one axis: the threshold mark sits right of sw's whole interval and left of ur's
    assert sw.index("┤") < sw.index("┃") and ur.index("┃") < ur.index("├")
    assert sw.index("┼") < sw.index("●")  # zero (inside sw's interval) left of sw's gain
    assert "┆" in ur and ur.index("┆") < ur.index("├")  # zero outside ur's interval


def test_loss_over_steps_from_the_stage_events_is_a_sparkline() -> None:
    events = [Event("progress", "intervene", 1, {"done": s, "total": 6, "unit": "steps",
                                                 "label": f"identified_sw step {s}/3", "loss": 3.0 - 0.5 * s})
              for s in (1, 2, 3)]
    events.append(Event("progress", "intervene", 1, {"done": 6, "total": 6, "unit": "steps", "label": "done"}))
    series = loss_series(events)
    assert series == {"identified_sw": [2.5, 2.0, 1.5]}
    text = render(loss_chart(series))
    assert "fine-tune loss over steps" in text and "2.50 → 1.50 (3 steps)" in text
    assert re.search(r"identified_sw [▁▂▃▄▅▆▇█]{3}", text)


# ---- the demo study's results at 80x24 -------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    load_demo_study(home)
    return home


def test_demo_results_show_every_matrix_as_a_heatmap_and_every_n_explained(demo_home: Path) -> None:
    store = Store(demo_home)
    text = ""
    for run in demo_data()["runs"]:
        text += render(stage_results(store, 1, run["stage"], LANGS))
    assert "0.…" not in text and "…" not in text  # no number and no header cut
    for title in ("overlap_jaccard · lape", "ppxc · off", "ppxc · control-off"):
        assert title in text
    for line in text.splitlines():
        if line.startswith("n = "):
            assert re.match(r"n = [\d,–]+ [a-z]", line), line  # the count, then what it counts


def open_results(stage: str, scroll_right: bool = False, down_to: str = ""):
    """The stage's Results tab; scrolled down so that the line `down_to` is at the top, and/or right."""
    async def run_before(pilot) -> None:
        screen = pilot.app.screen
        screen.select_stage(stage)
        await pilot.press("m")
        await pilot.pause(0.1)
        pane = screen.query_one("#results-scroll")
        if down_to:
            results = screen.query_one("#results")
            lines = render(results.content, results.size.width).splitlines()
            pane.scroll_to(y=next(i for i, line in enumerate(lines) if line.strip() == down_to), animate=False)
        if scroll_right:
            pane.scroll_to(x=100, animate=False)
        await pilot.pause(0.2)

    return run_before


def make_app(home: Path) -> NeuronPilotApp:
    return NeuronPilotApp(home=str(home), study="1", clock=lambda: NOW)


@pytest.mark.parametrize("stage", [r["stage"] for r in json.loads(
    (Path(__file__).parent / "data" / "demo_results.json").read_text(encoding="utf-8"))["runs"]])
def test_demo_results_snapshot(stage: str, demo_home: Path, snap_compare) -> None:
    assert snap_compare(make_app(demo_home), terminal_size=SIZE, run_before=open_results(stage))


@pytest.mark.parametrize("stage, title", [("identify", "overlap_jaccard · lape"), ("reproduce", "ppxc · off")])
def test_demo_heatmap_snapshot(stage: str, title: str, demo_home: Path, snap_compare) -> None:
    assert snap_compare(make_app(demo_home), terminal_size=SIZE, run_before=open_results(stage, down_to=title))


def test_demo_wide_heatmap_scrolled_right_snapshot(demo_home: Path, snap_compare) -> None:
    """The 6 × 6 perplexity-change heatmap is wider than the pane at 80 columns: scrolled right, its last
    columns show whole."""
    assert snap_compare(make_app(demo_home), terminal_size=SIZE,
                        run_before=open_results("reproduce", scroll_right=True, down_to="ppxc · off"))


def test_a_wide_matrix_scrolls_sideways_at_80_columns(demo_home: Path) -> None:
    async def drive() -> None:
        app = make_app(demo_home)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            screen = app.screen
            assert isinstance(screen, StudyScreen)
            screen.select_stage("reproduce")
            await pilot.press("m")
            await pilot.pause(0.2)
            pane = screen.query_one("#results-scroll")
            results = screen.query_one("#results")
            assert results.size.width > pane.size.width  # laid out at its natural width…
            assert pane.max_scroll_x > 0  # …and reachable by scrolling, not cut

    asyncio.run(drive())
