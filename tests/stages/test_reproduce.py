"""The reproduce stage: split-half stability and the perplexity-change matrix (PPXC)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lab.model.adapters import adapter_for
from lab.neurons.checks import Score, compute_ppxc, pass_keys, score_blocks

# ---- a hand-built model with one neuron per language ---------------------------------------------
# Vocabulary: ids 0..9 are language "xx", ids 10..19 are language "yy". Hidden dim 0 carries the
# language sign (+1 / −1), dim 1 a constant, dim 5 flags the last token of each language (9, 19),
# dims 6 and 7 are token-parity patterns. Attention is silenced (o_proj = 0), so the MLP sees the
# normalised embedding. Gate row 0 fires on xx tokens except 9, row 1 on yy tokens except 19, row 2
# on every token, row 3 never; rows 4.. follow the parity patterns, so they fire on about half of
# the tokens of both languages (high entropy, no language). Neuron 0 writes dim 2, which the xx
# logits read; neuron 1 writes dim 3, which the yy logits read: each language neuron makes its own
# language's next token likelier. Only neurons 0..3 reach the output (up_proj rows 4.. are zero).
X_IDS, Y_IDS = range(0, 10), range(10, 20)
HAND_D_FF = 64


def build_hand_model() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=8, intermediate_size=HAND_D_FF, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, vocab_size=20, max_position_embeddings=64, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.arange(20)
    with torch.no_grad():
        emb = model.model.embed_tokens.weight
        emb.zero_()
        emb[list(X_IDS), 0] = 1.0
        emb[list(Y_IDS), 0] = -1.0
        emb[:, 1] = 1.0
        emb[[9, 19], 5] = 1.0
        emb[:, 6] = torch.where(ids % 2 == 0, 1.0, -1.0)
        emb[:, 7] = torch.where((ids // 2) % 2 == 0, 1.0, -1.0)
        layer = model.model.layers[0]
        layer.self_attn.o_proj.weight.zero_()
        mlp = layer.mlp
        for w in (mlp.gate_proj.weight, mlp.up_proj.weight, mlp.down_proj.weight, model.lm_head.weight):
            w.zero_()
        gate = mlp.gate_proj.weight
        gate[0, 0], gate[0, 5] = 5.0, -10.0  # xx neuron
        gate[1, 0], gate[1, 5] = -5.0, -10.0  # yy neuron
        gate[2, 1] = 5.0  # fires everywhere
        gate[3, 1] = -5.0  # never fires
        for j in range(4, HAND_D_FF):
            gate[j, 6 + j % 2] = 5.0 if (j // 2) % 2 == 0 else -5.0
        mlp.up_proj.weight[:4, 1] = 0.5
        mlp.down_proj.weight[2, 0] = 1.0
        mlp.down_proj.weight[3, 1] = 1.0
        mlp.down_proj.weight[4, 2] = 1.0
        model.lm_head.weight[list(X_IDS), 2] = 1.0
        model.lm_head.weight[list(Y_IDS), 3] = 1.0
    return model


def lang_blocks(ids: range, n: int, length: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(ids.start, ids.stop, (length,), generator=g) for _ in range(n)]


@pytest.fixture(scope="module")
def hand_model() -> torch.nn.Module:
    return build_hand_model()


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    return model, tok


def text_blocks(tok, text: str, sizes: list[int]) -> list[torch.Tensor]:
    ids = tok(text * 20)["input_ids"]
    assert len(ids) >= sum(sizes)
    out, pos = [], 0
    for n in sizes:
        out.append(torch.tensor(ids[pos:pos + n]))
        pos += n
    return out


@pytest.fixture(scope="module")
def tiny_heldout(tiny):
    from tests.helpers import LANG_TEXT

    _, tok = tiny
    # uneven block lengths, so batches carry padding
    return {lang: text_blocks(tok, LANG_TEXT[lang], [24, 17, 24, 9]) for lang in ("en", "fr", "sw")}


# ---- scoring -------------------------------------------------------------------------------------

def test_score_matches_the_models_own_loss(tiny) -> None:
    model, tok = tiny
    ids = torch.tensor(tok("the cat sat on the mat and the dog ran")["input_ids"])
    ref = model(input_ids=ids[None], labels=ids[None]).loss.item()
    s = score_blocks(model, [ids])
    assert s.tokens == len(ids) - 1
    assert s.nll == pytest.approx(ref, rel=1e-5)
    assert s.ppl == pytest.approx(math.exp(ref), rel=1e-5)


def test_padding_is_masked_out_of_the_score(tiny, tiny_heldout) -> None:
    model, _ = tiny
    blocks = tiny_heldout["fr"]
    together = score_blocks(model, blocks, batch_size=4)
    alone = [score_blocks(model, [b], batch_size=1) for b in blocks]
    assert together.tokens == sum(s.tokens for s in alone) == sum(len(b) - 1 for b in blocks)
    assert together.nll_sum == pytest.approx(sum(s.nll_sum for s in alone), rel=1e-5)


def test_per_block_scores_add_up_and_follow_block_order(tiny, tiny_heldout) -> None:
    model, _ = tiny
    blocks = tiny_heldout["en"]
    s = score_blocks(model, blocks, batch_size=3)
    assert s.block_tokens == tuple(len(b) - 1 for b in blocks)
    alone = [score_blocks(model, [b], batch_size=1) for b in blocks]
    assert s.block_nll == pytest.approx([a.nll_sum for a in alone], rel=1e-5)
    assert s.nll_sum == pytest.approx(sum(s.block_nll), rel=1e-12)
    assert Score.from_json(json.loads(json.dumps(s.to_json()))) == s


def test_non_finite_logits_stop_the_pass_naming_condition_language_and_batch(tiny, tiny_heldout) -> None:
    from lab.neurons.checks import NonFiniteScore

    model, _ = tiny
    calls = []

    def poison(_m, _a, out):  # the second batch of every scoring call gets a NaN logit
        calls.append(1)
        if len(calls) == 2:
            out = out.clone()
            out[0, 1, 3] = float("nan")
            return out

    handle = model.lm_head.register_forward_hook(poison)
    try:
        with pytest.raises(NonFiniteScore, match=r"non-finite logits .* pass 'baseline' \(condition\) on language "
                                                 r"en, batch 2 of 2"):
            compute_ppxc(model, adapter_for(model), tiny_heldout, {k: [] for k in tiny_heldout},
                         {k: [] for k in tiny_heldout}, batch_size=2)
    finally:
        handle.remove()


def test_every_pass_scores_the_same_token_ids(tiny, tiny_heldout) -> None:
    model, _ = tiny
    adapter = adapter_for(model)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    handle = model.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append((kw["input_ids"].clone(), kw["attention_mask"].clone())), with_kwargs=True)
    try:
        empty = {lang: [] for lang in tiny_heldout}
        control = {lang: [[0, i] for i in range(8)] + [[1, 3]] for lang in tiny_heldout}
        result = compute_ppxc(model, adapter, tiny_heldout, empty, control, batch_size=3)
    finally:
        handle.remove()
    n_passes = len(pass_keys(list(tiny_heldout)))
    assert len(seen) % n_passes == 0
    per_pass = len(seen) // n_passes
    first = seen[:per_pass]
    for p in range(1, n_passes):
        for (ids, mask), (ids0, mask0) in zip(seen[p * per_pass:(p + 1) * per_pass], first):
            assert torch.equal(ids, ids0) and torch.equal(mask, mask0)
    # a zero-size neuron set changes nothing, exactly; a real one does change the scores
    assert all(v == 0.0 for row in result.ppl_delta("identified") for v in row)
    assert all(v == 0.0 for row in result.nll_delta("identified") for v in row)
    assert any(v != 0.0 for row in result.nll_delta("control") for v in row)
    for lang in tiny_heldout:
        assert result.identified[lang][lang].tokens == result.baseline[lang].tokens == sum(len(b) - 1 for b in tiny_heldout[lang])


# ---- the perplexity-change matrix on the hand-built model ----------------------------------------

def test_ppxc_is_diagonal_dominant_for_hand_built_language_neurons(hand_model) -> None:
    heldout = {"xx": lang_blocks(X_IDS, 4, 16, 1), "yy": lang_blocks(Y_IDS, 4, 16, 2)}
    own = {"xx": [[0, 0]], "yy": [[0, 1]]}
    control = {"xx": [[0, 3]], "yy": [[0, 3]]}  # the never-firing neuron: switching it off is a no-op
    r = compute_ppxc(hand_model, adapter_for(hand_model), heldout, own, control)
    d = r.ppl_delta("identified")
    assert d[0][0] > 1.0 and d[1][1] > 1.0  # own neurons off: own perplexity rises clearly
    assert abs(d[0][1]) < 1e-2 and abs(d[1][0]) < 1e-2  # the other language barely moves
    assert r.diagonal_dominant() == {"xx": True, "yy": True}
    assert r.diagonal_dominant("control") == {"xx": False, "yy": False}
    # control changed nothing, so the ratio uses the floor (0.1% of baseline PPL)
    for j, lang in enumerate(r.languages):
        assert r.control_ratio()[lang] == pytest.approx(d[j][j] / (1e-3 * r.baseline[lang].ppl))
    # swapped sets: each language's "own" set is the other's neuron -> not dominant
    swapped = compute_ppxc(hand_model, adapter_for(hand_model), heldout, {"xx": [[0, 1]], "yy": [[0, 0]]}, control)
    assert swapped.diagonal_dominant() == {"xx": False, "yy": False}
    assert all(v < 1.0 for v in swapped.control_ratio().values())  # below any sensible gate


def test_own_neurons_raise_perplexity_over_the_control_with_an_interval(hand_model) -> None:
    """The hand-built language neurons raise their own language's perplexity far above a random set of
    the same size; the swapped sets do not. Both come with a block bootstrap interval."""
    heldout = {"xx": lang_blocks(X_IDS, 12, 16, 40), "yy": lang_blocks(Y_IDS, 12, 16, 41)}
    control = {"xx": [[0, 3]], "yy": [[0, 3]]}
    r = compute_ppxc(hand_model, adapter_for(hand_model), heldout, {"xx": [[0, 0]], "yy": [[0, 1]]}, control)
    for lang in ("xx", "yy"):
        o = r.over_control(lang, confidence=0.95, seed=0)
        assert o.blocks == 12 and o.tokens == 12 * 15
        assert o.control_pct == 0.0  # the never-firing neuron: nothing changes
        assert o.value_pct == pytest.approx(100 * (r.identified[lang][lang].ppl / r.baseline[lang].ppl - 1))
        assert o.ci_low is not None and o.ci_low <= o.value_pct <= o.ci_high and o.ci_low > 10
    swapped = compute_ppxc(hand_model, adapter_for(hand_model), heldout, {"xx": [[0, 1]], "yy": [[0, 0]]}, control)
    for lang in ("xx", "yy"):
        assert swapped.over_control(lang, confidence=0.95, seed=0).ci_high < 1.0
    blocks = json.loads(json.dumps(r.blocks_json()))
    assert list(blocks["block_nll_sum"]) == pass_keys(["xx", "yy"])
    assert blocks["block_tokens"]["xx"] == [15] * 12
    assert sum(blocks["block_nll_sum"]["identified:yy"]["yy"]) == pytest.approx(r.identified["yy"]["yy"].nll_sum)


def test_ppxc_json_follows_the_contract(hand_model) -> None:
    heldout = {"xx": lang_blocks(X_IDS, 2, 12, 3), "yy": lang_blocks(Y_IDS, 2, 12, 4)}
    r = compute_ppxc(hand_model, adapter_for(hand_model), heldout, {"xx": [[0, 0]], "yy": [[0, 1]]},
                     {"xx": [[0, 2]], "yy": [[0, 3]]})
    obj = json.loads(json.dumps(r.to_json()))
    assert obj["languages"] == ["xx", "yy"]
    assert set(obj["baseline_ppl"]) == {"xx", "yy"}
    for key in ("identified", "control", "nll_delta_identified", "nll_delta_control"):
        assert len(obj[key]) == 2 and all(len(row) == 2 for row in obj[key])
    # row A = neurons off, column B = scored: xx's neuron hurts xx (row 0, column 0)
    assert obj["identified"][0][0] == pytest.approx(r.identified["xx"]["xx"].ppl - r.baseline["xx"].ppl)
    assert obj["tokens"] == {"xx": 22, "yy": 22}


def test_ppxc_resumes_from_finished_passes(hand_model) -> None:
    heldout = {"xx": lang_blocks(X_IDS, 2, 12, 5), "yy": lang_blocks(Y_IDS, 2, 12, 6)}
    own, control = {"xx": [[0, 0]], "yy": [[0, 1]]}, {"xx": [[0, 2]], "yy": [[0, 3]]}
    passes: dict[str, dict[str, list[float]]] = {}
    full = compute_ppxc(hand_model, adapter_for(hand_model), heldout, own, control,
                        on_pass=lambda i, n, key, s: passes.__setitem__(key, {b: v.to_json() for b, v in s.items()}))
    assert list(passes) == pass_keys(["xx", "yy"])
    # a resumed run reuses the checkpointed passes (here: marked with a sentinel value) and reruns the rest
    done = {k: v for k, v in list(passes.items())[:3]}
    done["identified:xx"] = {"xx": [123.0, 22], "yy": passes["identified:xx"]["yy"]}
    resumed = compute_ppxc(hand_model, adapter_for(hand_model), heldout, own, control, done=done)
    assert resumed.identified["xx"]["xx"] == Score(123.0, 22)
    assert resumed.control["yy"] == full.control["yy"]


def test_ppxc_rerun_gives_identical_numbers(tiny, tiny_heldout) -> None:
    model, _ = tiny
    adapter = adapter_for(model)
    own = {"en": [[0, 1], [1, 5]], "fr": [[0, 7]], "sw": [[1, 9], [1, 10]]}
    ctrl = {"en": [[0, 2], [1, 6]], "fr": [[1, 7]], "sw": [[0, 9], [0, 10]]}
    a = compute_ppxc(model, adapter, tiny_heldout, own, ctrl, batch_size=2).to_json()
    b = compute_ppxc(model, adapter, tiny_heldout, own, ctrl, batch_size=2).to_json()
    assert a == b


# ---- identification on the hand-built model, split halves, and PPXC with the identified sets ------

LAPE_PARAMS = {"top_rate": 2 / HAND_D_FF, "filter_rate": 0.95, "activation_bar_ratio": 0.95}


def hand_stats(model: torch.nn.Module, xx: list[torch.Tensor], yy: list[torch.Tensor]):
    from lab.neurons.checks import half_stats
    from lab.inputs.corpus import BlockFeed

    feeds = [BlockFeed.from_blocks("xx", xx), BlockFeed.from_blocks("yy", yy)]
    return half_stats(model, adapter_for(model), feeds, bins=64, batch_size=4)


def test_lape_finds_the_hand_built_neurons_and_ppxc_confirms_them(hand_model) -> None:
    from lab.neurons.identify import identify
    from lab.neurons.sets import random_like

    xx, yy = lang_blocks(X_IDS, 8, 32, 10), lang_blocks(Y_IDS, 8, 32, 11)
    stats = hand_stats(hand_model, xx, yy)
    sets, _ = identify(stats, "lape", LAPE_PARAMS, 0)
    assert sets == {"xx": [[0, 0]], "yy": [[0, 1]]}
    control = random_like(sets, 1, HAND_D_FF, seed=0)
    heldout = {"xx": lang_blocks(X_IDS, 3, 24, 12), "yy": lang_blocks(Y_IDS, 3, 24, 13)}  # not identification text
    r = compute_ppxc(hand_model, adapter_for(hand_model), heldout, sets, control)
    assert r.diagonal_dominant() == {"xx": True, "yy": True}
    assert all(v > 10 for v in r.control_ratio().values())


def test_split_halves_reproduce_the_hand_built_neurons(hand_model) -> None:
    from lab.neurons.checks import Stability, half_controls, identify_half
    from lab.neurons.sets import random_like

    xx, yy = lang_blocks(X_IDS, 8, 32, 20), lang_blocks(Y_IDS, 8, 32, 21)
    full = identify_half(hand_stats(hand_model, xx, yy), "lape", LAPE_PARAMS, 0)
    h1 = identify_half(hand_stats(hand_model, xx[:4], yy[:4]), "lape", LAPE_PARAMS, 0)
    h2 = identify_half(hand_stats(hand_model, xx[4:], yy[4:]), "lape", LAPE_PARAMS, 0)
    c1, c2 = half_controls(h1, h2, 1, HAND_D_FF, seed=5)
    assert c1 != c2  # different seeds per half
    assert half_controls(h1, h2, 1, HAND_D_FF, seed=5) == (c1, c2)  # same seed, same draw
    st = Stability(["xx", "yy"], h1, h2, c1, c2, full, random_like(full, 1, HAND_D_FF, seed=5))
    pairs = st.pairs()
    for lang in ("xx", "yy"):
        assert pairs[lang]["identified"] == (1.0, 1)
        assert pairs[lang]["identified_half1"] == pairs[lang]["identified_half2"] == (1.0, 1)
        assert pairs[lang]["control"][0] == (1.0 if c1[lang] == c2[lang] else 0.0)
    rows = {(r["name"], r["language"], r["condition"]): r for r in st.rows()}
    assert rows[("stability_jaccard", "xx", "identified")]["value"] == 1.0
    assert rows[("stability_jaccard", "xx", "control")]["n"] == len({tuple(p) for p in c1["xx"] + c2["xx"]})
    assert {k[2] for k in rows if k[0] == "stability_jaccard_full"} == {
        "identified_half1", "identified_half2", "control_half1", "control_half2"}


def test_split_point_keeps_halves_disjoint_and_refuses_too_little_text() -> None:
    from lab.neurons.checks import split_point
    from lab.core.errors import BadInput

    assert split_point(2000, 128, "lape") == 8 * 128  # 16 blocks (the last short): half 1 = the first 8
    assert split_point(256, 128, "lape") == 128
    assert split_point(512, 128, "act_prob_90p_published") == 256  # each half still splits into threshold + score
    with pytest.raises(BadInput, match="tokens_per_language to at least 512"):
        split_point(384, 128, "act_prob_90p_published")
    assert split_point(384, 128, "act_prob_90p") == 128  # the pooled method needs one sample per half
    with pytest.raises(BadInput, match="at least 2 blocks"):
        split_point(100, 128, "lape")


# ---- the stage in real worker processes ----------------------------------------------------------

def reproduce_outputs(store, study_id: int) -> tuple[dict, dict, dict]:
    stage_dir = store.home.stage_dir(study_id, "reproduce")
    ppxc = json.loads((stage_dir / "ppxc.json").read_text(encoding="utf-8"))
    stability = json.loads((stage_dir / "stability.json").read_text(encoding="utf-8"))
    metrics = {(m.name, m.language, m.condition): (m.value, m.n) for m in store.metrics(study_id, "reproduce")}
    return ppxc, stability, metrics


@pytest.mark.slow
def test_reproduce_stage_runs_in_a_worker_and_reruns_identically(tmp_path: Path, tiny_llama_dir: Path,
                                                                  tiny_corpus_dir: Path) -> None:
    import subprocess
    import sys

    from lab.core.paths import PROJECT_ROOT
    from lab.run.runner import Runner
    from lab.store import StageState, Store
    from lab.study.create import create_study

    langs = ["en", "fr", "sw"]
    study_file = tmp_path / "study.toml"
    study_file.write_text(f"""[study]\nname = "reproduce-test"\nseed = 3
