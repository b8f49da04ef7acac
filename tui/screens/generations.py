"""Side by side: the generation probe's continuations of one prompt under baseline, intervention and
control (and fine-tune variants), read from the generate stage's continuations.json (JSON only,
checked against its recorded sha256). Pick the language and the prompt; each condition is a column
with its greedy continuation, its detected language, and the seeded sampled continuations below."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from lab.core.artifacts import verify
from lab.core.errors import BadInput
from lab.store import Store
from tui.bindings import GENERATION_BINDINGS

STAGE, ARTIFACT = "generate", "continuations.json"


def load_continuations(store: Store, study_id: int) -> dict[str, Any]:
    """The stage's continuations.json; BadInput when it is missing or was modified after it was written."""
    row = store.artifact(study_id, STAGE, ARTIFACT)
    path = verify(store.home.inside(Path(row.path)), row.sha256)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("languages"), dict):
        raise BadInput(f"{path} is not a generation probe artifact; re-run the generate stage")
    return data


def _tag(c: dict[str, Any]) -> str:
    tag = f"[{c.get('language', '?')}]"
    if c.get("degenerate"):
        tag += f" {c['degenerate']}"
    return tag


def condition_text(prompt: dict[str, Any], cond: str, language: str) -> Text:
    """One column: greedy continuation (marked when it differs from the baseline's), then the samples."""
    got = prompt.get("conditions", {}).get(cond)
    if got is None:
        return Text("(not run)", style="dim")
    greedy = got["greedy"]
    base = prompt["conditions"].get("baseline", {}).get("greedy", {})
    off = greedy.get("language") != language
    out = Text("greedy ", style="bold")
    out.append(_tag(greedy), style="bold red" if off else "green")
    if cond != "baseline":
        same = greedy.get("text") == base.get("text")
        out.append("  same as baseline" if same else "  changed", style="dim" if same else "yellow")
    out.append("\n" + (greedy.get("text", "").strip() or "(empty)") + "\n")
    for i, s in enumerate(got.get("samples", []), start=1):
        out.append(f"\nsample {i} ", style="bold dim")
        out.append(_tag(s), style="red" if s.get("language") != language else "dim")
        out.append("\n" + (s.get("text", "").strip() or "(empty)") + "\n", style="dim")
    return out


class GenerationScreen(Screen[None]):
    BINDINGS = GENERATION_BINDINGS

    def __init__(self, study_id: int, data: dict[str, Any]) -> None:
        super().__init__()
        self.study_id = study_id
        self.data = data
        self.languages: list[str] = list(data["languages"])
        self.conditions: list[str] = list(data.get("conditions") or ["baseline", "intervention", "control"])
        self.language: Optional[str] = self.languages[0] if self.languages else None
        self.prompt_index = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="gen-pick"):
            yield OptionList(*[Option(lang, id=f"lang-{lang}") for lang in self.languages], id="gen-langs")
            yield OptionList(id="gen-prompts")
        with Horizontal(id="gen-columns"):
            for cond in self.conditions:
                with VerticalScroll(classes="gen-column", id=f"gen-col-{cond}") as col:
                    col.border_title = cond
                    yield Static("", id=f"gen-text-{cond}", classes="gen-text")
        yield Static("", id="gen-note")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"generations · study {self.study_id}"
        self.query_one("#gen-langs", OptionList).border_title = "lang"
        self.query_one("#gen-prompts", OptionList).border_title = "prompt"
        iv = self.data.get("intervention") or {}
        what = iv.get("value") or iv.get("kind") or "?"
        lid = self.data.get("language_id") or {}
        self.query_one("#gen-note", Static).update(Text(
            f"{what} · {lid.get('library', '?')} · [xx] detected language (red: not the prompt's)", style="dim"))
        if self.language is not None:
            self.query_one("#gen-langs", OptionList).highlighted = 0
            self.show_language(self.language)
        self.query_one("#gen-prompts", OptionList).focus()

    def prompts_of(self, language: str) -> list[dict[str, Any]]:
        return list(self.data["languages"].get(language, {}).get("prompts", []))

    def show_language(self, language: str) -> None:
        self.language = language
        box = self.query_one("#gen-prompts", OptionList)
        box.clear_options()
        box.add_options([Option(p["prompt"], id=f"p-{i}") for i, p in enumerate(self.prompts_of(language))])
        self.show_prompt(0)
        if box.option_count:
            box.highlighted = 0

    def show_prompt(self, index: int) -> None:
        prompts = self.prompts_of(self.language or "")
        if not prompts:
            for cond in self.conditions:
                self.query_one(f"#gen-text-{cond}", Static).update(Text("(no prompts)", style="dim"))
            return
        self.prompt_index = max(0, min(index, len(prompts) - 1))
        prompt = prompts[self.prompt_index]
        for cond in self.conditions:
            self.query_one(f"#gen-text-{cond}", Static).update(condition_text(prompt, cond, self.language or ""))

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "gen-langs" and event.option.id:
            lang = event.option.id.removeprefix("lang-")
            if lang != self.language:
                self.show_language(lang)
        elif event.option_list.id == "gen-prompts" and event.option.id:
            self.show_prompt(int(event.option.id.removeprefix("p-")))

    def action_next_language(self) -> None:
        if not self.languages:
            return
        i = (self.languages.index(self.language) + 1) % len(self.languages) if self.language in self.languages else 0
        self.query_one("#gen-langs", OptionList).highlighted = i

    def action_back(self) -> None:
        self.app.pop_screen()
