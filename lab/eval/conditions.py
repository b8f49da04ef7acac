"""Evaluation conditions: for each (language, condition), how to get the model that is scored.

A condition is a *recipe*: the base model, the base model with one language's neuron set hooked
(test-time intervention), or a trained fine-tune adapter switched on in the base model (peft). The
evaluate and generate stages both plan their (language, condition) slots here and get their models
and hooks from `ConditionModels`; what they do with the model (lm-eval scoring, generation) and how
they checkpoint is theirs. Two slots with the same recipe on the same language are the same
evaluation: it runs once and serves both names.

Test-time conditions (evaluate, `spillover=True`):

| language | condition | recipe |
|---|---|---|
| target T | baseline / intervention / control | none / T's neurons / T's random neurons, T's statistics |
| high-resource H | baseline | none |
| H | spillover_T (each target T) | T's neurons with T's statistics: what a deployment for T does to H |
| H | intervention / control | the first target's neurons / random neurons (= spillover of the first target) |
| H | own_intervention | H's own neurons with H's statistics (not used by the gate) |

Fine-tune conditions: baseline, intervention (ft_neurons-<owner>), control (ft_random-<owner>) and
ft_lora_attn, where the owner of a high-resource language is the first target; with `spillover`,
H also gets spillover_T = ft_neurons-T for each target T. Without `spillover` (the generation
probe) every language uses its own sets at test time, as before.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from lab.core.errors import BadInput
from lab.neurons.interventions import HookPlan, read_activation_stats
from lab.neurons.sets import neurons_by_layer

TEST_TIME_CONDITIONS = ("baseline", "intervention", "control")
FT_CONDITIONS = ("baseline", "intervention", "control", "ft_lora_attn")
FT_TREATED = FT_CONDITIONS[1:]
OWN = "own_intervention"
SPILLOVER = "spillover_"


def spillover_name(target: str) -> str:
    return f"{SPILLOVER}{target}"


@dataclass(frozen=True)
class Recipe:
    """How to get the model: `variant` (a fine-tune adapter; None = the base model) and, for test-time
    hooks, which identify set (`neurons`: intervention | control) of which language (`owner`)."""

    variant: Optional[str] = None
    neurons: Optional[str] = None
    owner: Optional[str] = None

    @property
    def key(self) -> str:
        """A stable name for checkpoints and artifacts: baseline, intervention-sw, ft_neurons-sw ..."""
        if self.variant is not None:
            return self.variant
        return "baseline" if self.neurons is None else f"{self.neurons}-{self.owner}"

    def describe(self) -> str:
        if self.variant is not None:
            return f"adapter {self.variant}"
        return "untouched" if self.neurons is None else f"{self.owner}'s {self.neurons} neurons hooked"


@dataclass(frozen=True)
class Slot:
    language: str
    condition: str
    recipe: Recipe


def read_plan(ctx: Any) -> dict[str, Any]:
    """intervention.json, refused when it was made for another kind or its hook check failed."""
    cfg = ctx.cfg
    plan = ctx.read_json("intervene", "intervention.json")
    if plan.get("kind") != cfg["intervention"]["kind"]:
        raise BadInput(f"intervention.json was made for kind = {plan.get('kind')!r} but the study says "
                       f"{cfg['intervention']['kind']!r}; re-run the intervene stage")
    return plan


def test_time_slots(languages: list[str], targets: list[str], *, spillover: bool) -> list[Slot]:
    """(language, condition) slots with hooks; see the module table."""
    slots: list[Slot] = []
    for lang in languages:
        slots.append(Slot(lang, "baseline", Recipe()))
        if lang in targets or not spillover:
            slots += [Slot(lang, c, Recipe(neurons=c, owner=lang)) for c in ("intervention", "control")]
            continue
        if not targets:
            raise BadInput("[languages] targets is empty; the evaluate stage needs at least one target language")
        slots += [Slot(lang, c, Recipe(neurons=c, owner=targets[0])) for c in ("intervention", "control")]
        slots += [Slot(lang, spillover_name(t), Recipe(neurons="intervention", owner=t)) for t in targets]
        slots.append(Slot(lang, OWN, Recipe(neurons="intervention", owner=lang)))
    return slots


def finetune_assignment(plan: dict[str, Any], targets: list[str], languages: list[str]) -> dict[str, dict[str, str]]:
    """language → condition → trained variant evaluated there (baseline needs none).

    A target T gets its own adapters (ft_neurons-T, ft_random-T). A high-resource language has no
    adapter of its own, so it is scored under the *first* target's adapters.
    """
    names = {v["name"] for v in plan.get("variants", [])}
    if not targets:
        raise BadInput("[languages] targets is empty; fine-tune evaluation needs at least one target language")
    out: dict[str, dict[str, str]] = {}
    for lang in languages:
        owner = lang if lang in targets else targets[0]
        out[lang] = {"intervention": f"ft_neurons-{owner}", "control": f"ft_random-{owner}",
                     "ft_lora_attn": "ft_lora_attn"}
        missing = sorted(set(out[lang].values()) - names)
        if missing:
            raise BadInput(f"intervention.json has no adapter {', '.join(missing)} (needed for {lang}); re-run the "
                           f"intervene stage with the study's current targets")
    return out


def finetune_slots(plan: dict[str, Any], languages: list[str], targets: list[str], *, spillover: bool) -> list[Slot]:
    """(language, condition) slots with trained adapters; spillover adds ft_neurons-T on each high-resource language."""
    assignment = finetune_assignment(plan, targets, languages)
    names = {v["name"] for v in plan.get("variants", [])}
    slots: list[Slot] = []
    for lang in languages:
        slots.append(Slot(lang, "baseline", Recipe()))
        slots += [Slot(lang, c, Recipe(variant=assignment[lang][c])) for c in FT_TREATED]
        if spillover and lang not in targets:
            for t in targets:
                if f"ft_neurons-{t}" not in names:
                    raise BadInput(f"intervention.json has no adapter ft_neurons-{t}; re-run the intervene stage")
                slots.append(Slot(lang, spillover_name(t), Recipe(variant=f"ft_neurons-{t}")))
    return slots


def plan_slots(plan: dict[str, Any], languages: list[str], targets: list[str], *, spillover: bool) -> list[Slot]:
    if plan["kind"] == "finetune":
        return finetune_slots(plan, languages, targets, spillover=spillover)
    return test_time_slots(languages, targets, spillover=spillover)


def conditions_of(slots: list[Slot]) -> list[str]:
    """Every condition name, in first-seen order (baseline first)."""
    return list(dict.fromkeys(s.condition for s in slots))


def variant_adapter_dir(ctx: Any, name: str, stage: str = "intervene") -> Path:
    """A trained variant's adapter folder, every file verified against its recorded sha256 first."""
    from lab.neurons.finetune import ADAPTER_FILES

    paths = [ctx.artifact_path(stage, f"adapters/{name}/{fname}") for fname in ADAPTER_FILES]
    return paths[0].parent


