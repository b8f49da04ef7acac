"""Measuring a model: the lm-eval harness wrapper, generation probe, language fidelity, QA scoring and paired statistics."""
