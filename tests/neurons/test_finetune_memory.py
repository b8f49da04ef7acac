"""Fine-tune evaluation keeps one base model (issue 18, point 5): each trained adapter is switched on in it
by peft (load_adapter / set_adapter, the previous one deleted; disable_adapter for the baseline), so the
tensor memory alive while a condition is scored is the base model plus one adapter, where the old merged
copy per condition added a whole model. The "no weight changed outside the neurons" check on the
adapter's deltas gives the count the merged state-dict diff gave."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lab.model.loading import LoadedModel, load_model
from lab.neurons.finetune import count_changes, load_condition, make_blocks, neuron_targets, train_condition
from lab.neurons.finetune.adapters import AdapterSwitch
from lab.neurons.finetune.targets import attention_targets, count_adapter_changes
from lab.core.paths import PROJECT_ROOT
from tests.helpers import LANG_TEXT

DEMO = PROJECT_ROOT / "examples" / "models" / "tiny-polyglot"

CHOSEN = {0: [1, 5, 9], 1: [2, 3, 40, 63]}
CFG = {"steps": 2, "learning_rate": 0.05, "weight_decay": 0.1, "lora_r": 4, "batch_size": 4,
       "checkpoint_every": 2, "block_size": 16}


def alive_tensor_bytes() -> int:
    """Bytes of every distinct CPU tensor storage alive in this process (what a copy of the weights would add to)."""
    gc.collect()
    seen: set[int] = set()
    total = 0
    for obj in gc.get_objects():
        if not isinstance(obj, torch.Tensor) or obj.device.type != "cpu":
            continue
        try:
            storage = obj.untyped_storage()
        except (RuntimeError, NotImplementedError):
            continue
        if storage.data_ptr() in seen or storage.nbytes() == 0:
            continue
        seen.add(storage.data_ptr())
        total += storage.nbytes()
    return total


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    loaded = load_model({"id": str(DEMO), "device": "cpu", "dtype": "float32"})  # 1.57M parameters, 6.3 MB
    blocks = make_blocks(loaded.tokenizer, [LANG_TEXT["en"]] * 12, 16)
    root = tmp_path_factory.mktemp("adapters")
    neurons = train_condition(loaded, CHOSEN, "ft_neurons", blocks, CFG, root / "n", 3)
    attn = train_condition(loaded, None, "ft_lora_attn", blocks, CFG, root / "a", 3)
    return loaded, {"ft_neurons": neurons, "ft_lora_attn": attn}, blocks


def test_training_and_evaluation_leave_the_base_model_as_loaded(trained) -> None:
    loaded, _, _ = trained
    assert not any("lora" in n for n, _ in loaded.model.named_modules())
    assert all(p.requires_grad for p in loaded.model.parameters()) and not loaded.model.training


def test_switching_adapters_holds_the_base_model_plus_one_adapter(trained) -> None:
    loaded, results, blocks = trained
    model_bytes = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    ids = blocks[:2]
    with torch.no_grad():
        plain = loaded.model(ids).logits
    merged_logits = {}
    for name, res in results.items():
        merged = load_condition(loaded, res.adapter_dir)
        with torch.no_grad():
            merged_logits[name] = merged(ids).logits
        del merged
    before = alive_tensor_bytes()

    switch = AdapterSwitch(loaded)
    peaks = {}
    try:
        for name, res in [*results.items(), ("ft_neurons", results["ft_neurons"])]:
            model = switch.model(res.adapter_dir, name)
            adapter_bytes = sum(t.numel() * t.element_size()
                                for t in load_file(str(res.adapter_dir / "adapter_model.safetensors")).values())
            peaks[name] = alive_tensor_bytes() - before
            # the base model plus this adapter: never a second copy of the weights, never two adapters
            assert peaks[name] <= adapter_bytes + 64 * 1024, (name, peaks[name], adapter_bytes)
            with torch.no_grad():
                got = model(ids).logits
            torch.testing.assert_close(got, merged_logits[name], rtol=1e-5, atol=1e-5)  # unmerged = merged
            del got, model  # the logits are not weights: they should not count against the next adapter
            assert set(switch.peft.peft_config) == {name}  # the previous adapter was deleted
        with torch.no_grad():
            off = switch.baseline()(ids).logits
        assert torch.equal(off, plain)  # disable_adapter: the untouched model, bit for bit
    finally:
        switch.close()
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, plain)
    assert not any("lora" in n for n, _ in loaded.model.named_modules())
    # the old way, a merged copy of the model per condition, adds a whole model's weights
    merged = load_condition(loaded, results["ft_neurons"].adapter_dir)
    assert alive_tensor_bytes() - before >= model_bytes
    del merged
    print(f"\nmodel {model_bytes} B; extra tensor bytes while scoring: {peaks} (merged copy: +{model_bytes} B)")


def test_adapter_delta_check_counts_what_the_merge_diff_counts(trained) -> None:
    loaded, results, _ = trained
    for name, res in results.items():
        targets = (neuron_targets(loaded.model, loaded.adapter, CHOSEN) if name == "ft_neurons"
                   else attention_targets(loaded.model, loaded.adapter))
        narrower = {k: v for k, v in targets.items() if ".layers.1." not in k}
        merged = load_condition(loaded, res.adapter_dir, verify=False)
        by_merge, narrower_by_merge = count_changes(loaded.model, merged, targets), count_changes(loaded.model, merged, narrower)
        del merged
        switch = AdapterSwitch(loaded)
        try:
            model = switch.model(res.adapter_dir, name)
            by_delta = count_adapter_changes(model, name, targets)
            assert by_delta == by_merge and by_delta.outside == 0 and by_delta.inside > 0
            assert by_delta.inside == res.weights_changed_inside_target
            # not vacuous: a target list without layer 1 puts its changes outside, counted the same both ways
            assert count_adapter_changes(model, name, narrower) == narrower_by_merge and narrower_by_merge.outside > 0
        finally:
            switch.close()
