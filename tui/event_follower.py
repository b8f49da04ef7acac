"""Following a stage that another (now gone) UI or runner started: tail its JSON-lines event log.

The worker appends every event to <home>/logs/study-N/<stage>.jsonl as well as to stdout, so a
reopened UI reads new lines from where the file ended when it attached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from lab.core.events import Event


class EventLogFollower:
    def __init__(self, path: Path, from_start: bool = False) -> None:
        self.path = path
        self.offset = 0 if from_start or not path.exists() else path.stat().st_size
        self._partial = b""

    def poll(self, max_bytes: int = 1 << 20) -> list[Event]:
        """Events appended since the last poll (a half-written last line waits for the next poll)."""
        try:
            with open(self.path, "rb") as fh:
                size = fh.seek(0, 2)
                if size < self.offset:  # the log was replaced; start over
                    self.offset, self._partial = 0, b""
                fh.seek(self.offset)
                chunk = fh.read(max_bytes)
        except FileNotFoundError:
            return []
        self.offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        events = []
        for raw in lines:
            event = _parse(raw)
            if event is not None:
                events.append(event)
        return events


def _parse(raw: bytes) -> Optional[Event]:
    line = raw.decode("utf-8", errors="replace").strip()
    if not line:
        return None
    try:
        return Event.from_json(line)
    except (ValueError, TypeError):
        return None
