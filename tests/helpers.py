"""Helpers shared by test modules: demo texts, a tiny model builder, study-file writers and waits
for worker processes. Fixtures live in conftest.py; import these with ``from tests.helpers import``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT_DIR = Path(__file__).resolve().parent.parent
"""The project root (the folder holding lab/, tui/, examples/)."""

LANG_TEXT = {
    "en": "the cat sat on the mat and the dog ran in the park with a red ball ",
    "fr": "le chat dort sur le lit et le chien court dans le parc avec une balle ",
    "de": "die Katze schläft auf dem Bett und der Hund läuft im Park mit dem Ball ",
    "sw": "paka analala kitandani na mbwa anakimbia bustanini na mpira mwekundu ",
}


def build_tiny_llama(path: Path, *, vocab: int = 400, hidden: int = 32, d_ff: int = 64, layers: int = 2,
                     seed: int = 0, texts: list[str] | None = None) -> Path:
    """A randomly initialised Llama with a byte-level BPE tokenizer, saved like a real model."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    path.mkdir(parents=True, exist_ok=True)
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(texts or list(LANG_TEXT.values()) * 5, vocab_size=vocab, min_frequency=1,
                            special_tokens=["<s>", "</s>", "<pad>"], show_progress=False)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok._tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    fast.save_pretrained(path)
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=d_ff, num_hidden_layers=layers, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=len(fast), max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def write_study_toml(path: Path, model: Path, corpus: Path, name: str = "pilot", seed: int | None = None) -> Path:
    """A minimal four-language study file on the given model and corpus (targets: sw)."""
    seed_line = f"seed = {seed}\n" if seed is not None else ""
    path.write_text(f"""
[study]
name = "{name}"
{seed_line}
[model]
id = "{model}"
device = "cpu"

[languages]
all = ["en", "fr", "de", "sw"]
targets = ["sw"]

[corpus]
path = "{corpus}"
tokens_per_language = 1000

[evaluate]
tasks = ["demo_xnli"]
""", encoding="utf-8")
    return path


def en_sw_study(name: str, model: Path, corpus: Path, seed: int, sections: str) -> str:
    """A small en + sw study text (target sw, float32 on CPU, 1024 tokens per language in blocks of
    64, 128 held out) followed by `sections` ([identify], [intervention], [evaluate] ...)."""
    return f"""
[study]
name = "{name}"
seed = {seed}
[model]
id = "{model}"
device = "cpu"
dtype = "float32"
[languages]
all = ["en", "sw"]
targets = ["sw"]
high_resource = ["en"]
[corpus]
path = "{corpus}"
tokens_per_language = 1024
block_size = 64
heldout_tokens = 128
{sections.strip()}
"""


def wait_running(store: Any, sid: int, stage: str, proc: Any, timeout: float, poll: float) -> int:
    """Wait until `stage` is marked running by a live worker; its pid. Fails if `proc` (the runner or
    UI that should start it) exits first."""
    import time

    from lab.store import StageState
    from lab.store.db import pid_alive

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.stage_run(sid, stage)
        if run.state == StageState.running and run.pid and pid_alive(run.pid):
            return int(run.pid)
        assert proc.poll() is None, proc.communicate()
        time.sleep(poll)
    raise AssertionError(f"stage {stage} never started running")


def wait_dead(pid: int, timeout: float, poll: float) -> None:
    import time

    from lab.store.db import pid_alive

    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(poll)
    assert not pid_alive(pid)


def metadata_only_gguf(path: Path, arch: str) -> Path:
    """A GGUF that declares `arch` (enough metadata for transformers to read a config), no weights."""
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}")
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_block_count(2)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(16)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([chr(ord("a") + i) for i in range(16)])
    w.add_token_merges([])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
