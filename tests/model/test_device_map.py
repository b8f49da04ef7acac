"""Models placed by a device_map (issue 18, point 4): the shipped demo model with layers 1 and 3 offloaded to
disk (accelerate's disk offload) gives identification statistics identical to the normal load and the
same intervention outputs; layers whose activations sit on another device than the accumulators add into
partial accumulators there and give the same statistics; the [model] placement keys are strict; `new`
warns when the model's weights will not fit the stated devices; weights load straight onto their device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lab.core.errors import BadInput
from lab.core.paths import PROJECT_ROOT
from lab.inputs.corpus import corpus_feed
from lab.model.loading import LoadedModel, load_model
from lab.neurons.activations import ActivationStats
from lab.neurons.collect import collect_stats, refine_quantiles
from lab.neurons.interventions import intervene
from lab.neurons.statistics import StatsHooks

DEMO = PROJECT_ROOT / "examples" / "models" / "tiny-polyglot"
CORPUS = PROJECT_ROOT / "examples" / "corpora"
LANGS = ["en", "sw", "fr"]
OFFLOADED = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk", "model.layers.2": "cpu",
             "model.layers.3": "disk", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
FIELDS = ("count", "sum", "tokens", "p10", "p90", "threshold90", "above90", "score_tokens", "hist_lo", "hist_width",
          "threshold_pooled", "above_pooled", "quantile_bound")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def normal() -> LoadedModel:
    return load_model({"id": str(DEMO), "device": "cpu", "dtype": "float32"})


@pytest.fixture(scope="module")
def offloaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    folder = tmp_path_factory.mktemp("offload")
    return load_model({"id": str(DEMO), "dtype": "float32", "device_map": OFFLOADED, "offload_folder": str(folder)})


def _stats(loaded: LoadedModel, neurons: dict[str, list[list[int]]]) -> ActivationStats:
    feeds = [corpus_feed(loaded.tokenizer, CORPUS, lang, 600, 32, 0) for lang in LANGS]
    stats = collect_stats(loaded.model, loaded.adapter, feeds, bins=256, batch_size=4, device=loaded.device,
                          keep_hists=True)
    refine_quantiles(loaded.model, loaded.adapter, feeds, stats, neurons, batch_size=4, device=loaded.device)
    return stats


NEURONS = {"sw": [[0, 3], [1, 17], [2, 100], [3, 511]], "fr": [[1, 2], [3, 40]]}


def test_disk_offloaded_layers_give_identical_statistics_and_interventions(normal: LoadedModel,
                                                                           offloaded: LoadedModel) -> None:
    placed = offloaded.provenance["device_map"]
    assert placed["model.layers.1"] == placed["model.layers.3"] == "disk" and placed["model.layers.0"] == "cpu"
    assert {p.device.type for n, p in offloaded.model.named_parameters() if ".layers.1." in n} == {"meta"}
    assert offloaded.device == torch.device("cpu") and "device_map" not in normal.provenance
    a, b = _stats(normal, NEURONS), _stats(offloaded, NEURONS)
    for name in FIELDS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.bins == b.bins and a.meta == b.meta

    ids = torch.tensor([[offloaded.tokenizer.bos_token_id] + offloaded.tokenizer.encode("habari ya asubuhi rafiki")])
    stats = {"act_p90": a.p90}
    for loaded in (normal, offloaded):
        with torch.no_grad():
            plain = loaded.model(ids).logits
            with intervene(loaded.model, loaded.adapter, {0: [3], 1: [17], 3: [511]}, "p90", stats=stats,
                           stat_languages=a.languages, language="sw"):
                hooked = loaded.model(ids).logits
            after = loaded.model(ids).logits
        assert torch.equal(plain, after) and not torch.equal(plain, hooked)
        loaded.__dict__.setdefault("_outputs", (plain, hooked))
    (p0, h0), (p1, h1) = normal.__dict__.pop("_outputs"), offloaded.__dict__.pop("_outputs")
    torch.testing.assert_close(p1, p0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h1, h0, rtol=1e-5, atol=1e-5)


def test_layers_on_another_device_accumulate_there_and_give_the_same_statistics(
        normal: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine with several devices a layer's activations are not where the pass's state is; its hook
    then adds into partial accumulators on its own device, folded in at flush. Simulated on the CPU by
    declaring layers 1 and 3 remote: counts, histograms and quantiles identical, sums within float64 rounding."""
    a = _stats(normal, NEURONS)
    seen: list[int] = []

    def local(self: StatsHooks, layer: int, x: torch.Tensor) -> bool:
        if layer in (1, 3):
            seen.append(layer)
            return False
        return True

    monkeypatch.setattr(StatsHooks, "_local", local)
    b = _stats(normal, NEURONS)
    assert set(seen) == {1, 3}
    for name in FIELDS:
        if name == "sum":
            torch.testing.assert_close(b.sum, a.sum, rtol=1e-12, atol=1e-9)
        else:
            assert torch.equal(getattr(a, name), getattr(b, name)), name