[model]\nid = "{tiny_llama_dir}"\ndevice = "cpu"\ndtype = "float32"
[languages]\nall = {json.dumps(langs)}\ntargets = ["sw"]
[corpus]\npath = "{tiny_corpus_dir}"\ntokens_per_language = 2000\nblock_size = 64\nheldout_tokens = 256
[identify]\nmethod = "lape"\ntop_rate = 0.05
[evaluate]\ntasks = ["demo_xnli"]
""", encoding="utf-8")
    store = Store(tmp_path / "home")
    study = create_study(store, study_file)
    sid = int(study.id)
    events = []
    outcome = Runner(store, sid, headless=True, on_event=events.append).run(until="reproduce")
    run = store.stage_run(sid, "reproduce")
    assert run.state == StageState.done, (outcome.message, run.error)

    ppxc, stability, metrics = reproduce_outputs(store, sid)
    assert ppxc["languages"] == langs
    assert set(ppxc["baseline_ppl"]) == set(langs)
    assert len(ppxc["identified"]) == len(ppxc["control"]) == 3 and all(len(r) == 3 for r in ppxc["identified"])
    blocks = json.loads((store.home.stage_dir(sid, "reproduce") / "ppxc_blocks.json").read_text(encoding="utf-8"))
    assert list(blocks["block_nll_sum"]) == pass_keys(langs)
    for lang in langs:  # every held-out token after a block's first position is predicted once
        assert 250 <= ppxc["tokens"][lang] == sum(blocks["block_tokens"][lang]) <= 256
        assert len(blocks["block_tokens"][lang]) >= 4
        over = ppxc["increase_over_control"][lang]
        value, n = metrics[("ppl_increase_over_control", lang, "identified")]
        assert value == over["increase_over_control_pct"] and over["ci"][0] <= value <= over["ci"][1]
        assert n == over["blocks"] == len(blocks["block_tokens"][lang])
    assert ppxc["interval"]["confidence"] == pytest.approx(0.95) and ppxc["interval"]["family"] == ["sw"]
    for lang in langs:
        assert metrics[("stability_jaccard", lang, "identified")][0] == stability["jaccard"][lang]["identified"]
        assert ("stability_jaccard", lang, "control") in metrics
        assert ("ppxc_diagonal_dominant", lang, "identified") in metrics
        assert ("ppxc_control_ratio", lang, "identified") in metrics
        assert metrics[("ppl_baseline", lang, "baseline")] == (ppxc["baseline_ppl"][lang], ppxc["tokens"][lang])
        for j, b in enumerate(langs):
            i = langs.index(lang)
            assert metrics[("ppxc", b, f"off:{lang}")][0] == ppxc["identified"][i][j]
            assert metrics[("ppxc", b, f"control-off:{lang}")][0] == ppxc["control"][i][j]
    assert stability["tokens_per_half"] == [1024, 976]  # 32 blocks of 64 (the last 16 tokens short)
    # progress went over every pass: 2 halves + baseline + 2 x 3 languages
    prog = [e for e in events if e.event == "progress" and e.stage == "reproduce"]
    assert prog[-1].data["done"] == prog[-1].data["total"] == 9
    # the gate read the stage's metrics
    rec = json.loads(store.stage_run(sid, "reproduce").recommendation_json)
    assert rec["numbers"]["median_stability_targets"] == metrics[("stability_jaccard", "sw", "identified")][0]
    sw = rec["numbers"]["targets"]["sw"]
    assert sw["increase_over_control_pct"] == ppxc["increase_over_control"]["sw"]["increase_over_control_pct"]
    assert sw["ci"] == ppxc["increase_over_control"]["sw"]["ci"] and rec["numbers"]["confidence"] == 0.95
    assert rec["verdict"] in ("go", "no-go", "inconclusive", "revise")

    # a fresh re-run of the stage in a new worker gives identical numbers
    from lab.run.unit import prepare_unit

    assert not prepare_unit(store, sid, "reproduce", fresh=True).resume  # the coordinator's part: start over
    res = subprocess.run([sys.executable, "-m", "lab.worker", "--home", str(store.home.root), "--study", str(sid),
                          "--stage", "reproduce"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    store.ingest(sid, "reproduce")
    again = reproduce_outputs(store, sid)
    assert again == (ppxc, stability, metrics)


def test_pass_checkpoint_is_ignored_when_the_inputs_changed(tmp_path: Path) -> None:
    from lab.stages.reproduce import PassCheckpoint

    passes = {"baseline": {"en": [12.5, 40]}}
    PassCheckpoint(tmp_path / "p.json", "abc").save(passes)
    assert PassCheckpoint(tmp_path / "p.json", "abc").load() == passes
    assert PassCheckpoint(tmp_path / "p.json", "other-model-or-sets").load() == {}
    assert PassCheckpoint(tmp_path / "missing.json", "abc").load() == {}


def test_lape_halves_may_use_coarse_histograms_without_changing_the_sets(hand_model) -> None:
    from lab.neurons.collect import collect_stats
    from lab.neurons.checks import half_bins, identify_half
    from lab.inputs.corpus import BlockFeed

    assert half_bins("lape", 2048) == 16 and half_bins("act_prob_90p", 2048) == 2048
    xx, yy = lang_blocks(X_IDS, 4, 32, 30), lang_blocks(Y_IDS, 4, 32, 31)
    feeds = [BlockFeed.from_blocks("xx", xx), BlockFeed.from_blocks("yy", yy)]
    fine = collect_stats(hand_model, adapter_for(hand_model), feeds, bins=2048, batch_size=4)
    coarse = collect_stats(hand_model, adapter_for(hand_model), feeds, bins=half_bins("lape", 2048), batch_size=4)
    assert torch.equal(fine.count, coarse.count) and torch.equal(fine.tokens, coarse.tokens)
    assert identify_half(fine, "lape", LAPE_PARAMS, 0) == identify_half(coarse, "lape", LAPE_PARAMS, 0)


def test_an_interrupted_stage_resumes_to_the_same_numbers(tmp_path: Path, tiny_llama_dir: Path,
                                                           tiny_corpus_dir: Path) -> None:
    """Stop the stage at every checkpoint (stats batches inside each half, each finished half, each PPXC
    pass) and resume it each time: the result equals one uninterrupted run."""
    import shutil

    from lab.core.errors import StageInterrupted
    from lab.stages.context import StageContext
    from lab.stages.identify import run as run_identify
    from lab.stages.reproduce import run as run_reproduce
    from lab.store import Store
    from lab.study.create import create_study
    from protocols import load_protocol

    study_file = tmp_path / "study.toml"
    study_file.write_text(f"""[study]\nname = "resume-test"\nseed = 9
