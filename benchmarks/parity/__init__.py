"""Parity with the authors' code and what the model learns: ``run`` (both models trained on
the same ListOps data), ``pins`` (the statistics tests/test_parity_pins.py pins),
``diagnostics`` (per-layer probes side by side, with ``ablations`` of their code), and
``learning`` (the training switches against the non-spiking twin). ``sides``, ``probes`` and
``transfer`` are their shared pieces."""
