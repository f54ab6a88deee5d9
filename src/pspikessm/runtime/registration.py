"""The one place the CLI turns run safety on: callbacks, the checkpoint writer, run folders.

:class:`pspikessm.cli.PSpikeSSMCLI` calls :func:`add_run_safety_arguments` when it builds its
parser, :func:`prepare_run` before it builds the classes, :func:`install_run_safety` on the
new trainer, :func:`before_run` and :func:`after_run` around the subcommand, and ``main``
runs inside :func:`preemption_exit`. Nothing else in the package knows these pieces.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from pspikessm.runtime.callbacks.last_checkpoint import LastEveryEpochCheckpoint
from pspikessm.runtime.callbacks.nonfinite import NonFiniteLossStop
from pspikessm.runtime.callbacks.preemption import (
    PREEMPTED_EXIT_CODE,
    PreemptionCheckpoint,
    install_stop_on_signal,
)
from pspikessm.runtime.callbacks.run_record import RunConfigRecord
from pspikessm.runtime.callbacks.training_state import TrainingStateCheckpoint
from pspikessm.runtime.checkpoint_io import use_atomic_checkpoints
from pspikessm.runtime.run_folder import (
    claim_run_folder,
    continue_run,
    find_last_checkpoint,
    fixed_checkpoint_folder,
    release_run_folders,
)

log = logging.getLogger(__name__)

#: LightningCLI's ``save_config_callback``: the run's config records.
SAVE_CONFIG_CALLBACK = RunConfigRecord


def add_run_safety_arguments(parser: LightningArgumentParser) -> None:
    """The always-on callbacks, each with its options under its own key."""
    # last.ckpt every epoch (Lightning 2.6 skips it when val/acc did not improve).
    parser.add_lightning_class_args(LastEveryEpochCheckpoint, "checkpoint")
    # last.ckpt on SIGTERM/SIGUSR1, a loud stop at a non-finite loss or weights, and the
    # spike stream and optimiser settings in every checkpoint.
    parser.add_lightning_class_args(PreemptionCheckpoint, "preemption")
    parser.add_lightning_class_args(NonFiniteLossStop, "nonfinite")
    parser.add_lightning_class_args(TrainingStateCheckpoint, "training_state")
    parser.set_defaults(
        {
            "checkpoint.monitor": "val/acc",
            "checkpoint.mode": "max",
            "checkpoint.save_last": True,
            "checkpoint.filename": "best-epoch{epoch:03d}-step{step}",
            "checkpoint.auto_insert_metric_name": False,
            # One last.ckpt per run folder, always the newest state (a resumed run would
            # otherwise write last-v1.ckpt and leave last.ckpt behind).
            "checkpoint.enable_version_counter": False,
        }
    )


def prepare_run(subcommand: str | None, config: Namespace) -> None:
    """Check ``config`` (``config[subcommand]``, parsed; the whole config without a
    subcommand) and settle its checkpoint and run folder."""
    check_precision(config.trainer.get("precision"))
    if subcommand is None:
        return
    if config.get("ckpt_path") == "last":
        _resolve_last(subcommand, config)
    if subcommand != "fit":
        # The checkpoint callback's saved state (best and last paths) is for fit only.
        warnings.filterwarnings("ignore", message=r"The dirpath has changed from")
    elif not config.get("ckpt_path"):
        _refuse_to_overwrite(config)
    if subcommand == "fit" and config.trainer.get("fast_dev_run"):
        # Lightning 2.6 still writes last.ckpt at train end under fast_dev_run, and
        # with its dummy logger into ./checkpoints of the working directory.
        config.checkpoint.save_last = False
    elif subcommand == "fit" and rank_zero_only.rank == 0:
        # One run per folder: other ranks of a multi-process job follow rank 0's folder.
        claim_run_folder(config)


#: Precisions that make the weights themselves half precision: the SSM kernels are computed
#: with complex numbers and FFTs, which have no 16-bit CPU form and lose the long-range
#: kernels' precision on GPUs. Mixed precision (16-bit activations) works.
HALF_WEIGHTS = {"16-true": "16-mixed", "bf16-true": "bf16-mixed"}


def check_precision(precision: object) -> None:
    """Refuse a precision the model cannot train in, naming the option and what to use."""
    if str(precision) in HALF_WEIGHTS:
        raise ValueError(
            f"trainer.precision={precision}: the SSM kernels need float32 weights (complex "
            f"FFTs have no 16-bit form on CPU). Use {HALF_WEIGHTS[str(precision)]} (16-bit "
            "activations, float32 weights) or 32-true."
        )


def _resolve_last(subcommand: str, config: Namespace) -> None:
    """``--ckpt_path last``: the newest run's last.ckpt; ``fit`` continues in its folder."""
    found = find_last_checkpoint(config)
    if found.path is not None:
        run = f"version_{found.version}" if isinstance(found.version, int) else found.version
        log.info(
            "--ckpt_path last: %s%s",
            found.path,
            f" (run {run}: the newest checkpoint)" if run else "",
        )
    if found.newer_without:
        log.warning(
            "--ckpt_path last: the newer run folder(s) %s hold no checkpoint (stopped before "
            "their first save); continuing %s instead, with this command's settings.",
            ", ".join(str(folder) for folder in found.newer_without),
            found.path,
        )
    if found.path is not None and subcommand == "fit":
        continue_run(config, found)
        # Expected when resuming: the folder holds the run's checkpoints.
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* is not empty")
    elif found.path is not None:
        config.ckpt_path = str(found.path)
    elif subcommand == "fit":
        log.info("--ckpt_path last: no %s yet, starting a new run", found.looked)
        config.ckpt_path = None
    else:
        raise FileNotFoundError(
            f"--ckpt_path last: no checkpoint at {found.looked}. Train first "
            "(pspikessm fit with the same --config), or give the checkpoint's path."
        )


