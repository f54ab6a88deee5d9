"""Command line: ``pspikessm fit|validate|test|predict --config FILE`` and the tools.

Examples::

    pspikessm fit --config configs/quickstart.yaml
    pspikessm fit --config configs/lra/listops.yaml --data.data_dir data/lra_release
    pspikessm fit --config configs/quickstart.yaml --ckpt_path last      # resume
    pspikessm fit --config configs/lra/listops.yaml --config configs/trainer/ddp.yaml  # all GPUs
    pspikessm test --config configs/quickstart.yaml --ckpt_path last     # newest run's last.ckpt
    pspikessm make-listops --out data/listops-small --max-depth 3 --max-length 60
    pspikessm prepare --config configs/lra/text.yaml                    # data, before training
    pspikessm energy --config configs/quickstart.yaml --ckpt_path last [--split test]
    pspikessm report logs [--csv]                                      # a table of every run

A run stopped by SIGTERM or SIGUSR1 saves last.ckpt and exits with status 75.
"""

from __future__ import annotations

import importlib
import sys

from pspikessm.cli.train import (
    PSpikeSSMCLI,
    cli_main,
    quiet_start_up,
    readable_configuration_errors,
)
from pspikessm.cpu_memory import keep_freed_memory
from pspikessm.runtime.registration import preemption_exit

__all__ = ["TOOLS", "PSpikeSSMCLI", "cli_main", "main"]

#: Commands beside the Trainer subcommands: name → the module whose ``main(argv)`` runs it
#: (imported when the command is run). A new tool is a module with ``main`` and a line here.
TOOLS: dict[str, str] = {
    "make-listops": "pspikessm.data.listops_generator",
    "prepare": "pspikessm.cli.prepare",
    "energy": "pspikessm.cli.energy",
    "report": "pspikessm.cli.report",
}


@readable_configuration_errors
def main(argv: list[str] | None = None) -> None:
    """The ``pspikessm`` command: a tool of :data:`TOOLS`, or a Trainer subcommand."""
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()
    quiet_start_up()
    with preemption_exit():
        if argv and argv[0] in TOOLS:
            importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
            return
        if argv and argv[0] in ("-h", "--help"):
            print(__doc__)
            print("Tools: " + ", ".join(TOOLS) + " (each takes --help).\n")
        cli_main(argv)