def test_weights_load_straight_onto_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CPU load then `.to(device)`: from_pretrained gets a device_map and the model is never moved."""
    from transformers import AutoModelForCausalLM

    calls: list[dict[str, Any]] = []
    real = AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        model = real(*args, **kwargs)
        monkeypatch.setattr(model, "to", lambda *a, **k: pytest.fail("model moved after loading"), raising=False)
        return model

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    load_model({"id": str(DEMO), "device": "cpu", "dtype": "float32"})
    assert calls[-1]["device_map"] == {"": torch.device("cpu")}


# ---- the study file's placement keys and the memory warning at `new` ------------------------------------

BASE = ('[study]\nname = "x"\n[languages]\nall = ["en", "sw"]\ntargets = ["sw"]\n[corpus]\npath = "c"\n'
        '[evaluate]\ntasks = ["t"]\n[model]\nid = "m"\n')


@pytest.mark.parametrize("lines, match", [
    ('device_map = true', "not bool True"),
    ('device_map = "everywhere"', "not str 'everywhere'"),
    ('device_map = {"model.layers.0" = 1.5}', "not float 1.5"),
    ('device_map = {"model.layers.0" = nan}', "not float nan"),
    ('device_map = {"model.layers.0" = true}', "not bool True"),
    ('device_map = {"model.layers.0" = "tpu"}', "use a GPU index"),
    ('device_map = {"bad key!" = 0}', "not a module name"),
    ('device_map = {}', "empty table"),
    ('device_map = {"model.layers.1" = "disk"}', "offload_folder is not set"),
    ('max_memory = {cpu = "1GiB"}', "only apply with device_map"),
    ('offload_folder = "/tmp/x"', "only apply with device_map"),
    ('device_map = "auto"\nmax_memory = {cpu = 10}', "must be text in quotes, not int 10"),
    ('device_map = "auto"\nmax_memory = {cpu = "lots"}', "not a size"),
    ('device_map = "auto"\nmax_memory = {cpu = "0GiB"}', "not a size"),
    ('device_map = "auto"\nmax_memory = {gpu = "1GiB"}', "not a device"),
    ('device_map = "auto"\nmax_memory = {disk = "1GiB"}', "offload_folder is not set"),
    ('device_map = "auto"\noffload_folder = nan', "must be text in quotes"),
    ('device_map = "auto"\ndevice = "cpu"', "both say where the model goes"),
])
def test_placement_keys_are_strict(lines: str, match: str) -> None:
    from lab.study.studyfile import parse_study

    with pytest.raises(BadInput, match=match):
        parse_study(BASE + lines)


def test_placement_keys_accepted() -> None:
    from lab.study.model_section import memory_bytes
    from lab.study.studyfile import parse_study

    m = parse_study(BASE + 'device_map = "auto"\nmax_memory = {"0" = "10GiB", cpu = "30GB"}').model
    assert m.device_map == "auto" and m.max_memory == {"0": "10GiB", "cpu": "30GB"}
    m = parse_study(BASE + 'device_map = {"" = 0, "lm_head" = "cpu", "model.layers.3" = "disk"}\n'
                           'offload_folder = "off"').model
    assert m.device_map == {"": 0, "lm_head": "cpu", "model.layers.3": "disk"}
    assert memory_bytes("10GiB") == 10 << 30 and memory_bytes("1.5 GB") == 1_500_000_000


def test_new_warns_when_the_model_will_not_fit(tmp_path: Path, home: Path, tiny_corpus_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from lab.store import Store
    from lab.study.create import config_parameters, create_study, memory_warning

    llama_8b = {"hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128256, "intermediate_size": 14336,
                "num_attention_heads": 32, "num_key_value_heads": 8, "model_type": "llama",
                "tie_word_embeddings": False}
    assert config_parameters(llama_8b) == 8_030_261_248  # Llama-3.1-8B's parameter count
    demo = load_model({"id": str(DEMO), "device": "cpu", "dtype": "float32"}).provenance["parameters"]

    def cfg(**model: Any) -> dict[str, Any]:
        return {"model": {"id": str(DEMO), "dtype": "float32", **model}, "resolved": {"model_source": "local"}}

    assert demo == 1_574_016
    line = memory_warning(cfg(device_map="auto", max_memory={"cpu": "5MiB"}), gpus=[], host=1 << 30)
    assert line is not None and "\n" not in line and line.startswith("warning: ")
    assert "1,574,016 parameters × 4 bytes" in line and "5.0 MiB" in line
    assert memory_warning(cfg(device_map="auto", max_memory={"cpu": "7MiB"}), gpus=[], host=1 << 30) is None
    assert memory_warning(cfg(device="cpu"), gpus=[], host=4 << 20) is not None  # the host alone is too small
    assert memory_warning(cfg(device="cuda:1"), gpus=[80 << 30, 1 << 20], host=1 << 40) is not None
    assert memory_warning(cfg(device_map="auto", offload_folder="/x"), gpus=[], host=1 << 20) is None  # disk takes it

    study = tmp_path / "s.toml"
    study.write_text(f'[study]\nname = "big"\n[model]\nid = "{DEMO}"\ndtype = "float32"\ndevice_map = "auto"\n'
                     f'max_memory = {{cpu = "2MiB"}}\n[languages]\nall = ["en", "sw"]\ntargets = ["sw"]\n'
                     f'[corpus]\npath = "{tiny_corpus_dir}"\nblock_size = 16\n[evaluate]\ntasks = ["demo_real"]\n',
                     encoding="utf-8")
    capsys.readouterr()
    created = create_study(Store(home), study)  # a warning, not an error: the study is created
    err = capsys.readouterr().err.strip().splitlines()
    assert created.id and len(err) == 1 and "needs about 6.0 MiB" in err[0] and "max_memory's devices hold 2.0 MiB" in err[0]
