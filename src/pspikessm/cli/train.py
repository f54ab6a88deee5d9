"""The training CLI: ``pspikessm fit|validate|test|predict --config FILE``.

:class:`PSpikeSSMCLI` is Lightning's CLI with the data-to-model links, the checkpoint defaults
and the run-safety callbacks; :func:`cli_main` builds it (tests call it in-process). The
command-line entry point, with the tools beside the Trainer subcommands, is
:func:`pspikessm.cli.main`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from pspikessm.callbacks.predictions import PredictionWriter
from pspikessm.data.protocol import DATA_PROTOCOL, protocol_value
from pspikessm.module import SequenceClassifier
from pspikessm.runtime.checkpoint_checks import settle_weights_only
from pspikessm.runtime.registration import (
    SAVE_CONFIG_CALLBACK,
    add_run_safety_arguments,
    after_run,
    before_run,
    install_run_safety,
    prepare_run,
)

log = logging.getLogger(__name__)

#: What every task config shares, written once: the CLI's defaults. A config or the command line
#: overrides any of them, and ``--print_config`` shows them with the rest of the run.
TASK_DEFAULTS: dict[str, Any] = {
    "trainer.logger": {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        # A task config names its runs' folder: trainer.logger.init_args.name.
        "init_args": {"save_dir": "logs"},
    },
    "trainer.callbacks": [
        # A live bar on a terminal; one line per epoch when stdout is a file (a job log).
        {"class_path": "pspikessm.callbacks.TerminalProgressBar"},
        {"class_path": "pspikessm.callbacks.JobLog"},
        {
            "class_path": "lightning.pytorch.callbacks.LearningRateMonitor",
            "init_args": {"logging_interval": "step"},
        },
        {"class_path": "pspikessm.callbacks.FiringRateMonitor"},
        {"class_path": "pspikessm.callbacks.EnergyEstimate"},
        {"class_path": "pspikessm.callbacks.RunSummary"},
    ],
    "model.backbone": {"class_path": "pspikessm.models.PSpikeSSM"},
    # No partial last training batch, as the authors' loaders; the quickstart and the example
    # set both back. Kept when a config names its data module: see SharedLoaderSettings.
    "data": {
        "class_path": "pspikessm.cli.train.SharedLoaderSettings",
        "init_args": {"num_workers": 4, "drop_last": True},
    },
    "trainer.log_every_n_steps": 50,  # Lightning's own value, shown by --print_config
}


class SharedLoaderSettings(LightningDataModule):
    """The default ``data``: not a task, only the loader settings every task shares.

    A config's ``data.class_path`` replaces it, and jsonargparse carries these ``init_args``
    over to the named class. A default of a task's data module itself (a base class's) would
    carry all of its own defaults over and silently replace the task's (IMDB downloads by
    default, its base class does not): this class has these two parameters and no others.
    """

    def __init__(self, num_workers: int, drop_last: bool) -> None:
        raise ValueError(
            "data: no data module given; name one with data.class_path (every task config does, "
            f"e.g. configs/quickstart.yaml); num_workers={num_workers}, drop_last={drop_last} "
            "would apply to it"
        )


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
        add_run_safety_arguments(parser)
        parser.set_defaults(TASK_DEFAULTS)
        # `predict` writes its predictions into the run folder (inert in other subcommands).
        parser.add_lightning_class_args(PredictionWriter, "predictions")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # As LightningCLI's, without its warning about `args` and sys.argv both being set:
        # main() passes the command line on purpose.
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(args)
        # Next, LightningCLI would replace the model options with the hyperparameters saved
        # in a --ckpt_path file, silently overriding the command line (d_model 32 ran with
        # 64). The path is held back until the classes are built: the command line's model
        # is used, and a checkpoint of another architecture is an error when it loads.
        subcommand = self.config.get("subcommand")
        if subcommand:
            # `weights_only: false` unpickles the checkpoint: this command line's alone counts.
            argv = sys.argv[1:] if args is None else args
            settle_weights_only(self.config[subcommand], argv if isinstance(argv, list) else None)
            self._ckpt_path = self.config[subcommand].get("ckpt_path")
            self.config[subcommand].ckpt_path = None

    def before_instantiate_classes(self) -> None:
        with reading_configuration():
            if self.subcommand is None:
                prepare_run(None, self.config)
                return
            config = self.config[self.subcommand]
            config.ckpt_path = self._ckpt_path
            prepare_run(self.subcommand, config)

    def instantiate_classes(self) -> None:
        with reading_configuration():
            super().instantiate_classes()
        _forget_skipped_links(self.model)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        install_run_safety(trainer)
        return trainer

    def _before_run(self) -> None:
        before_run(self.trainer)

    def _after_run(self) -> None:
        after_run(self.trainer)

    # LightningCLI calls before_<subcommand>() just before running it, after_<...> after.
    before_fit = before_validate = before_test = before_predict = _before_run
    after_fit = after_validate = after_test = after_predict = _after_run


#: Environment variable: ``PSPIKESSM_DEBUG=1`` shows the traceback of a configuration error,
#: which is otherwise one message (:func:`readable_configuration_errors`).
DEBUG_VARIABLE = "PSPIKESSM_DEBUG"
#: Attribute marking an exception raised while the configuration became objects.
_CONFIGURATION_ERROR = "_pspikessm_configuration_error"
#: How jsonargparse's wrappers around a class's own error begin: a link's function
#: ("Call to compute_fn of link ...") and a ``Union[..., None]`` option (the data module and
#: the backbone): "Does not validate against any of the Union subtypes".
_WRAPPERS = ("Call to compute_fn", "Does not validate against any of the Union subtypes")


@contextmanager
def reading_configuration() -> Iterator[None]:
    """Where the configuration is checked and turned into objects: an error raised here is
    the class's own (jsonargparse's wrappers removed: the data module's error says what to
    fix) and is marked as a configuration error, so the command prints it as one message."""
    try:
        yield
    except Exception as error:
        cause = error
        while cause.__cause__ is not None and str(cause).startswith(_WRAPPERS):
            cause = cause.__cause__
        setattr(cause, _CONFIGURATION_ERROR, True)
        if cause is error:
            raise
        raise cause from None


def readable_configuration_errors(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` (``main(argv)``), printing an error in the configuration as one message
    (``pspikessm fit: error: data.max_length=0: expected an integer >= 2``) and exiting with
    status 2, as for an unknown option; with ``PSPIKESSM_DEBUG=1`` the error is raised, with
    its traceback. Errors once the run has started keep their traceback."""

    @functools.wraps(command)
    def run(argv: list[str] | None = None) -> None:
        try:
            command(argv)
        except Exception as error:
            debug = os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
            if debug or not getattr(error, _CONFIGURATION_ERROR, False):
                raise
            words = sys.argv[1:] if argv is None else argv
            name = " ".join(["pspikessm", *words[:1]])
            print(
                f"{name}: error: {error}\n(the traceback: set {DEBUG_VARIABLE}=1)",
                file=sys.stderr,
            )
            raise SystemExit(2) from None

    return run


