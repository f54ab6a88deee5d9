"""Command line: ``pspikessm fit|validate|test|predict --config FILE`` and the data tools.

Examples::

    pspikessm fit --config configs/quickstart.yaml
    pspikessm fit --config configs/lra/listops.yaml --data.data_dir data/lra_release
    pspikessm fit --config configs/quickstart.yaml --ckpt_path last      # resume
    pspikessm test --config configs/quickstart.yaml --ckpt_path logs/quickstart/version_0/checkpoints/last.ckpt
    pspikessm make-listops --out data/listops-small --max-depth 3 --max-length 60
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.listops_generator import main as make_listops_main
from pspikessm.module import SequenceClassifier

#: Commands that are not Trainer subcommands: name → ``main(argv)``.
TOOLS: dict[str, Callable[[list[str]], None]] = {"make-listops": make_listops_main}


class PSpikeSSMCLI(LightningCLI):
    """LightningCLI with the data-to-model links and the project's checkpoint defaults."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # What the data decides is linked into the model, never typed twice.
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        for attribute in ("num_classes", "vocab_size", "d_input", "dual_input"):
            parser.link_arguments(
                f"data.{attribute}",
                f"model.backbone.init_args.{attribute}",
                apply_on="instantiate",
            )
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/acc",
                "checkpoint.mode": "max",
                "checkpoint.save_last": True,
                "checkpoint.filename": "best-epoch{epoch:03d}-step{step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )

    def before_instantiate_classes(self) -> None:
        if self.subcommand == "fit":
            config = self.config["fit"]
            if config.get("ckpt_path") == "last":
                _reuse_latest_version(config)


def _reuse_latest_version(config) -> None:
    """Make ``fit --ckpt_path last`` continue the newest run folder of its TensorBoard logger.

    Without this, the logger opens a new ``version_N`` folder, where no ``last.ckpt`` exists.
    """
    logger = config.trainer.get("logger")
    if not logger or isinstance(logger, bool) or isinstance(logger, list):
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
        SequenceDataModule,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        TOOLS[argv[0]](argv[1:])
        return
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("Data tools: " + ", ".join(TOOLS) + " (each takes --help).\n")
    cli_main(argv)


if __name__ == "__main__":
    main()
