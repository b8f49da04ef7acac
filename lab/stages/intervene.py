"""Stage `intervene`: prepare the test-time intervention and prove its hooks leave no trace.

For each language it takes the identified neurons and the random control set (identify's
neurons.json / control.json), computes the replacement values per [intervention] value (zero, the
language's own mean / p10 / p90 activation of each neuron, or a scale factor), and checks on a
held-out block that applying the hooks changes the logits and removing them restores the logits
bit for bit. intervention.json records the plan and the check; evaluate reads it.
With [intervention] kind = "finetune" it trains the fine-tune adapters instead (lab.neurons.finetune).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch

from lab.core.errors import BadInput, NotBuiltYet, StageFailed
from lab.neurons.interventions import INTERVENTIONS, intervene, neurons_by_layer
from lab.model.loading import LoadedModel, load_for_stage
from lab.stages import STAGES
from lab.stages.context import StageContext

FALLBACK_TEXT = ("The quick brown fox jumps over the lazy dog. Le renard brun saute par-dessus le chien. "
                 "Mbweha mwepesi anaruka juu ya mbwa mvivu. Der schnelle braune Fuchs springt über den Hund.")


def require_test_time(cfg: dict[str, Any]) -> None:
    if cfg["intervention"]["kind"] == "finetune":
        raise NotBuiltYet('[intervention] kind = "finetune": the fine-tune intervention is not built yet; '
                          'use kind = "test_time" for now')


def read_activation_stats(path: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """activation_stats.safetensors → (tensors, languages in tensor order)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    languages = [x for x in meta.get("languages", "").split(",") if x]
    stats = load_file(str(path))
    if not languages or "act_prob" not in stats or stats["act_prob"].shape[0] != len(languages):
        raise BadInput(f"{path.name} lacks its 'languages' metadata or does not match it; re-run the identify stage")
    return stats, languages


def neuron_sets(ctx: StageContext) -> tuple[dict[str, dict[int, list[int]]], dict[str, dict[int, list[int]]]]:
    """(identified, control): language → {layer: [index, ...]}."""
    ident = ctx.read_json("identify", "neurons.json")["languages"]
    control = ctx.read_json("identify", "control.json")["languages"]
    return ({k: neurons_by_layer(v) for k, v in ident.items()}, {k: neurons_by_layer(v) for k, v in control.items()})


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
        from lab.neurons.finetune import run_finetune_intervention

        plan = run_finetune_intervention(ctx)
        ctx.log(f"fine-tuned {len(plan['variants'])} adapters: {', '.join(v['name'] for v in plan['variants'])}")
        return
    require_test_time(cfg)
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
