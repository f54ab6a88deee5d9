"""P-SpikeSSM: probabilistic spiking state space models in PyTorch Lightning."""

__version__ = "0.1.0"
