"""neuron-pilot engine: everything that computes, stores and reports. No UI code lives here."""

__version__ = "0.1.0"
