"""``pspikessm energy``: evaluate a checkpoint on a data split and print the energy table.

Examples::

    pspikessm energy --config configs/quickstart.yaml --ckpt_path last
    pspikessm energy --config logs/quickstart/version_0/config.yaml --ckpt_path best.ckpt --split val

Every other option is a Trainer-CLI option (``--data.data_dir ...``, ``--trainer.devices 2``),
and any data module that ``fit`` accepts works. A config saved by ``fit``
(``<run>/config.yaml``) works as is; ``--ckpt_path last`` is the newest run's ``last.ckpt``.
The run writes no logs and shows no progress bar: logger, progress bar and FiringRateMonitor
are left out; an :class:`EnergyEstimate` is added unless the config already has one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ProgressBar

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor
from pspikessm.cli.train import PSpikeSSMCLI, cli_main

SPLITS = ("val", "test")


class EnergyCLI(PSpikeSSMCLI):
    """The training CLI with a trainer that only counts energy: no logger, no progress bar,
    no FiringRateMonitor, and an :class:`EnergyEstimate` in ``.energy``."""

    energy: EnergyEstimate

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        configured = self.config_init[self.subcommand]["trainer"].get("callbacks") or []
        kept = [c for c in configured if not isinstance(c, FiringRateMonitor | ProgressBar)]
        energy = next((c for c in kept if isinstance(c, EnergyEstimate)), None)
        self.energy = energy if energy is not None else EnergyEstimate()
        if energy is None:
            kept.append(self.energy)
        return super().instantiate_trainer(
            **kwargs, callbacks=kept, logger=False, enable_progress_bar=False
        )


def estimate_energy(
    cli_args: list[str], ckpt_path: str | Path, split: str
) -> list[dict[str, float]]:
    """Evaluate ``ckpt_path`` (a file, or ``last``) on ``split`` with the model and data of
    ``cli_args`` (e.g. ``["--config", "run/config.yaml"]``); returns the energy table (one
    dict per row)."""
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: expected one of {SPLITS}")
    if str(ckpt_path) != "last" and not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"--ckpt_path {ckpt_path}: no such checkpoint file")
    command = "test" if split == "test" else "validate"
    cli = cli_main(
        [command, *cli_args, f"--ckpt_path={ckpt_path}", "--verbose=false"],
        cli_class=EnergyCLI,
        save_config_callback=None,
    )
    return cli.energy.table


def main(argv: list[str]) -> None:
    """``pspikessm energy [--config FILE ...] --ckpt_path PATH|last [--split test|val]``."""
    parser = argparse.ArgumentParser(
        prog="pspikessm energy",
        description="Evaluate a checkpoint and print ACs, MACs and energy per layer "
        "(other options, such as --config, go to the Trainer CLI).",
    )
    parser.add_argument(
        "--ckpt_path", required=True, help="checkpoint to evaluate, or `last` (newest run)"
    )
    parser.add_argument("--split", default="test", choices=SPLITS, help="data split")
    args, cli_args = parser.parse_known_args(argv)
    estimate_energy(cli_args, args.ckpt_path, args.split)
