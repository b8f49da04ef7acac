"""The generation probe's engine: degenerate output, language identification on the demo text,
fidelity statistics, prompt files and the [generate] study-file table, and an intervention that
forces every continuation into one language (fidelity collapses; removing it restores the text)."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from lab.core.errors import BadInput
from lab.eval.fidelity import (LanguageID, PromptScore, fidelity_rows, id_label, other_languages, prompt_score,
                                share_interval)
from lab.eval.stats import wilson_interval
from lab.eval.generation import (DEMO_PROMPTS, GenerationSettings, PromptResult, degenerate_reason,
                            generate_continuations, is_loop, read_prompts, sampling_seed)
from lab.core.paths import DEMO_MODEL, EXAMPLES

from tests.helpers import write_study_toml

DEMO_LANGS = ["en", "fr", "de", "sw", "hi", "ur"]


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Generation on the shared 2-core machine: one thread is much faster than two fighting others."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- degenerate output ---------------------------------------------------------------------------

def test_loops_and_empty_output_are_degenerate() -> None:
    assert is_loop([4, 1, 2, 1, 2, 1, 2])  # "a b" three times at the end
    assert is_loop([9] * 6) and not is_loop([9] * 5)  # one token must repeat 6 times (span >= 6 tokens)
    assert is_loop([7, 1, 2, 3, 1, 2, 3, 1, 2, 3])
    assert not is_loop([1, 2, 3, 1, 2, 3])  # only twice
    assert not is_loop([1, 2, 1, 2, 1, 2, 5])  # the loop was left: not at the end
    assert not is_loop([])
    assert degenerate_reason("", []) == "empty"
    assert degenerate_reason(" ... !? 12", [3, 4, 5]) == "empty"  # no letter at all
    assert degenerate_reason(" the the the the the the", [8] * 6) == "loop"
    assert degenerate_reason(" went to the market.", [1, 2, 3, 4]) is None


# ---- language identification --------------------------------------------------------------------

def test_language_id_classifies_the_demo_prompts_and_corpus_lines() -> None:
    """Our demo text comes from hand-written grammars: the identifier must still read it right,
    also from the first few words only (continuations are short)."""
    lid = LanguageID(DEMO_LANGS)
    for lang in DEMO_LANGS:
        prompts = read_prompts(DEMO_PROMPTS, lang)
        assert len(prompts) >= 30  # the default n_prompts takes them all
        assert [lid.detect(p)[0] for p in prompts] == [lang] * len(prompts)  # over the full label set
        lines = [ln for ln in (EXAMPLES / "corpora" / f"{lang}.txt").read_text(encoding="utf-8").splitlines() if ln]
        short = [" ".join(ln.split()[:8]) for ln in lines]
        rate = sum(lid.detect(s)[0] == lang for s in short) / len(short)
        assert rate >= 0.97, f"{lang}: {rate:.3f} of 8-word corpus snippets identified"


def test_language_id_uses_the_full_label_set_and_maps_study_codes() -> None:
    lid = LanguageID(["sw", "en", "xyz", "zh_Hans", "nb", "sw"])
    assert lid.supported == ["sw", "en", "zh_Hans", "nb"] and lid.unsupported == ["xyz"]
    assert len(lid.labels) > 100 and {"it", "es", "pt", "ln"} <= set(lid.labels)  # not restricted to the study
    assert lid.codes == {"sw": "sw", "en": "en", "zh_Hans": "zh", "nb": "no"}
    assert id_label("pt-BR") == "pt" and id_label("fil") == "tl" and id_label("SW") == "sw"
    assert lid.detect("   ... 42 !")[0] == "und"
    assert lid.detect("这是一个测试句子")[0] == "zh_Hans"  # a study language comes back in the study's code
    assert lid.detect("Jeg har kjøpt en ny sykkel, og i morgen skal jeg sykle til byen.")[0] == "nb"
    # a language outside the study is named as itself, never as the nearest study language
    assert lid.detect("Hier, mon frère est allé au marché avec sa tante.")[0] == "fr"
    assert lid.detect("Ieri mio fratello è andato al mercato con la zia e ha comprato del pane.")[0] == "it"
    with pytest.raises(BadInput, match="knows none of xyz"):
        LanguageID(["xyz"])


def test_a_continuation_in_a_third_language_is_a_switch() -> None:
    """A Swahili prompt continued in Italian or Spanish (our own sentences): detected as such over the
    full label set, it counts as a switch to another language, not as Swahili or English."""
    lid = LanguageID(["en", "sw"])
    continuations = [" na baadaye walikula chakula cha mchana pamoja nyumbani kwa bibi yao.",
                     " e poi siamo andati tutti insieme a mangiare una pizza vicino alla stazione.",
                     " y después fuimos todos juntos a comer en la casa de mi abuela."]
    detected = [lid.detect(c)[0] for c in continuations]
    assert detected == ["sw", "it", "es"]
    s = prompt_score("sw", detected, [False] * 3, continuations[0])
    assert (s.in_language, s.english, s.other) == pytest.approx((1 / 3, 0.0, 2 / 3))
    assert other_languages("sw", detected + ["it", "und", "en"]) == {"it": 2, "en": 1, "es": 1}
    # for an English prompt, text in a study language other than English is a switch as well
    e = prompt_score("en", ["sw", "en", "und"], [False, False, True], "g")
    assert (e.in_language, e.english, e.other, e.degenerate) == pytest.approx((1 / 3, 0.0, 1 / 3, 1 / 3))


# ---- statistics ----------------------------------------------------------------------------------

def _scores(in_lang: list[float], english: list[float], degenerate: list[float], texts: list[str]) -> list[PromptScore]:
    """Prompt scores whose remaining share (neither in language, English nor degenerate) went elsewhere."""
    return [PromptScore(a, b, max(0.0, 1 - a - b - c), c, t) for a, b, c, t in zip(in_lang, english, degenerate, texts)]


def test_fidelity_rows_pair_conditions_on_the_same_prompts() -> None:
    texts = [f"t{i}" for i in range(6)]
    by_cond = {
        "baseline": _scores([1, 1, 1, 1, 0.5, 1], [0] * 6, [0] * 6, texts),
        "intervention": _scores([0, 0, 1, 0, 0, 0], [1, 1, 0, 0.5, 0.5, 1], [0, 0, 0, 1, 0, 0],
                                ["x0", "x1", "t2", "x3", "x4", "x5"]),
        "control": _scores([1, 1, 1, 1, 0.5, 1], [0] * 6, [0] * 6, texts),
    }
    rows = fidelity_rows("sw", by_cond, compared=("intervention", "control"), resamples=500, seed=3)
    get = {(r["name"], r["condition"]): r for r in rows}
    assert get[("language_fidelity", "baseline")]["value"] == pytest.approx(5.5 / 6)
    assert get[("language_fidelity", "intervention")]["value"] == pytest.approx(1 / 6)
    for cond, mean in (("baseline", 5.5 / 6), ("intervention", 1 / 6)):  # Wilson interval over the 6 prompts
        w = wilson_interval(round(mean * 6, 6), 6)
        row = get[("language_fidelity", cond)]
        assert (row["ci_low"], row["ci_high"], row["n"]) == pytest.approx((w.low, w.high, 6))
    assert get[("switch_to_other", "intervention")]["value"] == pytest.approx(0.5 / 6)  # prompt 4: half elsewhere
    d = get[("language_fidelity_delta", "intervention")]
    assert d["value"] == pytest.approx(1 / 6 - 5.5 / 6) and d["ci_low"] <= d["value"] <= d["ci_high"] < 0
    assert d["n"] == 6
    same = get[("language_fidelity_delta", "control")]  # identical to baseline on every prompt: [0, 0]
    assert (same["value"], same["ci_low"], same["ci_high"]) == (0.0, 0.0, 0.0)
    assert get[("switch_to_english", "intervention")]["value"] == pytest.approx(4 / 6)
    assert get[("degenerate_rate_delta", "intervention")]["value"] == pytest.approx(1 / 6)
    assert get[("continuation_changed", "intervention")]["value"] == pytest.approx(5 / 6)
    assert get[("continuation_changed", "control")]["value"] == 0.0
    narrow = {(r["name"], r["condition"]): r for r in fidelity_rows(
        "sw", by_cond, compared=("intervention",), resamples=500, seed=3, confidence=0.8)}  # the study's level
    for key in (("language_fidelity", "baseline"), ("language_fidelity_delta", "intervention")):
        assert get[key]["ci_low"] < narrow[key]["ci_low"] <= narrow[key]["ci_high"] < get[key]["ci_high"]
    en_rows = fidelity_rows("en", by_cond, compared=("intervention",), resamples=100, seed=0)
    assert not any(r["name"].startswith("switch_to_english") for r in en_rows)  # staying in English is fidelity


def test_share_interval_is_wilson_over_prompts() -> None:
    """20 of 20 prompts in language: [0.839, 1], never the zero-width [1, 1] a bootstrap gives."""
    w = share_interval([1.0] * 20)
    assert (w.value, w.high, w.n) == (1.0, 1.0, 20) and w.low == pytest.approx(0.8389, abs=1e-4)
    z = share_interval([0.0] * 8)
    assert z.low == 0.0 and z.high == pytest.approx(0.3244, abs=1e-4)
    # fractional shares (greedy + sampled continuations per prompt): p = mean share, n = prompts
    f = share_interval([1.0, 0.5, 0.5, 1.0, 0.0, 1.0])
    ref = wilson_interval(4, 6)
    assert (f.value, f.low, f.high, f.n) == pytest.approx((ref.value, ref.low, ref.high, 6))
    assert share_interval([1.0] * 20, confidence=0.99).low < w.low  # the level is honoured


def test_prompt_score_counts_each_continuation() -> None:
    s = prompt_score("sw", ["sw", "en", "und"], [False, False, True], "g")
    assert (s.in_language, s.english, s.other, s.degenerate) == pytest.approx((1 / 3, 1 / 3, 0, 1 / 3))
    with pytest.raises(ValueError):
        prompt_score("sw", [], [], "g")


# ---- prompts and the [generate] table ------------------------------------------------------------

def test_prompt_files(tmp_path: Path) -> None:
    (tmp_path / "sw.txt").write_text("\n  Jana jioni  \n\nKila asubuhi\nSokoni leo\n", encoding="utf-8")
    assert read_prompts(tmp_path, "sw") == ["Jana jioni", "Kila asubuhi", "Sokoni leo"]
    assert read_prompts(tmp_path, "sw", 2) == ["Jana jioni", "Kila asubuhi"]
    assert read_prompts(tmp_path, "sw", None) == read_prompts(tmp_path, "sw", 50)  # None (the default): all
    with pytest.raises(BadInput, match="has no ur.txt"):
        read_prompts(tmp_path, "ur")
    (tmp_path / "hi.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(BadInput, match="has no prompts"):
        read_prompts(tmp_path, "hi")
    assert sampling_seed(5, "sw") == sampling_seed(5, "sw") != sampling_seed(5, "ur")


def test_generate_table_is_validated_at_new(tmp_path: Path, tiny_llama_dir: Path, tiny_corpus_dir: Path) -> None:
    from lab.study.studyfile import load_study_file

    path = write_study_toml(tmp_path / "s.toml", tiny_llama_dir, tiny_corpus_dir)
    base = path.read_text(encoding="utf-8")
    _, cfg, _ = load_study_file(path)
    assert cfg["generate"] == {"prompts": None, "n_prompts": None, "max_new_tokens": 24, "samples": 1,
                               "temperature": 0.8, "top_p": 0.95}  # n_prompts None: every prompt in the file
    path.write_text(base + "\n[generate]\nn_prompts = 0\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"\[generate\] n_prompts"):
        load_study_file(path)
    path.write_text(base + "\n[generate]\nmax_tokens = 5\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"unknown key \[generate\] max_tokens"):
        load_study_file(path)
    path.write_text(base + "\n[generate]\nsamples = -1\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"\[generate\] samples"):
        load_study_file(path)
    prompts = tmp_path / "my-prompts"
    prompts.mkdir()
    (prompts / "sw.txt").write_text("Jana jioni\n", encoding="utf-8")
    path.write_text(base + f'\n[generate]\nprompts = "{prompts}"\n', encoding="utf-8")
    with pytest.raises(BadInput, match=r"\[generate\] prompts folder .* has no en.txt"):  # evaluated: sw + en, fr, de
        load_study_file(path)
    for lang in ("en", "fr", "de"):
        (prompts / f"{lang}.txt").write_text("Yesterday\n", encoding="utf-8")
    _, cfg, _ = load_study_file(path)
    assert cfg["generate"]["prompts"] == str(prompts)
    path.write_text(base + '\n[generate]\nprompts = "no/such/folder"\n', encoding="utf-8")
    with pytest.raises(BadInput, match="is not a folder"):
        load_study_file(path)


# ---- an intervention that forces one language ----------------------------------------------------

@pytest.fixture(scope="module")
def demo_model() -> Any:
    from lab.model.loading import load_model

    return load_model({"id": str(DEMO_MODEL), "device": "cpu", "dtype": "float32"})


def _own_tokens(tokenizer: Any, language: str) -> list[int]:
    """Token ids that occur in the language's demo corpus (twice or more) and in no other's."""
    counts = {lang: Counter(tokenizer((EXAMPLES / "corpora" / f"{lang}.txt").read_text(encoding="utf-8")[:40000],
                                      verbose=False)["input_ids"]) for lang in DEMO_LANGS}
    return sorted(t for t, c in counts[language].items()
                  if c >= 2 and all(counts[o][t] == 0 for o in DEMO_LANGS if o != language))


@contextlib.contextmanager
def push_tokens(model: Any, token_ids: list[int], bias: float = 12.0) -> Iterator[None]:
    """A test intervention: a forward hook on the output layer adds `bias` to these tokens' logits."""
    import torch

    index = torch.tensor(token_ids)

    def hook(_m: Any, _inp: Any, out: Any) -> Any:
        out = out.clone()
        out[..., index] += bias
        return out

    handle = model.get_output_embeddings().register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _fidelity(lid: LanguageID, prompts: dict[str, list[str]], results: list[PromptResult]) -> dict[str, list[PromptScore]]:
    out: dict[str, list[PromptScore]] = {}
    at = 0
    for lang, ps in prompts.items():
        out[lang] = [prompt_score(lang, [lid.detect(c.text)[0] for c in r.continuations],
                                  [c.degenerate is not None for c in r.continuations], r.greedy.text)
                     for r in results[at:at + len(ps)]]
        at += len(ps)
    return out


