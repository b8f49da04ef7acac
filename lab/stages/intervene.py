"""Stage `intervene`: prepare the test-time intervention and prove its hooks leave no trace.

For each language it takes the identified neurons and the random control set (identify's
neurons.json / control.json), computes the replacement values per [intervention] value (zero, the
language's own mean / p10 / p90 activation of each neuron, or a scale factor), and checks on a
held-out block that applying the hooks changes the logits and removing them restores the logits
bit for bit. intervention.json records the plan and the check; evaluate reads it.
With [intervention] kind = "finetune" it trains the fine-tune adapters instead (lab.neurons.finetune),
one per (condition, target) plus the attention LoRA, and writes them with the plan evaluate reads.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from lab.core.errors import BadInput, StageFailed
from lab.eval.conditions import read_neuron_sets
from lab.neurons.finetune import (CONDITIONS, TrainSettings, chosen_neurons, english_training_texts, make_blocks,
                                  train_condition)
from lab.neurons.finetune.adapters import ADAPTER_FILES
from lab.neurons.interventions import INTERVENTIONS, intervene, read_activation_stats  # noqa: F401 (re-exported)
from lab.neurons.sets import neurons_by_layer
from lab.model.loading import LoadedModel, load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext
from lab.stages.stopping import stop_at_next_forward

FALLBACK_TEXT = ("The quick brown fox jumps over the lazy dog. Le renard brun saute par-dessus le chien. "
                 "Mbweha mwepesi anaruka juu ya mbwa mvivu. Der schnelle braune Fuchs springt über den Hund.")


def neuron_sets(ctx: StageContext) -> tuple[dict[str, dict[int, list[int]]], dict[str, dict[int, list[int]]]]:
    """(identified, control): language → {layer: [index, ...]}."""
    sets = read_neuron_sets(ctx)
    return sets["intervention"], sets["control"]


def _check_fits(sets: dict[str, dict[int, list[int]]], n_layers: int, d_ff: int, what: str) -> None:
    for lang, by_layer in sets.items():
        for layer, idx in by_layer.items():
            if not 0 <= layer < n_layers or (idx and not 0 <= min(idx) <= max(idx) < d_ff):
                raise BadInput(f"{what} neurons of {lang} name layer {layer} / index up to {max(idx, default=0)}, "
                               f"outside this model ({n_layers} layers x {d_ff}); re-run identify on this model")


def replacement_values(kind: str, by_layer: dict[int, list[int]], stats: Optional[dict[str, torch.Tensor]],
                       languages: list[str], language: str, scale: float) -> dict[str, Any]:
    """Summary of what the hooks write for one language's set (the stat values, or the factor)."""
    iv = INTERVENTIONS.get(kind)
    count = sum(len(v) for v in by_layer.values())
    out: dict[str, Any] = {"neurons": count}
    if iv.stat is not None:
        if stats is None or language not in languages:
            raise BadInput(f"intervention {kind!r} needs activation statistics for {language}; re-run identify")
        li = languages.index(language)
        vals = torch.cat([stats[iv.stat][li, layer, idx] for layer, idx in by_layer.items() if idx]) \
            if count else torch.zeros(0)
        if count:
            out.update(value_mean=float(vals.mean()), value_min=float(vals.min()), value_max=float(vals.max()))
    elif kind == "scale":
        out["factor"] = scale
    else:
        out["value"] = 0.0
    return out


def heldout_text(cfg: dict[str, Any], language: str) -> tuple[str, str]:
    """(text, where it came from): the language's held-out file, else a short fixed string."""
    folder = cfg.get("corpus", {}).get("heldout")
    if folder:
        for ext in (".txt", ".jsonl"):
            path = Path(folder) / f"{language}{ext}"
            if path.is_file():
                with open(path, encoding="utf-8") as fh:
                    head = fh.read(20000)
                if ext == ".jsonl":
                    import json

                    head = " ".join(json.loads(line).get("text", "") for line in head.splitlines()[:-1] if line.strip())
                if head.strip():
                    return head, str(path)
    return FALLBACK_TEXT, "fixed text"


def restore_check(loaded: LoadedModel, by_layer: dict[int, list[int]], kind: str, ids: torch.Tensor,
                  **kwargs: Any) -> dict[str, Any]:
    """Logits before, with and after the hooks: must differ with them (if any neuron) and match bit for bit after."""
    model = loaded.model
    with torch.no_grad():
        before = model(ids).logits
        with intervene(model, loaded.adapter, by_layer, kind, **kwargs):
            during = model(ids).logits
        after = model(ids).logits
    return {"changed": not torch.equal(before, during),
            "max_abs_change": float((during.float() - before.float()).abs().max()),
            "restored_bit_identical": bool(torch.equal(before, after))}


