"""Pins on lm-eval behaviour that has no public API (so a new lm-eval that moves it fails here, loudly,
instead of silently changing what lab.eval.harness does).

simple_evaluate has no flag to skip its environment report (pip, nvidia-smi and torch's collect_env in
subprocesses, seconds per call); lab.eval.harness._without_env_report swaps `add_env_info` in
lm_eval.evaluator's namespace for the duration of a call. That only works while simple_evaluate looks
the function up there."""

from __future__ import annotations

import inspect

import lm_eval.evaluator as ev

from lab.eval.harness import _without_env_report


def test_simple_evaluate_reports_the_environment_through_the_name_the_harness_swaps() -> None:
    assert callable(getattr(ev, "add_env_info", None)), "lm_eval.evaluator.add_env_info moved: update the harness"
    source = inspect.getsource(ev.simple_evaluate)
    assert "add_env_info(" in source, "simple_evaluate no longer calls add_env_info: update the harness"
    original = ev.add_env_info
    with _without_env_report():
        results: dict[str, object] = {}
        ev.add_env_info(results)  # what simple_evaluate calls at its end
        assert results == {"pretty_env_info": "recorded in the study's provenance"}
    assert ev.add_env_info is original  # restored
