"""Neuron-only fine-tuning (lab/neurons/finetune/): only the chosen neurons' weights move, even with AdamW
weight decay on; peft's adapter format round-trips exactly; a killed run resumes bit-identically;
the random control keeps per-layer counts; the attention LoRA touches attention only."""

from __future__ import annotations

from tests.helpers import ROOT_DIR

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from lab.core.errors import BadInput
from lab.neurons.finetune import (
    TrainSettings,
    batch_indices,
    count_changes,
    finetune_conditions,
    flatten_state,
    load_condition,
    make_blocks,
    neuron_targets,
    resolve_neurons,
    train_condition,
    unflatten_state,
)
from lab.model.loading import LoadedModel, load_model
from tests.helpers import LANG_TEXT

CHOSEN = {0: [1, 5, 9], 1: [2, 3, 40, 63]}
CFG = {"steps": 6, "learning_rate": 0.05, "weight_decay": 0.1, "lora_r": 4, "batch_size": 4,
       "checkpoint_every": 2, "block_size": 16}
SEED = 7
PROJECT = ROOT_DIR


@pytest.fixture(scope="module")
def loaded(tiny_llama_dir: Path) -> LoadedModel:
    return load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})


@pytest.fixture(scope="module")
def blocks(loaded: LoadedModel) -> torch.Tensor:
    return make_blocks(loaded.tokenizer, [LANG_TEXT["en"]] * 12, 16)


