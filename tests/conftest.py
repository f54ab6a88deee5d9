"""Shared fixtures (helpers that tests import live in ``tests/helpers/``)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from helpers.cli_args import TINY_LISTOPS
from pspikessm.data.listops_generator import write_listops

# One thread: the test models are tiny, and two OpenMP threads on a busy 2-core machine wait
# on each other (a step up to 10x slower than with one thread).
torch.set_num_threads(1)


@pytest.fixture
def listops_dir(tmp_path: Path) -> Path:
    """A tiny generated ListOps set in the LRA layout (``listops-1000/basic_*.tsv``)."""
    root = tmp_path / "lra_release"
    write_listops(root / "listops-1000", TINY_LISTOPS)
    return root


@pytest.fixture(autouse=True)
def _keep_sigterm_handler():
    """Each test leaves SIGTERM as it found it: a preempted ``main`` run in this process ignores
    SIGTERM from then on, as the command does while it exits."""
    handler = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, handler)
