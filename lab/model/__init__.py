"""Loading a model (local, hub, GGUF) and the architecture adapters that find each family's neuron hook point."""
