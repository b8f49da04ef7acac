"""GGUF models: a tiny Llama written to GGUF with the `gguf` package (llama.cpp's tensor names, its
q/k row permutation, a byte-level "gpt2" tokenizer in the metadata) loads offline through
lab.model.loading.load_model with the same logits and token ids as the original; an architecture without
a neuron adapter is refused with BadInput."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lab.core.errors import BadInput
from lab.model.loading import load_model
from lab.study.studyfile import load_study_file
from tests.helpers import metadata_only_gguf

# transformers' module path inside a Llama decoder layer -> llama.cpp's tensor name inside blk.N
BLOCK = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
TOP = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
       "lm_head.weight": "output.weight"}


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp stores q/k rows interleaved per rotary pair; transformers' loader undoes exactly this."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_llama_gguf(src: Path, out: Path) -> tuple[Any, Any]:
    """Convert a saved transformers Llama (float32) to a GGUF file; returns (model, tokenizer)."""
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(src)
    cfg = model.config
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name("tiny-llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    # the tokenizer: byte-level BPE, tokens in id order, special tokens marked CONTROL (3)
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    merges = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))["model"]["merges"]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if i in set(tok.all_special_ids) else 1 for i in range(len(tokens))])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    for name, tensor in model.state_dict().items():
        arr = tensor.detach().float().numpy()
        if name in TOP:
            gname = TOP[name]
        else:  # model.layers.N.<module>.weight
            parts = name.split(".")
            module = ".".join(parts[3:-1])
            gname = f"blk.{parts[2]}.{BLOCK[module]}.weight"
            if module == "self_attn.q_proj":
                arr = permute_qk(arr, cfg.num_attention_heads)
            elif module == "self_attn.k_proj":
                arr = permute_qk(arr, cfg.num_key_value_heads)
        w.add_tensor(gname, np.ascontiguousarray(arr, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model, tok


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    path = tmp_path_factory.mktemp("gguf") / "tiny-llama-f32.gguf"
    model, tok = write_llama_gguf(tiny_llama_dir, path)
    return path, model, tok


def test_gguf_loads_offline_with_the_same_logits(tiny_gguf: tuple[Path, Any, Any]) -> None:
    path, original, tok = tiny_gguf
    loaded = load_model({"id": str(path), "device": "cpu", "dtype": "float32"}, source="gguf")
    assert loaded.adapter.name == "llama" and loaded.device.type == "cpu"
    prov = loaded.provenance
    assert (prov["source"], prov["model_type"], prov["n_layers"], prov["d_ff"]) == ("gguf", "llama", 2, 64)
    assert prov["revision"].startswith("sha256:") and len(prov["revision"]) == 7 + 64
    assert prov["parameters"] == sum(p.numel() for p in original.parameters())
    text = ["the cat sat on the mat", "paka analala kitandani na mbwa"]
    for sentence in text:
        ids = tok(sentence, return_tensors="pt").input_ids
        assert torch.equal(loaded.tokenizer(sentence, return_tensors="pt").input_ids, ids)
        with torch.no_grad():
            expected = original(ids).logits
            got = loaded.model(ids).logits
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    # the neuron hook point works on the GGUF-loaded model too
    assert len(loaded.adapter.act_modules(loaded.model)) == 2


def test_gguf_folder_needs_a_file_name_when_it_holds_several(tiny_gguf: tuple[Path, Any, Any], tmp_path: Path) -> None:
    path, _, _ = tiny_gguf
    folder = tmp_path / "ggufs"
    folder.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (folder / name).write_bytes(path.read_bytes())
    with pytest.raises(BadInput, match="holds 2 .gguf files; name one with \\[model\\] gguf_file"):
        load_model({"id": str(folder), "device": "cpu"}, source="gguf")
    loaded = load_model({"id": str(folder), "device": "cpu", "gguf_file": "b.gguf"}, source="gguf")
    assert loaded.provenance["n_layers"] == 2


def test_study_file_marks_a_gguf_model(tiny_gguf: tuple[Path, Any, Any], tiny_corpus_dir: Path, tmp_path: Path) -> None:
    path, _, _ = tiny_gguf
    study = tmp_path / "s.toml"
    study.write_text(f"""
[study]
name = "g"
[model]
id = "{path}"
[languages]
all = ["en", "sw"]
targets = ["sw"]
[corpus]
path = "{tiny_corpus_dir}"
[evaluate]
tasks = ["demo_xnli"]
""", encoding="utf-8")
    _, cfg, _ = load_study_file(study)
    assert cfg["resolved"]["model_source"] == "gguf" and cfg["model"]["id"] == str(path)




def test_gguf_of_an_architecture_without_adapter_is_bad_input(tmp_path: Path) -> None:
    # transformers reads phi3 GGUFs, but neuron-pilot has no neuron adapter for phi3
    phi3 = metadata_only_gguf(tmp_path / "phi3.gguf", "phi3")
    with pytest.raises(BadInput) as exc:
        load_model({"id": str(phi3), "device": "cpu"}, source="gguf")
    assert "'phi3' has no neuron adapter" in str(exc.value) and "lab/model/adapters.py" in str(exc.value)
    # an architecture transformers itself cannot read from GGUF
    rwkv = metadata_only_gguf(tmp_path / "rwkv.gguf", "rwkv6")
    with pytest.raises(BadInput, match="rwkv6 is not supported.*point \\[model\\] id at"):
        load_model({"id": str(rwkv), "device": "cpu"}, source="gguf")