[model]\nid = "{tiny_llama_dir}"\ndevice = "cpu"\ndtype = "float32"
[languages]\nall = ["en", "sw"]\ntargets = ["sw"]
[corpus]\npath = "{tiny_corpus_dir}"\ntokens_per_language = 1024\nblock_size = 64\nheldout_tokens = 128
[identify]\nmethod = "lape"\ntop_rate = 0.05\nbatch_size = 4
[evaluate]\ntasks = ["demo_xnli"]
""", encoding="utf-8")
    store = Store(tmp_path / "home")
    study = create_study(store, study_file)
    protocol = load_protocol(study.protocol, store.home.root)
    ctx = lambda stage: StageContext(store, study, protocol, protocol.get(stage), out=None)  # noqa: E731
    run_identify(ctx("identify"))

    interruptions = 0
    while True:
        c = ctx("reproduce")
        c.request_stop()  # as if SIGTERM arrived: the stage stops at its next checkpoint
        try:
            run_reproduce(c)
            break
        except StageInterrupted:
            interruptions += 1
            assert interruptions < 60
    # each half: one stop per statistics batch of each language (every batch checkpoints), then one for
    # the finished half; then one stop after each of the 5 PPXC passes (baseline, identified/control x 2)
    from transformers import AutoTokenizer

    from lab.neurons.checks import corpus_halves

    halves = corpus_halves(AutoTokenizer.from_pretrained(tiny_llama_dir), str(tiny_corpus_dir), ["en", "sw"], 1024, 64,
                           9, "lape")
    batches = sum(-(-feed.n_blocks // 4) for half in halves for feed in half)
    assert batches >= 8
    assert interruptions == batches + 2 + 5
    resumed = reproduce_outputs(store, int(study.id))

    shutil.rmtree(store.home.checkpoint_dir(int(study.id), "reproduce"))
    run_reproduce(ctx("reproduce"))
    assert reproduce_outputs(store, int(study.id)) == resumed