@pytest.fixture(scope="module")
def reference(loaded: LoadedModel, blocks: torch.Tensor, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted ft_neurons run, kept merged, shared by several tests."""
    steps: list[int] = []
    result = train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, tmp_path_factory.mktemp("ref"), SEED,
                             progress=lambda s, t, loss: steps.append(s), keep_merged=True)
    return result, steps


def _adapter_tensors(adapter_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_four_conditions_and_baseline_is_untouched(loaded: LoadedModel, blocks: torch.Tensor, tmp_path: Path) -> None:
    names = [c.name for c in finetune_conditions()]
    assert names == ["baseline", "ft_neurons", "ft_random", "ft_lora_attn"]
    res = train_condition(loaded, CHOSEN, "baseline", blocks, CFG, tmp_path, SEED)
    assert res.finished and res.adapter_dir is None and res.steps_done == 0
    assert load_condition(loaded, None) is loaded.model
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_only_chosen_neuron_rows_change_with_weight_decay(loaded: LoadedModel, reference) -> None:
    result, steps = reference
    assert CFG["weight_decay"] > 0
    assert result.finished and result.steps_done == 6 and steps == [1, 2, 3, 4, 5, 6]
    assert result.weights_changed_outside_neurons == 0 and result.weights_changed_outside_target == 0
    assert result.weights_changed_inside_target > 0
    base, merged = loaded.model.state_dict(), result.merged.state_dict()
    owned = {f"model.layers.{layer}.mlp.{proj}.weight": rows
             for layer, rows in CHOSEN.items() for proj in ("gate_proj", "up_proj")}
    for key, old in base.items():
        new = merged[key]
        if key not in owned:
            assert torch.equal(old, new), f"{key} changed although it owns no chosen neuron"
            continue
        rows = owned[key]
        others = [j for j in range(old.shape[0]) if j not in rows]
        assert torch.equal(old[others], new[others]), f"{key}: an unchosen neuron's row changed"
        for j in rows:
            assert not torch.equal(old[j], new[j]), f"{key}: chosen neuron {j} did not move"


def test_change_counter_sees_a_single_stray_entry(loaded: LoadedModel, reference) -> None:
    """The check is not vacuous: one nudged entry outside the chosen rows is counted."""
    import copy

    result, _ = reference
    targets = neuron_targets(loaded.model, loaded.adapter, CHOSEN)
    clean = count_changes(loaded.model, result.merged, targets)
    assert clean.outside == 0 and clean.inside > 0
    model = copy.deepcopy(result.merged)
    with torch.no_grad():
        model.get_submodule("model.layers.0.mlp.gate_proj").weight[2, 0] += 1e-3  # neuron 2: not chosen
        model.get_submodule("model.layers.1.self_attn.q_proj").weight[0, 0] += 1e-3
    counts = count_changes(loaded.model, model, targets)
    assert counts.outside == 2 and counts.inside == clean.inside
    assert set(counts.outside_tensors) == {"model.layers.0.mlp.gate_proj.weight",
                                           "model.layers.1.self_attn.q_proj.weight"}


def test_saved_adapter_reloads_to_identical_weights(loaded: LoadedModel, reference) -> None:
    result, _ = reference
    files = sorted(p.name for p in result.adapter_dir.iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "finetune.json"]
    reloaded = load_condition(loaded, result.adapter_dir)
    assert reloaded is not loaded.model
    new, ref = reloaded.state_dict(), result.merged.state_dict()
    assert new.keys() == ref.keys()
    for key in ref:
        assert torch.equal(new[key], ref[key]), key
    # the base model itself is untouched by training and loading
    assert not any("lora" in n for n, _ in loaded.model.named_parameters())


def test_altered_adapter_is_refused(loaded: LoadedModel, reference, tmp_path: Path) -> None:
    result, _ = reference
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("adapter_config.json", "finetune.json"):
        (bad / name).write_bytes((result.adapter_dir / name).read_bytes())
    tensors = _adapter_tensors(result.adapter_dir)
    key = next(k for k in tensors if "layers.0.mlp.up_proj.lora_B" in k)
    tensors[key] = tensors[key].clone()
    tensors[key][0] = 0.5  # neuron 0 of layer 0 is not chosen
    save_file(tensors, str(bad / "adapter_model.safetensors"))
    with pytest.raises(BadInput, match="outside its trained neurons"):
        load_condition(loaded, bad)


def test_stop_after_checkpoint_then_resume_equals_uninterrupted(loaded: LoadedModel, blocks: torch.Tensor,
                                                                 reference, tmp_path: Path) -> None:
    ref, _ = reference
    ckpt = tmp_path / "ckpt"
    # a stop asked for during step 1 checkpoints right after it, off the every-2-steps schedule: no step is lost
    first = train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, ckpt, SEED, should_stop=lambda: True)
    assert not first.finished and first.steps_done == 1 and first.adapter_dir is None
    step_dir = ckpt / "step-0000001"
    stored = sorted(str(p.relative_to(step_dir)) for p in step_dir.rglob("*") if p.is_file())
    assert stored == ["adapter/adapter_config.json", "adapter/adapter_model.safetensors", "optimizer.json",
                      "optimizer.safetensors", "rng.safetensors", "scheduler.json", "state.json"]
    assert json.loads((step_dir / "state.json").read_text())["step"] == 1

    seen: list[int] = []
    second = train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, ckpt, SEED,
                             progress=lambda s, t, loss: seen.append(s))
    assert second.resumed_from == 1 and seen == [2, 3, 4, 5, 6] and second.finished
    assert second.losses == ref.losses
    got, want = _adapter_tensors(second.adapter_dir), _adapter_tensors(ref.adapter_dir)
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)
    assert not list(ckpt.glob("step-*"))  # the finished adapter replaced the checkpoints

    again = train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, ckpt, SEED)  # finished: reused
    assert again.resumed_from == 6 and again.losses == ref.losses


def test_checkpoint_of_other_settings_is_not_resumed(loaded: LoadedModel, blocks: torch.Tensor, tmp_path: Path) -> None:
    train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, tmp_path, SEED, should_stop=lambda: True)
    other = train_condition(loaded, CHOSEN, "ft_neurons", blocks, {**CFG, "learning_rate": 0.01}, tmp_path, SEED,
                            should_stop=lambda: True)
    assert other.resumed_from == 0 and other.steps_done == 1


@pytest.mark.slow
def test_sigkill_mid_training_resumes_from_checkpoint(loaded: LoadedModel, blocks: torch.Tensor, reference,
                                                      tiny_llama_dir: Path, tmp_path: Path) -> None:
    ref, _ = reference
    ckpt = tmp_path / "ckpt"
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(PROJECT)!r})
        from lab.neurons.finetune import make_blocks, train_condition
        from lab.model.loading import load_model
        loaded = load_model({{"id": {str(tiny_llama_dir)!r}, "device": "cpu", "dtype": "float32"}})
        blocks = make_blocks(loaded.tokenizer, [{LANG_TEXT["en"]!r}] * 12, 16)
        def progress(step, total, loss):
            print("step", step, flush=True)
            if step == 3:  # after step 2's checkpoint, before step 4's
                os.kill(os.getpid(), signal.SIGKILL)
        train_condition(loaded, {CHOSEN!r}, "ft_neurons", blocks, {CFG!r}, {str(ckpt)!r}, {SEED}, progress)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert proc.stdout.split() == ["step", "1", "step", "2", "step", "3"]
    assert [p.name for p in ckpt.glob("step-*")] == ["step-0000002"]

    resumed = train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, ckpt, SEED)
    assert resumed.resumed_from == 2 and resumed.finished and resumed.losses == ref.losses
    got, want = _adapter_tensors(resumed.adapter_dir), _adapter_tensors(ref.adapter_dir)
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_random_control_keeps_per_layer_counts(loaded: LoadedModel, blocks: torch.Tensor, tmp_path: Path) -> None:
    d_ff = loaded.adapter.d_ff(loaded.model)
    ft_random = finetune_conditions()[2]
    rand = resolve_neurons(ft_random, CHOSEN, d_ff, SEED)  # no control given: drawn (lab/neurons/sets.py)
    assert rand is not None
    assert {k: len(v) for k, v in rand.items()} == {k: len(v) for k, v in CHOSEN.items()}
    assert all(not set(rand[k]) & set(CHOSEN[k]) for k in CHOSEN)  # disjoint where the layer allows
    assert all(0 <= j < d_ff for v in rand.values() for j in v)
    assert resolve_neurons(ft_random, CHOSEN, d_ff, SEED) == rand and resolve_neurons(ft_random, CHOSEN, d_ff, SEED + 1) != rand
    full = resolve_neurons(ft_random, {0: list(range(40))}, d_ff, SEED)  # more than half the layer: drawn from all of it
    assert full is not None and len(full[0]) == 40 and len(set(full[0])) == 40

    res = train_condition(loaded, CHOSEN, "ft_random", blocks, {**CFG, "steps": 3}, tmp_path, SEED, keep_merged=True)
    assert res.neurons == rand and res.weights_changed_outside_neurons == 0
    base, merged = loaded.model.state_dict(), res.merged.state_dict()
    for layer, rows in rand.items():
        key = f"model.layers.{layer}.mlp.gate_proj.weight"
        changed = sorted(int(j) for j in (base[key] != merged[key]).any(dim=1).nonzero().flatten())
        assert changed == rows


def test_attention_lora_changes_only_attention(loaded: LoadedModel, blocks: torch.Tensor, tmp_path: Path) -> None:
    res = train_condition(loaded, None, "ft_lora_attn", blocks, {**CFG, "steps": 3}, tmp_path, SEED, keep_merged=True)
    assert res.neurons is None and res.weights_changed_outside_neurons is None
    assert res.weights_changed_outside_target == 0 and res.weights_changed_inside_target > 0
    base, merged = loaded.model.state_dict(), res.merged.state_dict()
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all(".self_attn." in k for k in changed)
    assert {k.split(".")[-2] for k in changed} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    # same budget as the neuron conditions: rank, steps, learning rate and data are shared
    meta = json.loads((res.adapter_dir / "finetune.json").read_text())
    assert meta["settings"]["lora_r"] == CFG["lora_r"] and meta["settings"]["steps"] == 3


def test_gpt2_conv1d_neuron_columns(tmp_path: Path) -> None:
    """GPT-2's Conv1D stores [in, out]: the neurons are weight columns, and only those may move."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from lab.model.adapters import adapter_for

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=16, n_layer=2, n_head=2)).eval()
    loaded = LoadedModel(model, None, adapter_for(model), torch.device("cpu"), torch.float32, {"revision": "test"})
    data = torch.randint(0, 50, (8, 12), generator=torch.Generator().manual_seed(0))
    chosen = {0: [3, 17], 1: [60]}
    res = train_condition(loaded, chosen, "ft_neurons", data, {**CFG, "steps": 3}, tmp_path, SEED, keep_merged=True)
    assert res.weights_changed_outside_neurons == 0
    base, merged = model.state_dict(), res.merged.state_dict()
    for layer, cols in chosen.items():
        key = f"transformer.h.{layer}.mlp.c_fc.weight"
        changed = sorted(int(j) for j in (base[key] != merged[key]).any(dim=0).nonzero().flatten())
        assert changed == cols
    assert all(torch.equal(base[k], merged[k]) for k in base if ".mlp.c_fc.weight" not in k)


