"""``pspikessm energy``: evaluate a checkpoint on a data split and print the energy table.

Examples::

    pspikessm energy --config configs/quickstart.yaml --ckpt_path logs/quickstart/version_0/checkpoints/last.ckpt
    pspikessm energy --config logs/quickstart/version_0/config.yaml --ckpt_path best.ckpt --split val

Every other option is a Trainer-CLI option (``--data.data_dir ...``, ``--trainer.devices 2``).
A config saved by ``fit`` (``<run>/config.yaml``) works as is. The run writes no logs and
shows no progress bar: logger, progress bar and FiringRateMonitor are left out; an
:class:`EnergyEstimate` is added unless the config already has one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor

SPLITS = ("val", "test")


def estimate_energy(
    cli_args: list[str], ckpt_path: str | Path, split: str = "test"
) -> list[dict[str, float]]:
    """Evaluate ``ckpt_path`` on ``split`` with the model and data of ``cli_args`` (e.g.
    ``["--config", "run/config.yaml"]``); returns the energy table (one dict per row)."""
    from pspikessm.cli import PSpikeSSMCLI  # the CLI registers this command: import late
    from pspikessm.data.base import SequenceDataModule
    from pspikessm.module import SequenceClassifier

    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: expected one of {SPLITS}")
    if not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"--ckpt_path {ckpt_path}: no such checkpoint file")

    class EnergyCLI(PSpikeSSMCLI):
        energy: EnergyEstimate

        def _instantiate_trainer(self, config: dict, callbacks: list) -> L.Trainer:
            # No logs, no progress bar (also inside notebooks): only the energy counts.
            kept = [
                c
                for c in [*(config.get("callbacks") or []), *callbacks]
                if not isinstance(c, FiringRateMonitor | ProgressBar)
            ]
            self.energy = next((c for c in kept if isinstance(c, EnergyEstimate)), None)
            if self.energy is None:
                self.energy = EnergyEstimate()
                kept.append(self.energy)
            config = {**config, "callbacks": kept, "logger": False, "enable_progress_bar": False}
            return super()._instantiate_trainer(config, [])

    cli = EnergyCLI(
        SequenceClassifier,
        SequenceDataModule,
        subclass_mode_data=True,
        save_config_callback=None,
        args=[
            "test" if split == "test" else "validate",
            *cli_args,
            f"--ckpt_path={ckpt_path}",
            "--verbose=false",
        ],
    )
    return cli.energy.table


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="pspikessm energy",
        description="Evaluate a checkpoint and print ACs, MACs and energy per layer "
        "(other options, such as --config, go to the Trainer CLI).",
    )
    parser.add_argument("--ckpt_path", required=True, help="checkpoint to evaluate")
    parser.add_argument("--split", default="test", choices=SPLITS, help="data split")
    args, cli_args = parser.parse_known_args(argv)
    estimate_energy(cli_args, args.ckpt_path, args.split)
