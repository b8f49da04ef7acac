"""Benchmarks: what statistics collection and interventions cost against a plain forward pass
(``overhead.py``, ``neuron-pilot bench``), and the memory of identification (``memory.py``,
``python -m lab.bench memory|identify``)."""