def test_bad_neuron_sets_are_refused(loaded: LoadedModel, blocks: torch.Tensor, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="layer 5"):
        train_condition(loaded, {5: [1]}, "ft_neurons", blocks, CFG, tmp_path, SEED)
    with pytest.raises(BadInput, match="outside 0..63"):
        train_condition(loaded, {0: [64]}, "ft_neurons", blocks, CFG, tmp_path, SEED)
    with pytest.raises(BadInput, match="non-empty neuron set"):
        train_condition(loaded, {0: []}, "ft_random", blocks, CFG, tmp_path, SEED)
    with pytest.raises(BadInput, match="unknown fine-tuning condition"):
        train_condition(loaded, CHOSEN, "ft_everything", blocks, CFG, tmp_path, SEED)
    with pytest.raises(BadInput, match="fewer than one block"):
        make_blocks(loaded.tokenizer, ["hi"], 64)
    with pytest.raises(BadInput, match="steps"):
        TrainSettings.from_cfg({"steps": 0})


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path: Path) -> None:
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=0.1, weight_decay=0.1)
    p.grad = torch.randn(3, 2)
    opt.step()
    tensors: dict[str, torch.Tensor] = {}
    flat = flatten_state(opt.state_dict(), tensors)
    save_file(tensors, str(tmp_path / "o.safetensors"))
    (tmp_path / "o.json").write_text(json.dumps(flat))
    back = unflatten_state(json.loads((tmp_path / "o.json").read_text()), load_file(str(tmp_path / "o.safetensors")))
    sd = opt.state_dict()
    assert back["param_groups"] == [dict(g) for g in sd["param_groups"]]
    assert list(back["state"]) == [0]
    assert all(torch.equal(back["state"][0][k], sd["state"][0][k]) for k in sd["state"][0])


