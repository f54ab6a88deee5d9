"""Speed and memory: ``train`` (whole training steps on ListOps and Path-X), ``block`` (one
block, forward and backward), ``lif`` (the LIF neuron's paths), ``official`` (the authors'
model on the same batch) and ``authors_parameters`` (parameter counts against theirs)."""
