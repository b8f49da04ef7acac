"""`neuron-pilot bench`: DESIGN.md's JSON shape, real ratios, and memory that does not grow with tokens."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from lab.cli import main


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_bench_json_has_the_design_shape(tiny_llama_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", str(tiny_llama_dir), "--json", "--tokens", "256", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"model", "device", "tokens", "plain_tokens_per_s", "stats_overhead", "intervention_overhead"} <= set(out)
    assert out["model"] == str(tiny_llama_dir) and out["device"] == "cpu" and out["tokens"] == 256
    assert out["plain_tokens_per_s"] > 0
    for key in ("stats_overhead", "intervention_overhead"):
        assert isinstance(out[key], float) and 0.2 < out[key] < 50
    # the overhead is the median of the per-(batch, repeat) ratios, all of them recorded
    ratios = out["ratios"]["stats"]
    assert len(ratios) == out["repeats"] * 1 and out["stats_overhead"] == statistics.median(ratios)
    assert out["d_ff"] == 64 and out["n_layers"] == 2 and out["intervened_per_layer"] == 1
    # issue 18: tokens/s of every pass, the statistics state a 6-language study would hold, peak memory
    assert out["stats_tokens_per_s"] > 0 and out["intervention_tokens_per_s"] > 0
    assert out["stats_state_languages"] == 6 and out["histogram_bins"] == 2048
    from lab.neurons.statistics import state_bytes
    assert out["stats_state_bytes"] == state_bytes(2, 64, 6, 2048)
    assert out["peak_rss_bytes"] > 50e6 and out["peak_device_memory_bytes"] == out["peak_rss_bytes"]
    assert out["mfu"] is None and out["flops_per_token"] > 0  # model FLOP utilisation is for CUDA only


def test_flops_per_token_and_the_bf16_peak_table() -> None:
    from lab.bench.overhead import bf16_peak, forward_flops_per_token, random_llama

    model = random_llama("tiny", torch.device("cpu"), torch.float32)
    layers = sum(p.numel() for n, p in model.named_parameters() if "layers." in n and p.dim() > 1)
    # 2 FLOPs per layer weight, plus causal attention (2 layers x 128 positions x 4 heads x 16 dims x 2)
    assert forward_flops_per_token(model, 2, 128) == 2 * layers + 2 * 2 * 128 * 64
    assert bf16_peak(torch.device("cpu")) is None


def test_bench_text_output_on_a_random_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", "random:tiny", "--tokens", "512", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "random:tiny" in text and "statistics collection  x" in text and "tokens/s" in text


def test_unknown_preset_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--model", "random:huge", "--device", "cpu"]) == 2
    assert "unknown bench model random:huge" in capsys.readouterr().err


@pytest.mark.slow
def test_ten_times_the_tokens_does_not_raise_peak_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import build_tiny_llama
    from lab.bench.memory import memory_check

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    model = build_tiny_llama(tmp_path / "wide", d_ff=1024)  # 2 x 1024 neurons: stored activations would show
    # 32 and 320 blocks of 128: the same batch shapes in both runs, so the allocator sees the same pattern
    res = memory_check(str(model), tokens=4096, factor=10)
    assert res["small"]["tokens"] == 4096 and res["large"]["tokens"] == 40960
    # keeping the extra 36864 tokens' activations would add 36864 x 2048 x 4 bytes = 302 MB;
    # the streaming pass may differ by allocator noise only: 24 MB or 4 %
    assert res["growth_kb"] < max(24 * 1024, 0.04 * res["small"]["maxrss_kb"]), res
