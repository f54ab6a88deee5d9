"""SIGTERM at any moment of a ``fit`` exits with status 75 (issue 31, items 3 and 4): while
torch and Lightning are still being imported, and when the signal is repeated while the
interpreter exits after ``last.ckpt`` is saved."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.cli_args import toy_quickstart_args
from helpers.cli_process import run_cli
from pspikessm.runtime.callbacks import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]

#: Sends SIGTERM to its own process when the ``lightning`` package starts to be imported.
SIGNAL_AT_LIGHTNING_IMPORT = """
import os, signal, sys
class SignalAtImport:
    def find_spec(self, name, path=None, target=None):
        if name == "lightning":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGTERM)
        return None
sys.meta_path.insert(0, SignalAtImport())
"""


def test_the_entry_point_installs_its_handler_before_torch_and_lightning():
    # The console script and `python -m pspikessm` both run pspikessm.__main__:main.
    scripts = (ROOT / "pyproject.toml").read_text().split("[project.scripts]")[1]
    assert re.match(r'\s*pspikessm = "pspikessm.__main__:main"', scripts)
    probe = (
        "import signal, sys\n"
        "import pspikessm.__main__ as entry\n"
        "print(sorted(name for name in ('torch', 'lightning') if name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_sigterm_while_lightning_is_imported_exits_with_75(listops_dir, tmp_path):
    args = toy_quickstart_args(listops_dir, tmp_path)
    assert run_cli(args, prelude=SIGNAL_AT_LIGHTNING_IMPORT) == PREEMPTED_EXIT_CODE
    assert not (tmp_path / "logs").exists()  # nothing written before the first step


@pytest.mark.slow
def test_sigterms_repeated_while_the_interpreter_exits_keep_status_75(listops_dir, tmp_path):
    args = [
        *toy_quickstart_args(listops_dir, tmp_path),
        "--trainer.callbacks+=helpers.fault_injection.InjectFault",
    ]
    assert run_cli(args, "SIGTERM:shutdown:2") == PREEMPTED_EXIT_CODE
    run = tmp_path / "logs" / "quickstart" / "version_0"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    # Repeated every 20 ms from the save until the process was gone: through its exit.
    assert len((run / "shutdown-signals").read_text().splitlines()) >= 2