def test_data_order_is_a_function_of_seed_and_step() -> None:
    steps = [batch_indices(5, 2, s, SEED) for s in range(5)]  # 10 positions = two epochs of 5 blocks
    flat = [i for b in steps for i in b]
    assert sorted(flat[:5]) == sorted(flat[5:]) == [0, 1, 2, 3, 4]  # each epoch is a permutation
    assert flat[:5] != flat[5:]  # and a new one each epoch
    assert batch_indices(5, 2, 3, SEED) == steps[3]  # any step is known without replaying the others
    assert [batch_indices(5, 2, s, SEED + 1) for s in range(5)] != steps


# ---- the intervene stage's fine-tune path, on a real study in a temporary lab home -------------

STUDY_TOML = """
[study]
name = "ft-pilot"
seed = 3
[model]
id = "{model}"
device = "cpu"
dtype = "float32"
[languages]
all = ["en", "fr", "de", "sw"]
targets = ["sw"]
[corpus]
path = "{corpus}"
block_size = 16
[intervention]
kind = "finetune"
steps = 4
checkpoint_every = 2
lora_r = 4
learning_rate = 0.05
weight_decay = 0.1
[evaluate]
tasks = ["demo_real"]
"""


def _stage_ctx(store, study, stage: str):
    import io

    from lab.stages.context import StageContext
    from protocols import load_protocol

    protocol = load_protocol(study.protocol, store.home.root)
    return StageContext(store, study, protocol, protocol.get(stage), out=io.StringIO())


