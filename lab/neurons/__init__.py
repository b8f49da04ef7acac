"""The science on neurons: activation statistics, identification methods, reproducibility checks, interventions and neuron-only fine-tuning."""
