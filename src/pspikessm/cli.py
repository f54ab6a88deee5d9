"""Command line: ``pspikessm fit|validate|test|predict --config FILE`` and the data tools.

Examples::

    pspikessm fit --config configs/quickstart.yaml
    pspikessm fit --config configs/lra/listops.yaml --data.data_dir data/lra_release
    pspikessm fit --config configs/quickstart.yaml --ckpt_path last      # resume
    pspikessm fit --config configs/lra/listops.yaml --config configs/trainer/ddp.yaml  # all GPUs
    pspikessm test --config configs/quickstart.yaml --ckpt_path logs/quickstart/version_0/checkpoints/last.ckpt
    pspikessm make-listops --out data/listops-small --max-depth 3 --max-length 60
    pspikessm energy --config configs/quickstart.yaml --ckpt_path logs/quickstart/version_0/checkpoints/last.ckpt [--split test]
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from pspikessm.callbacks import LastEveryEpochCheckpoint, NonFiniteLossStop, PreemptionCheckpoint
from pspikessm.cpu_memory import keep_freed_memory
from pspikessm.data.listops_generator import main as make_listops_main
from pspikessm.data.prepare import main as prepare_main
from pspikessm.data.protocol import DATA_PROTOCOL, protocol_value
from pspikessm.module import SequenceClassifier


def _energy_main(argv: list[str]) -> None:
    from pspikessm.callbacks.energy_command import main as energy_main  # needs this module

    energy_main(argv)


#: Commands that are not Trainer subcommands: name → ``main(argv)``.
TOOLS: dict[str, Callable[[list[str]], None]] = {
    "make-listops": make_listops_main,
    "prepare": lambda argv: prepare_main(argv, PSpikeSSMCLI),
    "energy": _energy_main,
}


class PSpikeSSMCLI(LightningCLI):
    """LightningCLI with the data-to-model links and the project's checkpoint defaults."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # What the data decides is linked into the model, never typed twice. The source is
        # the whole data module, read through the protocol, so a missing or wrong attribute
        # fails loudly instead of leaving the model at a silent default; a backbone without
        # the target parameter is skipped by jsonargparse.
        for name, attribute in DATA_PROTOCOL.items():
            for target in attribute.targets:
                parser.link_arguments(
                    "data", target, partial(protocol_value, name=name), apply_on="instantiate"
                )
        # last.ckpt every epoch (Lightning 2.6 skips it when val/acc did not improve).
        parser.add_lightning_class_args(LastEveryEpochCheckpoint, "checkpoint")
        # Always on: last.ckpt on SIGTERM/SIGUSR1, and a loud stop at a non-finite loss.
        parser.add_lightning_class_args(PreemptionCheckpoint, "preemption")
        parser.add_lightning_class_args(NonFiniteLossStop, "nonfinite")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        _forget_skipped_links(self.model)

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            config = self.config["fit"]
            if config.get("ckpt_path") == "last":
                _reuse_latest_version(config)
            if config.trainer.get("fast_dev_run"):
                # Lightning 2.6 still writes last.ckpt at train end under fast_dev_run, and
                # with its dummy logger into ./checkpoints of the working directory.
                config.checkpoint.save_last = False


def _forget_skipped_links(model: SequenceClassifier) -> None:
    """Drop from ``model``'s hyperparameters the linked values its backbone does not take.

    jsonargparse skips a link whose target parameter the chosen backbone lacks, but Lightning
    still records the linked value among the hyperparameters, and a checkpoint would then fail
    to reload (``--ckpt_path``, ``load_from_checkpoint``): "Option 'vocab_size' is not accepted".
    """
    saved = model.hparams.get("backbone")
    if not isinstance(saved, dict) or not isinstance(saved.get("init_args"), dict):
        return
    parameters = inspect.signature(type(model.backbone)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    prefix = "model.backbone.init_args."
    linked = {
        target.removeprefix(prefix)
        for attribute in DATA_PROTOCOL.values()
        for target in attribute.targets
        if target.startswith(prefix)
    }
    skipped = (linked & saved["init_args"].keys()) - parameters.keys()
    if skipped:
        init_args = {k: v for k, v in saved["init_args"].items() if k not in skipped}
        model.save_hyperparameters({**model.hparams, "backbone": {**saved, "init_args": init_args}})


def _reuse_latest_version(config: Namespace) -> None:
    """Make ``fit --ckpt_path last`` continue the newest run folder of its TensorBoard logger.

    Without this, the logger opens a new ``version_N`` folder, where no ``last.ckpt`` exists.
    """
    logger = config.trainer.get("logger")
    if not logger or isinstance(logger, (bool, list)):
        return
    init_args = logger.get("init_args", {})
    if init_args.get("version") is not None:
        return
    run_root = Path(init_args.get("save_dir", "logs")) / (init_args.get("name") or "")
    versions = [
        (int(match.group(1)), path)
        for path in run_root.glob("version_*")
        if (match := re.fullmatch(r"version_(\d+)", path.name))
        and (path / "checkpoints" / "last.ckpt").exists()
    ]
    if versions:
        init_args["version"] = max(versions)[0]


def cli_main(args: list[str] | None = None, run: bool = True) -> PSpikeSSMCLI:
    """Run the CLI on ``args`` (default: ``sys.argv[1:]``); tests call this directly."""
    return PSpikeSSMCLI(
        SequenceClassifier,
        LightningDataModule,  # any data module following pspikessm.data.protocol
        subclass_mode_data=True,
        # One optimiser mechanism: SequenceClassifier.configure_optimizers with the
        # parameter groups of tag_optim; no --optimizer/--lr_scheduler that would bypass it.
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()
    # The package logs through `logging`; a command line shows its INFO lines.
    package_log = logging.getLogger("pspikessm")
    if not package_log.handlers:
        package_log.addHandler(logging.StreamHandler())
        package_log.setLevel(logging.INFO)
    if argv and argv[0] in TOOLS:
        TOOLS[argv[0]](argv[1:])
        return
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Data tools: " + ", ".join(TOOLS) + " (each takes --help).\n")
    cli_main(argv)


if __name__ == "__main__":
    main()