@pytest.mark.slow
def test_intervene_finetune_path_trains_stops_resumes_and_records(tiny_llama_dir: Path, tiny_corpus_dir: Path,
                                                                   home: Path, tmp_path: Path) -> None:
    from lab.core.errors import StageInterrupted
    from lab.eval.conditions import variant_adapter_dir
    from lab.stages.intervene import run_finetune_intervention
    from lab.store import Store
    from lab.study.create import create_study

    study_file = tmp_path / "ft.toml"
    study_file.write_text(STUDY_TOML.format(model=tiny_llama_dir, corpus=tiny_corpus_dir), encoding="utf-8")
    store = Store(home)
    study = create_study(store, study_file)
    ident = _stage_ctx(store, study, "identify")  # identify's outputs, written as that stage writes them
    sw = [[0, 1], [0, 5], [1, 2], [1, 40]]
    ident.write_json("neurons.json", {"method": "lape", "params": {}, "languages": {
        "en": [[0, 7]], "fr": [[1, 9]], "de": [[0, 11]], "sw": sw}})
    control_sw = [[0, 20], [0, 30], [1, 50], [1, 60]]
    ident.write_json("control.json", {"method": "random", "params": {}, "languages": {
        "en": [[0, 8]], "fr": [[1, 10]], "de": [[0, 12]], "sw": control_sw}})

    first = _stage_ctx(store, study, "intervene")
    first.request_stop()  # SIGTERM arrived: checkpoint after the step under way, and stop
    with pytest.raises(StageInterrupted):
        run_finetune_intervention(first)
    assert (first.checkpoint_dir / "ft_neurons-sw" / "step-0000001" / "state.json").is_file()

    ctx = _stage_ctx(store, study, "intervene")
    plan = run_finetune_intervention(ctx)
    names = [v["name"] for v in plan["variants"]]
    assert names == ["ft_neurons-sw", "ft_random-sw", "ft_lora_attn"]
    assert plan["training"]["tasks"] == ["demo_real_en"] and plan["training"]["documents"] > 0
    by_name = {v["name"]: v for v in plan["variants"]}
    assert [by_name[n]["resumed_from"] for n in names] == [1, 0, 0]  # the interrupted run went on from step 1
    assert by_name["ft_random-sw"]["per_layer"] == by_name["ft_neurons-sw"]["per_layer"] == {"0": 2, "1": 2}
    rows = {(m.condition, m.language): m.value for m in store.metrics(study.id, name="weights_changed_outside_neurons")}
    assert rows == {("ft_neurons", "sw"): 0.0, ("ft_random", "sw"): 0.0}

    loaded = load_model({"id": str(tiny_llama_dir), "device": "cpu", "dtype": "float32"})
    base = loaded.model.state_dict()
    for name, rows_expected in (("ft_neurons-sw", sw), ("ft_random-sw", control_sw)):
        merged = load_condition(loaded, variant_adapter_dir(ctx, name)).state_dict()
        for layer in (0, 1):
            key = f"model.layers.{layer}.mlp.up_proj.weight"
            changed = (base[key] != merged[key]).any(dim=1).nonzero().flatten().tolist()
            assert changed == [j for lay, j in rows_expected if lay == layer]
    adapter_file = variant_adapter_dir(ctx, "ft_lora_attn") / "adapter_model.safetensors"
    adapter_file.write_bytes(adapter_file.read_bytes() + b" ")
    with pytest.raises(BadInput, match="modified after it was recorded"):
        variant_adapter_dir(ctx, "ft_lora_attn")


def test_non_finite_loss_stops_training_naming_condition_and_step(loaded: LoadedModel, blocks: torch.Tensor,
                                                                  tmp_path: Path) -> None:
    """A NaN loss is never stepped on (it would spread into every weight): the run stops, nothing is saved."""
    from lab.core.errors import StageFailed

    module = loaded.adapter.act_modules(loaded.model)[0]
    handle = module.register_forward_hook(lambda _m, _i, out: out * float("nan"))  # copied with the model
    try:
        with pytest.raises(StageFailed, match=r"non-finite training loss in ft_neurons \(ft_neurons-sw\), step 1"):
            train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, tmp_path / "ft_neurons-sw", SEED)
    finally:
        handle.remove()
    assert not list((tmp_path / "ft_neurons-sw").glob("step-*")) and not (tmp_path / "ft_neurons-sw" / "adapter").exists()