def read_neuron_sets(ctx: Any) -> dict[str, dict[str, dict[int, list[int]]]]:
    """{"intervention": identify's sets, "control": its random sets}, each language → {layer: [index, ...]}."""
    ident = ctx.read_json("identify", "neurons.json")["languages"]
    control = ctx.read_json("identify", "control.json")["languages"]
    return {"intervention": {k: neurons_by_layer(v) for k, v in ident.items()},
            "control": {k: neurons_by_layer(v) for k, v in control.items()}}


class ConditionModels:
    """Hands out the model (and hooks) for each recipe; the base model is loaded once, on first need,
    and each fine-tune variant is a peft adapter loaded onto it (the previous one deleted first), so
    memory stays at the base model plus one adapter (lab.neurons.finetune.adapters.AdapterSwitch)."""

    def __init__(self, ctx: Any, plan: dict[str, Any], slots: list[Slot], load: Callable[[Any], Any]) -> None:
        self.ctx, self.plan, self._load = ctx, plan, load
        self.loaded: Any = None
        self.hook_plan: Optional[HookPlan] = None
        self.sets: dict[str, dict[str, dict[int, list[int]]]] = {}
        if plan["kind"] != "finetune":
            if not plan.get("check", {}).get("passed", False):
                raise BadInput("the intervene stage's hook check did not pass; re-run intervene first")
            self.sets = read_neuron_sets(ctx)
            for s in slots:
                r = s.recipe
                if r.neurons is not None and r.owner not in self.sets[r.neurons]:
                    raise BadInput(f"identify produced no neuron set for {r.owner}; re-run the identify stage")
            stats, langs = read_activation_stats(ctx.artifact_path("identify", "activation_stats.safetensors"))
            kind = plan["value"]
            scale = float(plan["scale"] if plan.get("scale") is not None else ctx.cfg["intervention"].get("scale", 2.0))
            self.hook_plan = HookPlan(kind, scale, stats, tuple(langs))

    def base(self) -> Any:
        if self.loaded is None:
            self.loaded = self._load(self.ctx)
        return self.loaded

    def groups(self, slots: list[Slot], pending: Callable[[Slot], bool]) -> Iterator[tuple[Optional[Any], list[Slot]]]:
        """(model or None when nothing of the group is pending, its slots), one group per model:
        the base model first (every hooked recipe), then each fine-tune variant."""
        by_variant: dict[Optional[str], list[Slot]] = {}
        for s in slots:
            by_variant.setdefault(s.recipe.variant, []).append(s)
        switch = None  # fine-tune variants: peft adapters switched on the one base model, never a copy of it
        try:
            for variant, group in by_variant.items():
                if not any(pending(s) for s in group):
                    yield None, group
                    continue
                loaded = self.base()
                if variant is None:
                    yield (switch.baseline() if switch is not None else loaded.model), group
                    continue
                from lab.neurons.finetune.adapters import AdapterSwitch

                switch = switch or AdapterSwitch(loaded)
                yield switch.model(variant_adapter_dir(self.ctx, variant), variant), group
                gc.collect()
        finally:
            if switch is not None:
                switch.close()  # the LoRA layers go: the base model is as it was loaded

    def hooks(self, model: Any, recipe: Recipe) -> Any:
        """A fresh context manager with the recipe's hooks (None when it has none)."""
        if recipe.neurons is None:
            return None
        assert self.hook_plan is not None and recipe.owner is not None
        return self.hook_plan.hooks(model, self.base().adapter, self.sets[recipe.neurons][recipe.owner], recipe.owner)
