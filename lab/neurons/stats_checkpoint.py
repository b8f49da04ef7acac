"""A statistics pass's checkpoint: accumulators and feed position as safetensors + JSON, written atomically."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from lab.core import faults
from lab.core.artifacts import atomic_write, atomic_write_json, sha256_file
from lab.inputs.corpus import BlockFeed

CHECKPOINT_FORMAT = 3  # 3: one histogram store [n_languages, L, F, bins+2], bins fitted to the budget; older ones are ignored


class StatsCheckpoint:
    """Accumulators + feed position in ``folder`` (safetensors + JSON, atomic), every `every` blocks.

    The tensors go to a new file first, then the JSON that names it (with its sha256), then older
    tensor files are removed: a crash at any point leaves a consistent checkpoint. A checkpoint whose
    fingerprint (languages, data, model, batch plan, bins, checkpoint format) differs from this run's
    is ignored.
    """

    def __init__(self, folder: Path, every: int, fingerprint: dict[str, Any],
                 stop_requested: Callable[[], bool] = lambda: False, check_stop: Callable[[], None] = lambda: None,
                 on_save: Optional[Callable[[dict[str, Any]], None]] = None) -> None:
        self.folder = Path(folder)
        self.every = max(1, int(every))
        self.fingerprint = json.loads(json.dumps({**fingerprint, "format": CHECKPOINT_FORMAT}, sort_keys=True))
        self.stop_requested = stop_requested
        self.check_stop = check_stop
        self.on_save = on_save
        self.saves = 0
        self.resumed_from: Optional[dict[str, Any]] = None

    @property
    def info_path(self) -> Path:
        return self.folder / "stats.json"

    def load(self) -> Optional[tuple[dict[str, Any], dict[str, torch.Tensor]]]:
        from safetensors.torch import load_file

        if not self.info_path.is_file():
            return None
        try:
            info = json.loads(self.info_path.read_text(encoding="utf-8"))
            if info.get("fingerprint") != self.fingerprint:
                return None
            path = self.folder / info["file"]
            if sha256_file(path) != info["sha256"]:
                return None
            tensors = load_file(str(path))
        except (OSError, ValueError, KeyError):
            return None
        self.resumed_from = info
        return info, tensors

    def save(self, info: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        with faults.checkpoint_save():  # tests only: kills around the save
            self.saves += 1
            name = f"stats-{info['language_index']:03d}-{info['next_block']:09d}-{self.saves}.safetensors"
            host = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
            atomic_write(self.folder / name, lambda tmp: save_file(host, str(tmp)))
            full = {**info, "fingerprint": self.fingerprint, "file": name, "sha256": sha256_file(self.folder / name)}
            atomic_write_json(self.info_path, full)
            for old in self.folder.glob("stats-*.safetensors"):
                if old.name != name:
                    old.unlink(missing_ok=True)
        if self.on_save is not None:
            self.on_save(full)


def feeds_fingerprint(feeds: Sequence[BlockFeed]) -> str:
    h = hashlib.sha256()
    for f in feeds:
        h.update(f"{f.lang}|{f.n_tokens}|{f.block_size}|{f.bos}|{f.fingerprint};".encode())
    return h.hexdigest()[:16]
