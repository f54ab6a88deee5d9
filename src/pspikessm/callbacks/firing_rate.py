"""FiringRateMonitor: how sparsely every spiking layer fires, in TensorBoard."""

from __future__ import annotations

from collections import defaultdict

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from torch import nn

from pspikessm.callbacks.drive_statistics import DriveStatistics, drive_in_window, firing_window
from pspikessm.callbacks.example_pictures import ExamplePictures
from pspikessm.callbacks.sparsity_layout import STAGES_OF, sparsity_layout
from pspikessm.callbacks.spike_sources import ForwardHooks, SpikeCounts, spike_populations
from pspikessm.callbacks.tensorboard import tensorboard_writer


class FiringRateMonitor(L.Callback):
    """Firing rates, silent neurons, drive statistics, rasters and active-neuron ratios of
    every spike source.

    Forward hooks on the spike sources (:func:`spike_sources`: every ``SpikeSampler`` and any
    module with ``emits_spikes = True``) are registered in ``setup`` (start of fit, validate or
    test) and removed in ``teardown``; they count spikes over the valid (unpadded) steps into
    :class:`SpikeCounts` metrics whose states are summed across processes, so every scalar is
    exact under DDP. Nothing is counted during the sanity check or prediction.

    Written, for each source ``S`` (``layer{i}/input``, ``layer{i}/output``, ...) and stage
    ``T`` in ``train``, ``val``, ``test``:

    - ``sparsity/T/S/rate``: spikes / (neurons × valid steps); ``sparsity/T/S/silent``: the
      fraction of neurons that never fired; ``sparsity/T/rate``: all sources together.
      Signed spikes (``SpikeSampler(signed=True)``) count as two populations, ON and OFF
      (:func:`~pspikessm.callbacks.spike_sources.spike_populations`).
    - ``sparsity/T/S/drive_outside``: the fraction of drive values outside the source's
      firing window, where no gradient passes (sources with a ``firing_window``);
      ``sparsity/T/S/drive_mean``: the mean drive (:mod:`~pspikessm.callbacks.drive_statistics`).
      A neuron forced dead shows as silent and as outside.
    - ``sparsity/train/S/grad_rms``: with ``gradients=True``, the root mean square of the
      loss's gradient at the source's drive (a backward hook on the drive; off by default).

      All scalars are logged with ``pl_module.log`` (every logger; monitorable). ``train``:
      every ``log_every_n_steps`` steps, over the steps since the previous log;
      ``val``/``test``: once per epoch over the whole split.
    - ``sparsity/T/S/neuron_rates``: histogram of the per-neuron firing rates (TensorBoard,
      rank zero, at the same times as the scalars).
    - A "Sparsity" category in TensorBoard's custom-scalars dashboard
      (:mod:`~pspikessm.callbacks.sparsity_layout`): per stage, charts of every source's
      rate, silent fraction, drives outside the window and mean drive. Written at setup,
      rank zero.
    - Pictures of one validation example, once per validation epoch, rank zero
      (:class:`ExamplePictures`): the longest sequence of the first validation batch, or
      ``example_index`` of that batch; the same example every epoch.
      ``sparsity/val/raster/S`` (neurons × time steps, over the example's valid steps),
      ``sparsity/val/raster/all_layers`` (every source in one figure, one row each),
      ``sparsity/val/active_ratio/layer{i}`` (fraction of the layer's neurons active per
      step, one line per source of the layer) and the text ``sparsity/val/example`` (which
      example, how many steps).

    Samplers in ``eval_mode="expected"`` return firing probabilities instead of spikes; the
    monitor then reports expectations: ``rate`` is the expected firing rate, ``silent`` the
    fraction of neurons whose probability is zero at every step (that can never fire), and
    the rasters show probabilities as grey levels, with a colour bar.

    A model without spike sources gets a one-line warning and the monitor stays quiet. A
    trainer without a logger is an error at setup; histograms and images need a
    :class:`~lightning.pytorch.loggers.TensorBoardLogger` among the loggers.

    Args:
        histograms: write the per-neuron firing-rate histograms.
        images: write the raster and active-ratio images.
        gradients: record ``grad_rms`` at every source's drive in training.
        example_index: position in the first validation batch of the example the pictures
            show; None: its longest sequence.
    """

    def __init__(
        self,
        histograms: bool = True,
        images: bool = True,
        example_index: int | None = None,
        gradients: bool = False,
    ) -> None:
        self.histograms = histograms
        self.images = images
        self.gradients = gradients
        self.example = ExamplePictures(example_index)
        self._hooks = ForwardHooks()
        self._sources: list[tuple[str, nn.Module]] = []
        self._counts: dict[str, dict[str, SpikeCounts]] = defaultdict(dict)
        self._drives: dict[str, dict[str, DriveStatistics]] = defaultdict(dict)
        self._attached_trainer: L.Trainer | None = None
        self._step_before_batch = 0
        self._capture_example = False
        self._warned_no_tensorboard = False
        self._layout_written: tuple[object, set[str]] = (None, set())  # (writer, stages)

    # --- hooks on the model ---------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not trainer.loggers:
            raise ValueError(
                "FiringRateMonitor needs a logger (trainer.logger: e.g. "
                "lightning.pytorch.loggers.TensorBoardLogger); the trainer has none"
            )
        self._hooks.remove()
        self._attached_trainer = trainer
        self._sources = self._hooks.on_spikes(pl_module, self._observe, drives=True)
        if not self._sources:
            rank_zero_warn(
                f"FiringRateMonitor: {type(pl_module).__name__} has no spiking layers "
                "(no SpikeSampler or module with emits_spikes=True); nothing will be logged"
            )
            return
        self._write_layout(trainer, STAGES_OF.get(stage, ()))

    @rank_zero_only
    def _write_layout(self, trainer: L.Trainer, stages: tuple[str, ...]) -> None:
        """The custom-scalars layout of every stage this run folder has been set up for (a
        later ``test`` after ``fit`` rewrites it with the three stages; TensorBoard reads the
        latest)."""
        writer = self._tensorboard(trainer)
        if writer is None or not stages:
            return
        previous_writer, previous = self._layout_written
        written = (previous if previous_writer is writer else set()) | set(stages)
        writer.add_custom_scalars(sparsity_layout(written))
        self._layout_written = (writer, written)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._hooks.remove()
        self._counts.clear()
        self._drives.clear()
        self.example.clear()
        self._attached_trainer = None

    def _stage(self) -> str | None:
        trainer = self._attached_trainer
        if trainer is None or trainer.sanity_checking:
            return None
        if trainer.training:
            return "train"
        if trainer.validating:
            return "val"
        if trainer.testing:
            return "test"
        return None  # prediction

    def _observe(
        self,
        name: str,
        spikes: torch.Tensor,
        mask: torch.Tensor | None,
        drive: torch.Tensor,
        neuron: nn.Module,
    ) -> None:
        """One spike tensor (B, H, L) of source ``name``, its mask (B, 1, L) or None, the
        drive (B, H, L) it was drawn from and the ``neuron`` that drew it."""
        stage = self._stage()
        if stage is None:
            return
        populations = spike_populations(spikes, bool(getattr(neuron, "signed", False)))
        counts = self._counts[stage].get(name)
        if counts is None:
            counts = SpikeCounts(populations.shape[1]).to(spikes.device)
            self._counts[stage][name] = counts
        counts.update(populations, mask)
        drives = self._drives[stage].get(name)
        if drives is None:
            drives = DriveStatistics(firing_window(neuron)).to(spikes.device)
            self._drives[stage][name] = drives
        with torch.no_grad():
            drives.update(drive_in_window(neuron, drive), mask)
        if self.gradients and stage == "train" and drive.requires_grad:
            drive.register_hook(lambda grad: drives.update_gradient(grad, mask))
        if stage == "val" and self._capture_example:
            self.example.capture(name, spikes, mask)

    # --- when to log ------------------------------------------------------------------------

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._step_before_batch = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._trainer_logs_this_step(trainer):
            self._log_stage(trainer, pl_module, "train", on_step=True)

    def _trainer_logs_this_step(self, trainer: L.Trainer) -> bool:
        """Whether the trainer writes this batch's step metrics: Lightning's own rule, which it
        applies right after ``on_train_batch_end`` (every ``log_every_n_steps`` optimiser steps,
        counting this batch's, and when the run is stopping). Counts since the previous log
        would otherwise be reset without being written."""
        every = trainer.log_every_n_steps
        if every == 0:
            return False
        return (self._step_before_batch + 1) % every == 0 or trainer.should_stop

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._reset("train")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._reset("val")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._capture_example = (
            self.images and batch_idx == 0 and dataloader_idx == 0 and trainer.is_global_zero
        )

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        self._capture_example = False

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        self._log_stage(trainer, pl_module, "val", on_step=False)
        self._log_example(trainer)

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._reset("test")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._log_stage(trainer, pl_module, "test", on_step=False)

    def _reset(self, stage: str) -> None:
        for metric in [*self._counts[stage].values(), *self._drives[stage].values()]:
            metric.reset()

    # --- what to log ------------------------------------------------------------------------

    def _log_stage(self, trainer, pl_module, stage: str, on_step: bool) -> None:
        counts = self._counts[stage]
        if not counts:
            return
        total_spikes, total_steps = 0.0, 0.0
        for name, metric in counts.items():
            result = metric.compute()  # all-reduced sums: identical on every process
            total_spikes += result["spikes"]
            total_steps += result["neuron_steps"]
            for key in ("rate", "silent"):
                pl_module.log(
                    f"sparsity/{stage}/{name}/{key}",
                    result[key].float(),
                    on_step=on_step,
                    on_epoch=not on_step,
                    batch_size=1,
                )
            if self.histograms:
                self._histogram(trainer, f"sparsity/{stage}/{name}/neuron_rates", result)
            if on_step:
                metric.reset()  # train scalars cover the steps since the previous log
            self._log_drives(pl_module, stage, name, on_step)
        rate = total_spikes / max(float(total_steps), 1.0)
        pl_module.log(
            f"sparsity/{stage}/rate",
            torch.as_tensor(rate).float(),
            on_step=on_step,
            on_epoch=not on_step,
            batch_size=1,
        )

    def _log_drives(self, pl_module, stage: str, name: str, on_step: bool) -> None:
        """``drive_mean``, ``drive_outside`` (with a window) and ``grad_rms`` (when recorded)."""
        drives = self._drives[stage].get(name)
        if drives is None:
            return
        for key, value in drives.compute().items():  # all-reduced, identical on every process
            if not torch.isnan(value):
                tag = f"sparsity/{stage}/{name}/{key}"
                pl_module.log(
                    tag, value.float(), on_step=on_step, on_epoch=not on_step, batch_size=1
                )
        if on_step:
            drives.reset()

    @rank_zero_only
    def _histogram(self, trainer, tag: str, result: dict[str, torch.Tensor]) -> None:
        writer = self._tensorboard(trainer)
        if writer is not None:
            writer.add_histogram(tag, result["neuron_rates"].float().cpu(), trainer.global_step)

    @rank_zero_only
    def _log_example(self, trainer) -> None:
        writer = self._tensorboard(trainer)
        if writer is not None:
            self.example.write(writer, trainer.global_step)
        self.example.clear()

    def _tensorboard(self, trainer: L.Trainer):
        """The SummaryWriter of the trainer's TensorBoardLogger, or None (warned once)."""
        writer = tensorboard_writer(trainer)
        # fast_dev_run swaps every logger for a dummy on purpose: nothing to warn about.
        if writer is None and not self._warned_no_tensorboard and not trainer.fast_dev_run:
            rank_zero_warn(
                "FiringRateMonitor: no TensorBoardLogger; histograms, images and the "
                "custom-scalars layout skipped"
            )
            self._warned_no_tensorboard = True
        return writer
