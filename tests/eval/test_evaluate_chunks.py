"""The evaluate stage's chunks: documents split into lm-eval calls of [evaluate] chunk_items, merged
back into one result per task, and the stop hook that ends a stage at its next forward pass."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from lab.core.errors import StageInterrupted
from lab.eval.harness import TaskRun, count_docs, make_lm, run_tasks
from lab.inputs import tasks
from lab.model.loading import LoadedModel, load_model
from lab.stages.evaluate import chunk_plan, merge_chunks
from lab.stages.stopping import stop_at_next_forward
from tests.helpers import LANG_TEXT


def test_chunk_plan_covers_every_document_once_in_order() -> None:
    cfgs = [{"task": "a"}, {"task": "b"}]
    plan = chunk_plan(cfgs, {"a": 5, "b": 4}, None, 3)
    assert plan == [[("a", 0, 3)], [("a", 3, 5), ("b", 0, 1)], [("b", 1, 4)]]
    assert chunk_plan(cfgs, {"a": 5, "b": 4}, 2, 3) == [[("a", 0, 2), ("b", 0, 1)], [("b", 1, 2)]]  # limit per task
    assert chunk_plan(cfgs, {"a": 0, "b": 4}, None, 100) == [[("b", 0, 4)]]
    assert chunk_plan(cfgs, {"a": 5, "b": 4}, None, 100) == [[("a", 0, 5), ("b", 0, 4)]]  # one call, as before
    for size in range(1, 11):
        docs = [(t, i) for chunk in chunk_plan(cfgs, {"a": 5, "b": 4}, None, size) for t, a, b in chunk
                for i in range(a, b)]
        assert docs == [("a", i) for i in range(5)] + [("b", i) for i in range(4)]


def test_merge_chunks_keeps_document_order_and_weights_the_aggregate() -> None:
    rec = lambda i, c: {"doc_id": i, "correct": c, "acc": c}  # noqa: E731
    one = {"a": TaskRun("a", "multiple_choice", [rec(0, 1.0), rec(1, 0.0), rec(2, 1.0)], {"acc": 2 / 3}, 1.5)}
    two = {"a": TaskRun("a", "multiple_choice", [rec(3, 0.0)], {"acc": 0.0}, 0.5),
           "b": TaskRun("b", "multiple_choice", [rec(0, 1.0)], {"acc": 1.0}, 0.5)}
    a, b, c = merge_chunks([{"task": "a"}, {"task": "b"}, {"task": "c", "output_type": "generate_until"}], [one, two])
    assert [s["doc_id"] for s in a.samples] == [0, 1, 2, 3] and a.correct == [1.0, 0.0, 1.0, 0.0]
    assert a.aggregate == {"acc": pytest.approx(0.5)} and a.seconds == 2.0
    assert b is two["b"]  # a task that fit one chunk keeps lm-eval's own aggregate
    assert (c.task, c.output_type, c.samples) == ("c", "generate_until", [])


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path) -> LoadedModel:
    return load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})


@pytest.fixture(scope="module")
def mc_task(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("chunk_task")
    words = (LANG_TEXT["sw"] * 3).split()
    rows = [{"context": " ".join(words[i:i + 4]), "choices": [words[i + 4], words[i + 5], words[i + 6]], "gold": i % 3}
            for i in range(7)]
    (root / "chunk_mc_sw.test.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (root / "chunk_mc_sw.yaml").write_text(
        "task: chunk_mc_sw\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: chunk_mc_sw.test.jsonl\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: '{{context}}'\ndoc_to_choice: choices\n"
        "doc_to_target: gold\nmetric_list:\n  - metric: acc\n")
    return tasks.task_config(tasks.TaskRef("chunk_mc", "sw", "chunk_mc_sw", "demo", root / "chunk_mc_sw.yaml"))


def test_chunks_score_the_same_documents_as_one_run(loaded: LoadedModel, mc_task: dict[str, Any]) -> None:
    """Chunks of 3 (samples=) cover exactly the documents of one whole run, with their own doc_id,
    target and answer; each chunk is reproducible on its own (what a resumed stage relies on)."""
    lm = make_lm(loaded.model, loaded.tokenizer, batch_size=4)
    assert count_docs(mc_task) == 7
    whole = run_tasks(lm, [mc_task], limit=None, seed=3)["chunk_mc_sw"]
    plan = chunk_plan([mc_task], {"chunk_mc_sw": 7}, None, 3)
    parts = [run_tasks(lm, [mc_task], limit=None, seed=3, samples={t: list(range(a, b)) for t, a, b in chunk})
             for chunk in plan]
    merged = merge_chunks([mc_task], parts)[0]
    assert [s["doc_id"] for s in merged.samples] == [s["doc_id"] for s in whole.samples] == list(range(7))
    assert [s["target"] for s in merged.samples] == [s["target"] for s in whole.samples]
    for got, want in zip(merged.samples, whole.samples):
        assert got["lls"] == pytest.approx(want["lls"], abs=1e-4)  # other batches, same numbers up to rounding
    again = run_tasks(lm, [mc_task], limit=None, seed=3, samples={"chunk_mc_sw": [3, 4, 5]})["chunk_mc_sw"]
    assert again.samples == parts[1]["chunk_mc_sw"].samples  # bit for bit
    with pytest.raises(ValueError):
        run_tasks(lm, [mc_task], limit=2, seed=3, samples={"chunk_mc_sw": [0]})


class _Ctx:
    stage = "evaluate"

    def __init__(self) -> None:
        self.stop_requested = False


def test_stop_hook_ends_the_stage_at_the_next_forward_pass(loaded: LoadedModel) -> None:
    ctx = _Ctx()
    ids = torch.tensor([[1, 2, 3]])
    calls: list[int] = []
    with stop_at_next_forward(ctx, loaded.model, lambda: "sw · baseline, chunk 2 of 3", grace=0.3):
        probe = loaded.model.get_input_embeddings().register_forward_pre_hook(lambda *_: calls.append(1))
        try:
            loaded.model(ids)  # no request: runs as usual
            ctx.stop_requested = True
            loaded.model(ids)  # inside the grace: the work may still reach its checkpoint
            time.sleep(0.3)
            with pytest.raises(StageInterrupted, match="during sw · baseline, chunk 2 of 3, at the first forward"):
                loaded.model(ids)
            assert len(calls) == 2  # the stopped pass ended before anything else of it ran
        finally:
            probe.remove()
    loaded.model(ids)  # the hook is gone once the block ends
    with stop_at_next_forward(ctx, loaded.model, "x", grace=0):  # no grace: the very next pass
        with pytest.raises(StageInterrupted):
            loaded.model(ids)
    with stop_at_next_forward(ctx, None, "nothing"):  # no model (every run checkpointed): nothing to hook
        pass
