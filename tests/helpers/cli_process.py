"""``pspikessm`` in a fresh interpreter, as a scheduler starts (and requeues) it.

Not a fork of the test process: a fork taken while another thread of it (a TensorBoard
writer of an earlier test) holds a lock can hang in the child, as the merged suite showed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_process(argv: list[str], fault: str | None = None, prelude: str = "") -> subprocess.Popen:
    """Start ``pspikessm <argv>`` (output discarded); ``fault`` (``SIGNAL:point:step``) is
    :class:`helpers.fault_injection.InjectFault`'s ``$PSPIKESSM_FAULT``; ``prelude``: Python
    code run in the new interpreter first (then the command, as ``python -m pspikessm``)."""
    paths = [ROOT / "src", ROOT / "tests", ROOT, os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    env.pop("PSPIKESSM_FAULT", None)
    if fault is not None:
        env["PSPIKESSM_FAULT"] = fault
    command = [sys.executable, "-m", "pspikessm", *argv]
    if prelude:
        run = "import runpy; runpy.run_module('pspikessm', run_name='__main__', alter_sys=True)"
        command = [sys.executable, "-c", f"{prelude}\n{run}", *argv]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_cli(
    argv: list[str], fault: str | None = None, timeout: float = 600, prelude: str = ""
) -> int:
    """The exit status of :func:`cli_process` (negative: killed by that signal)."""
    process = cli_process(argv, fault, prelude)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