def test_forcing_one_language_collapses_fidelity_and_removing_it_restores_the_text(demo_model: Any,
                                                                                  one_thread: None) -> None:
    model, tok = demo_model.model, demo_model.tokenizer
    prompts = {lang: read_prompts(DEMO_PROMPTS, lang, 3) for lang in ("en", "sw", "ur")}
    flat = [p for ps in prompts.values() for p in ps]
    settings = GenerationSettings(max_new_tokens=16, samples=1, batch_size=len(flat))
    lid = LanguageID(DEMO_LANGS)
    german = _own_tokens(tok, "de")
    assert len(german) > 100

    before = generate_continuations(model, tok, flat, settings, seed=11)
    forced = generate_continuations(model, tok, flat, settings, seed=11, hooks=push_tokens(model, german))
    after = generate_continuations(model, tok, flat, settings, seed=11)

    base_scores, forced_scores = _fidelity(lid, prompts, before), _fidelity(lid, prompts, forced)
    for lang in prompts:
        rows = fidelity_rows(lang, {"baseline": base_scores[lang], "intervention": forced_scores[lang]},
                             compared=("intervention",), resamples=200, seed=0)
        get = {r["name"]: r["value"] for r in rows if r["condition"] == "intervention"}
        base = next(r["value"] for r in rows if r["name"] == "language_fidelity" and r["condition"] == "baseline")
        assert base >= 2 / 3, f"the demo model should mostly stay in {lang} ({base})"
        assert get["language_fidelity"] == 0.0
        assert get["language_fidelity_delta"] == pytest.approx(-base)
        assert get["continuation_changed"] == 1.0
    detected = [lid.detect(c.text)[0] for r in forced for c in r.continuations]
    assert detected == ["de"] * len(detected)  # greedy and sampled, every prompt language
    # hooks gone: greedy continuations are the baseline's exactly, and so are the seeded samples
    assert [r.to_json() for r in after] == [r.to_json() for r in before]
    assert not model.get_output_embeddings()._forward_hooks


def test_probe_prompts_start_with_bos_like_identification_blocks() -> None:
    """The demo tokenizer does not add a BOS itself; the probe adds it after the left padding, once."""
    from transformers import AutoTokenizer

    from lab.eval.generation import _encode, _left_padding
    from tests.helpers import ROOT_DIR

    tok = AutoTokenizer.from_pretrained(ROOT_DIR / "examples/models/tiny-polyglot")
    assert tok("the cat")["input_ids"][0] != tok.bos_token_id
    with _left_padding(tok):
        enc = _encode(tok, ["the cat", "le chien dort sur le lit", tok.bos_token + "mbwa"])
    for ids, mask in zip(enc["input_ids"].tolist(), enc["attention_mask"].tolist()):
        first = mask.index(1)
        assert all(m == 0 for m in mask[:first]) and ids[first] == tok.bos_token_id
        assert ids[first + 1] != tok.bos_token_id