@STAGES.register("intervene")
def run(ctx: StageContext) -> None:
    cfg = ctx.cfg
    if cfg["intervention"]["kind"] == "finetune":  # train the adapters instead (docs/finetune.md)
        plan = run_finetune_intervention(ctx)
        if ctx.part is not None:  # a fan-out unit: its adapters are trained; the stage's own unit writes the plan
            return
        ctx.log(f"fine-tuned {len(plan['variants'])} adapters: {', '.join(v['name'] for v in plan['variants'])}")
        return
    kind = cfg["intervention"]["value"]
    scale = float(cfg["intervention"].get("scale", 2.0))
    iv = INTERVENTIONS.get(kind)
    identified, control = neuron_sets(ctx)
    stats, stat_langs = read_activation_stats(ctx.artifact_path("identify", "activation_stats.safetensors"))
    languages = [lang for lang in cfg["languages"]["all"] if lang in identified]
    missing = [lang for lang in cfg["languages"]["all"] if lang not in identified or lang not in control]
    if missing:
        raise BadInput(f"identify produced no neuron set for {', '.join(missing)}; re-run the identify stage")

    ctx.progress(0, len(languages) + 1, "languages", "loading model")
    loaded = load_for_stage(ctx)
    n_layers, d_ff = loaded.adapter.n_layers(loaded.model), loaded.adapter.d_ff(loaded.model)
    _check_fits(identified, n_layers, d_ff, "identified")
    _check_fits(control, n_layers, d_ff, "control")
    block = int(cfg["corpus"].get("block_size", 128))

    plan: dict[str, Any] = {"kind": cfg["intervention"]["kind"], "value": kind, "stat": iv.stat,
                            "scale": scale if kind == "scale" else None, "description": iv.description,
                            "languages": {}, "check": {"languages": {}}}
    all_ok = True
    for i, lang in enumerate(languages, start=1):
        hook_kw = dict(stats=stats, stat_languages=stat_langs, language=lang, scale=scale)
        entry = {"identified": replacement_values(kind, identified[lang], stats, stat_langs, lang, scale),
                 "control": replacement_values(kind, control[lang], stats, stat_langs, lang, scale),
                 "per_layer": [len(identified[lang].get(layer, [])) for layer in range(n_layers)]}
        plan["languages"][lang] = entry
        text, source = heldout_text(cfg, lang)
        ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"][:, :block].to(loaded.device)
        check = {"source": source, "tokens": int(ids.shape[1]),
                 "identified": restore_check(loaded, identified[lang], kind, ids, **hook_kw),
                 "control": restore_check(loaded, control[lang], kind, ids, **hook_kw)}
        plan["check"]["languages"][lang] = check
        all_ok &= check["identified"]["restored_bit_identical"] and check["control"]["restored_bit_identical"]
        ctx.progress(i, len(languages) + 1, "languages", f"checked {lang}")
    plan["check"]["passed"] = bool(all_ok)
    ctx.write_json("intervention.json", plan)
    ctx.metrics([dict(name="hooks_restore_bit_identical", value=float(all_ok))] +
                [dict(name="intervention_neurons", value=e["identified"]["neurons"], language=lang,
                      condition="intervention") for lang, e in plan["languages"].items()] +
                [dict(name="intervention_neurons", value=e["control"]["neurons"], language=lang,
                      condition="control") for lang, e in plan["languages"].items()])
    if not all_ok:
        raise StageFailed("removing the intervention hooks did not restore the logits bit for bit; "
                          "see intervention.json (check) — another hook on the model may be interfering")
    ctx.progress(len(languages) + 1, len(languages) + 1, "languages", "done")
    ctx.log(f"intervention {kind} prepared for {len(languages)} languages; hooks removed cleanly")


# ---- [intervention] kind = "finetune": train the adapters ----------------------------------------

def finetune_runs(cfg: Mapping[str, Any], identified: Mapping[str, Any],
                  control: Mapping[str, Any]) -> list[tuple[str, str, Optional[dict[int, list[int]]],
                                                             Optional[dict[int, list[int]]]]]:
    """(condition, language, chosen neurons, control neurons) for every adapter a study trains.

    Per target language: ft_neurons and ft_random; once for the study: ft_lora_attn (it trains no
    language's neurons). With neurons_from = english+target the control is drawn afresh with the
    union's per-layer counts; otherwise it is identify's control set of the target.
    """
    neurons_from = cfg["intervention"].get("neurons_from", "target")
    runs: list[tuple[str, str, Optional[dict[int, list[int]]], Optional[dict[int, list[int]]]]] = []
    for lang in cfg["languages"]["targets"]:
        chosen = chosen_neurons(identified, lang, neurons_from)
        ctrl = neurons_by_layer(control[lang]) if neurons_from == "target" and lang in control else None
        runs.append(("ft_neurons", lang, chosen, None))
        runs.append(("ft_random", lang, chosen, ctrl))
    runs.append(("ft_lora_attn", "", None, None))
    return runs


def variant_name(condition: str, language: str) -> str:
    return f"{condition}-{language}" if language else condition


