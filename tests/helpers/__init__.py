"""Shared pieces of the test suite: data writers, spiking doubles, event-file readers, CLI
arguments, fault injection. Importable as ``helpers.*`` because pyproject's pytest
``pythonpath`` puts ``tests/`` on the path; test modules import only from here, never from each
other or from conftest.py (which keeps only fixtures)."""