def _forget_skipped_links(model: SequenceClassifier) -> None:
    """Drop from ``model``'s hyperparameters the linked values its backbone does not take.

    jsonargparse skips a link whose target parameter the chosen backbone lacks, but Lightning
    still records the linked value among the hyperparameters, and a checkpoint would then fail
    to reload (``load_from_checkpoint``): "Option 'vocab_size' is not accepted".
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


def cli_main(
    args: list[str] | None = None,
    run: bool = True,
    cli_class: type[PSpikeSSMCLI] = PSpikeSSMCLI,
    **kwargs: Any,
) -> PSpikeSSMCLI:
    """Run the CLI on ``args`` (default: ``sys.argv[1:]``); tests call this directly.

    ``kwargs`` go to ``cli_class`` (a :class:`PSpikeSSMCLI`), for example
    ``save_config_callback=None``.
    """
    options = {
        # Any data module following pspikessm.data.protocol.
        "subclass_mode_data": True,
        # One optimiser mechanism: SequenceClassifier.configure_optimizers with the parameter
        # groups of tag_optim; no --optimizer/--lr_scheduler that would bypass it.
        "auto_configure_optimizers": False,
        "save_config_callback": SAVE_CONFIG_CALLBACK,
        **kwargs,
    }
    return cli_class(SequenceClassifier, LightningDataModule, args=args, run=run, **options)


def _no_lightning_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")


def quiet_start_up() -> None:
    """Keep the console for the run: the package's INFO lines; no product tips, no dependency
    deprecation warnings that a user cannot act on."""
    package_log = logging.getLogger("pspikessm")
    if not package_log.handlers:
        package_log.addHandler(logging.StreamHandler())
        package_log.setLevel(logging.INFO)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_no_lightning_tip)
    # Lightning 2.6 on torch >= 2.10 (its own use of a deprecated torch class).
    warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated", category=FutureWarning)