def _refuse_to_overwrite(config: Namespace) -> None:
    """A new ``fit`` in a run folder that already holds a run's last.ckpt would overwrite it."""
    if config.trainer.get("fast_dev_run"):
        return
    folder = fixed_checkpoint_folder(config)
    if folder is not None and (folder / "last.ckpt").is_file():
        raise FileExistsError(
            f"{folder / 'last.ckpt'} exists: that run folder holds a run already. Continue it "
            "with --ckpt_path last, or start a new one under another "
            "trainer.logger.init_args.version (or checkpoint.dirpath)."
        )


def install_run_safety(trainer: Trainer) -> None:
    """What the trainer needs beyond its callbacks: the atomic checkpoint writer."""
    use_atomic_checkpoints(trainer)


def before_run(trainer: Trainer) -> None:
    """Just before the subcommand runs: what a failed start must not leave behind."""
    for callback in trainer.callbacks:
        if isinstance(callback, RunConfigRecord):
            callback.note_existing_files(trainer)


def after_run(trainer: Trainer) -> None:
    """Just after the subcommand ran: its run folder is free again."""
    release_run_folders()


@contextmanager
def preemption_exit() -> Iterator[None]:
    """Exit with :data:`PREEMPTED_EXIT_CODE` when the command stops for a preemption signal:
    in training (:class:`PreemptionCheckpoint`), before it (:class:`StopOnSignal`), and when
    the signal is repeated while it stops, the interpreter's exit included."""
    previous = signal.getsignal(signal.SIGTERM)
    handler = install_stop_on_signal()
    try:
        yield
    except SIGTERMException:  # also Lightning's own, which carries no exit status
        handler.stopping = True
        sys.exit(PREEMPTED_EXIT_CODE)
    finally:
        release_run_folders()
        if handler.stopping:
            # The state is saved; further SIGTERMs (schedulers repeat it) are ignored while
            # the interpreter exits. A Python handler would not do: the interpreter resets
            # those to the default action (status 143) early in its exit, an ignored signal
            # stays ignored.
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        else:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
