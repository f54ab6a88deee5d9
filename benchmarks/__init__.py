"""Benchmarks, run as modules from the repository root (the package must be this checkout's:
``pip install -e .`` there, or ``PYTHONPATH=src``).

- ``benchmarks.speed``: step time and memory of the block, the neurons and whole training
  steps, ours and the authors' (``python -m benchmarks.speed.train``).
- ``benchmarks.parity``: does our model compute and learn what the authors' does, and which
  training switches change what it learns (``python -m benchmarks.parity.run --authors PATH``,
  ``python -m benchmarks.parity.learning``).

Both share ``benchmarks.harness`` (timing, machine description, result files) and
``benchmarks.authors`` (loading the authors' checkout). Results: ``benchmarks/RESULTS.md``.
"""