def run_finetune_intervention(ctx: Any) -> dict[str, Any]:
    """The intervene stage for [intervention] kind = "finetune": train every condition, keep the adapters.

    Writes adapters/<variant>/{adapter_config.json, adapter_model.safetensors, finetune.json} and
    intervention.json (the plan evaluate reads), and the metric weights_changed_outside_neurons per
    neuron variant. Stops cleanly (StageInterrupted) at a checkpoint when SIGTERM arrives; the next
    run resumes there. Returns the plan.
    """
    cfg = ctx.cfg
    identified = ctx.read_json("identify", "neurons.json")["languages"]
    control = ctx.read_json("identify", "control.json")["languages"]
    runs = finetune_runs(cfg, identified, control)
    if ctx.part is not None:  # a fan-out unit ([compute] max_parallel > 1): every count-th adapter only
        runs = runs[int(ctx.part["index"])::int(ctx.part["count"])]
    texts, sources = english_training_texts(cfg)
    settings_cfg = {**cfg["intervention"], "block_size": int(cfg["corpus"].get("block_size", 128))}
    settings = TrainSettings.from_cfg(settings_cfg)
    total = settings.steps * len(runs)
    ctx.progress(0, total, "steps", "loading model")
    loaded = load_for_stage(ctx)
    blocks = make_blocks(loaded.tokenizer, texts, settings.block_size)
    ctx.log(f"fine-tuning {len(runs)} adapters on {blocks.shape[0]} blocks of {settings.block_size} tokens from "
            f"{', '.join(sources)} ({settings.steps} steps each, rank {settings.lora_r}, weight decay "
            f"{settings.weight_decay})")

    plan: dict[str, Any] = {"kind": "finetune", "conditions": [c.name for c in CONDITIONS],
                            "neurons_from": cfg["intervention"].get("neurons_from", "target"),
                            "training": {"tasks": sources, "documents": len(texts), "blocks": int(blocks.shape[0]),
                                         "settings": asdict(settings), "seed": ctx.seed},
                            "variants": []}
    metrics: list[dict[str, Any]] = []
    for i, (cond, lang, chosen, ctrl) in enumerate(runs):
        name = variant_name(cond, lang)
        offset = i * settings.steps

        def progress(step: int, steps: int, loss: float, _off: int = offset, _name: str = name) -> None:
            ctx.progress(_off + step, total, "steps", f"{_name} step {step}/{steps}", loss=round(loss, 4))

        # SIGTERM: at the next training step (the training copy inherits the hook), from the last step checkpoint
        with stop_at_next_forward(ctx, loaded.model, f"training {name}"):
            # one folder for the stage's own unit and its fan-out units: an adapter a unit finished is found
            # there (same fingerprint) and not trained again
            result = train_condition(loaded, chosen, cond, blocks, settings_cfg,
                                     ctx.home.checkpoint_dir(ctx.study_id, ctx.stage) / name,
                                     ctx.seed, progress, lambda: ctx.stop_requested, control=ctrl)
        if not result.finished:
            ctx.check_stop()
            raise RuntimeError(f"{name} stopped at step {result.steps_done} without a stop request")
        assert result.adapter_dir is not None
        if ctx.part is not None:
            ctx.log(f"trained {name}")
            continue
        for fname in ADAPTER_FILES:
            src = result.adapter_dir / fname
            ctx.write_artifact(f"adapters/{name}/{fname}", lambda tmp, _src=src: shutil.copyfile(_src, tmp))
        plan["variants"].append({
            "name": name, "condition": cond, "language": lang, "adapter": f"adapters/{name}",
            "neurons": None if result.neurons is None else sum(len(v) for v in result.neurons.values()),
            "per_layer": None if result.neurons is None else {str(k): len(v) for k, v in result.neurons.items()},
            "target_modules": len(result.target_modules), "trainable_parameters": result.trainable_parameters,
            "final_loss": result.final_loss, "resumed_from": result.resumed_from,
            "weights_changed_outside_neurons": result.weights_changed_outside_neurons,
            "weights_changed_outside_target": result.weights_changed_outside_target,
            "weights_changed_inside_target": result.weights_changed_inside_target})
        if result.weights_changed_outside_neurons is not None:
            metrics.append(dict(name="weights_changed_outside_neurons", value=result.weights_changed_outside_neurons,
                                language=lang, condition=cond))
        metrics.append(dict(name="finetune_final_loss", value=result.final_loss or 0.0, language=lang, condition=cond))
        metrics.append(dict(name="finetune_trainable_parameters", value=result.trainable_parameters, language=lang,
                            condition=cond))
    if ctx.part is None:  # a fan-out unit leaves the plan, the artifacts and the metrics to the stage's own unit
        ctx.write_json("intervention.json", plan)
        ctx.metrics(metrics)
    ctx.progress(total, total, "steps", "done")
    return plan

