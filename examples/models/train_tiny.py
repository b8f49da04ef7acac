"""Train the shipped demo model ``examples/models/tiny-polyglot`` from scratch.

Why this exists: the demo study needs a real multilingual causal LM that runs in seconds on a CPU
and loads offline. This script trains one on the six demo corpora (``examples/corpora/<lang>.txt``,
generated from the neuron-pilot demo grammars): a byte-level BPE tokenizer (vocab 4096) and a small
LlamaForCausalLM, seeded and reproducible, in a few minutes on two CPU cores. The held-out text and
the demo tasks are only used afterwards, to report perplexity and demo_real accuracy in
``training_log.json``. Run: ``python examples/models/train_tiny.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parents[1]
CORPORA = EXAMPLES / "corpora"
TASKS = EXAMPLES / "tasks"
OUT = EXAMPLES / "models" / "tiny-polyglot"
LANGS = ["en", "fr", "de", "sw", "hi", "ur"]
SPECIAL = ["<s>", "</s>", "<pad>"]

DEFAULTS = dict(seed=1234, vocab=4096, hidden=128, layers=4, heads=4, kv_heads=4, d_ff=512,
                max_position=256, block=128, batch=24, steps=400, lr=3e-3, warmup=60,
                weight_decay=0.05, threads=2)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# GPT-2's byte-level split regex treats combining marks (Devanagari vowel signs, nukta) as
# punctuation and cuts Hindi words into pieces; this split keeps letters and marks together.
SPLIT_PATTERN = r" ?[\p{L}\p{M}]+| ?\p{N}+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+"


def train_tokenizer(texts: list[str], vocab: int):
    """Byte-level BPE on the training corpora only, wrapped for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", model_max_length=DEFAULTS["max_position"])


def token_stream(tok, lines: list[str]) -> list[int]:
    """Paragraphs joined by </s>, the way the model sees text."""
    ids: list[int] = []
    for line in lines:
        ids.extend(tok(line, add_special_tokens=False)["input_ids"])
        ids.append(tok.eos_token_id)
    return ids


def blocks(ids: list[int], size: int) -> torch.Tensor:
    n = len(ids) // size
    return torch.tensor(ids[: n * size], dtype=torch.long).view(n, size)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def perplexity(model, data: torch.Tensor, batch: int = 32) -> float:
    """Token-level perplexity over fixed blocks."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        x = data[i:i + batch]
        logits = model(input_ids=x).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1),
                                                reduction="sum")
        total += nll.item()
        count += x[:, 1:].numel()
    return math.exp(total / count)


@torch.no_grad()
def continuation_logprob(model, tok, context: str, continuation: str) -> float:
    """Summed log-probability of ``continuation`` after ``context`` (lm-eval's loglikelihood split)."""
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    full = tok(context + continuation, add_special_tokens=False)["input_ids"]
    cont = full[len(ctx):]
    x = torch.tensor([full])
    logp = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), dim=-1)
    start = len(full) - len(cont)
    return sum(logp[start - 1 + i, t].item() for i, t in enumerate(cont))


def demo_real_accuracy(model, tok, items: list[dict]) -> float:
    """Share of items where the real continuation gets the higher summed log-likelihood."""
    model.eval()
    right = 0
    for item in items:
        scores = [continuation_logprob(model, tok, item["context"], " " + c) for c in item["choices"]]
        right += int(max(range(len(scores)), key=scores.__getitem__) == item["gold"])
    return right / len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    from transformers import LlamaConfig, LlamaForCausalLM

    t0 = time.time()
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    corpus_files = {lang: CORPORA / f"{lang}.txt" for lang in LANGS}
    texts = {lang: read_lines(p) for lang, p in corpus_files.items()}
    tok = train_tokenizer([line for lang in LANGS for line in texts[lang]], args.vocab)
    t_tok = time.time() - t0

    streams = {lang: token_stream(tok, texts[lang]) for lang in LANGS}
    train_tokens = {lang: len(ids) for lang, ids in streams.items()}
    data = {lang: blocks(ids, args.block) for lang, ids in streams.items()}
    per_lang = min(len(b) for b in data.values())
    heldout = {lang: blocks(token_stream(tok, read_lines(CORPORA / "heldout" / f"{lang}.txt")), args.block)
               for lang in LANGS}

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=args.hidden, intermediate_size=args.d_ff,
                      num_hidden_layers=args.layers, num_attention_heads=args.heads,
                      num_key_value_heads=args.kv_heads, max_position_embeddings=args.max_position,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True, hidden_act="silu",
                      rms_norm_eps=1e-5)
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95))

    # Balanced batches: every batch holds the same number of blocks from each language (rounded),
    # drawn from a per-language shuffled order that is refreshed when a language runs out.
    gen = torch.Generator().manual_seed(args.seed)
    order = {lang: torch.randperm(len(data[lang]), generator=gen).tolist() for lang in LANGS}
    cursor = {lang: 0 for lang in LANGS}

    def next_blocks(lang: str, k: int) -> torch.Tensor:
        rows = []
        for _ in range(k):
            if cursor[lang] >= len(order[lang]):
                order[lang] = torch.randperm(len(data[lang]), generator=gen).tolist()
                cursor[lang] = 0
            rows.append(data[lang][order[lang][cursor[lang]]])
            cursor[lang] += 1
        return torch.stack(rows)

    per_batch = max(1, args.batch // len(LANGS))
    losses: list[float] = []
    model.train()
    t_train = time.time()
    for step in range(args.steps):
        x = torch.cat([next_blocks(lang, per_batch) for lang in LANGS])
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.steps, args.warmup, args.lr)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.3f} lr {opt.param_groups[0]['lr']:.2e} "
                  f"{time.time() - t_train:.0f}s", flush=True)
    train_seconds = time.time() - t_train

    model.eval()
    ppl = {lang: round(perplexity(model, heldout[lang]), 3) for lang in LANGS}
    acc = {}
    for lang in LANGS:
        path = TASKS / "demo_real" / f"demo_real_{lang}.test.jsonl"
        items = [json.loads(line) for line in read_lines(path)]
        acc[lang] = round(demo_real_accuracy(model, tok, items), 3)
    print("heldout perplexity", ppl)
    print("demo_real accuracy", acc)

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tok.save_pretrained(args.out)
    window = max(1, len(losses) // 20)
    log = {
        "seed": args.seed,
        "hyperparameters": {k: getattr(args, k) for k in DEFAULTS},
        "parameters": n_params,
        "steps": args.steps,
        "tokens_seen": args.steps * per_batch * len(LANGS) * args.block,
        "loss": {"first": round(losses[0], 4), "last_window_mean": round(sum(losses[-window:]) / window, 4),
                 "every_50_steps": [round(v, 4) for v in losses[::50]]},
        "seconds": {"tokenizer": round(t_tok, 1), "training": round(train_seconds, 1),
                    "total": round(time.time() - t0, 1)},
        "threads": args.threads,
        "torch": torch.__version__,
        "train_tokens_per_language": train_tokens,
        "train_blocks_per_language": {lang: len(b) for lang, b in data.items()},
        "balanced_blocks_per_language": per_lang,
        "heldout_perplexity": ppl,
        "demo_real_accuracy": acc,
        "corpus_sha256": {f"corpora/{lang}.txt": sha256(p) for lang, p in corpus_files.items()},
    }
    (args.out / "training_log.json").write_text(json.dumps(log, indent=2, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"saved {args.out} ({size / 1e6:.1f} MB) in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
