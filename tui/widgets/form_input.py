"""An Input for forms that a fast typist's burst of keys (as over a slow SSH link) cannot scramble."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class FormInput(Input):
    """An input that keeps a fast typist's keys in order across fields: tab moves focus at once
    (not after the keys queued behind it), and a key that still reaches this field after focus moved
    on goes to the field that has focus now."""

    async def _on_key(self, event: events.Key) -> None:
        focused = self.screen.focused  # set at once by focus_next; has_focus follows only later
        if event.key in ("tab", "shift+tab"):
            self.screen.focus_next() if event.key == "tab" else self.screen.focus_previous()
            event.stop()
            event.prevent_default()
            return
        if isinstance(focused, Input) and focused is not self:  # typed after a tab still queued here
            if event.is_printable and event.character:
                focused.insert_text_at_cursor(event.character)
            else:
                focused.post_message(events.Key(event.key, event.character))
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)
