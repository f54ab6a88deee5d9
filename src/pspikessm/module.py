"""The LightningModule: a sequence classifier around any backbone."""

from __future__ import annotations

import warnings
from typing import Any, Literal, get_args

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from pspikessm.evaluation import (
    EvalMode,
    apply_eval_mode,
    check_eval_options,
    class_log_probabilities,
    eval_passes,
    seeded_spikes,
)
from pspikessm.models.architecture import check_checkpoint_architecture, save_architecture
from pspikessm.optim import Scheduler, check_schedule, configure_adamw

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]


class SequenceClassifier(L.LightningModule):
    """Cross-entropy training of a sequence classifier with AdamW and SSM parameter groups.

    Args:
        backbone: maps ``(inputs, lengths)`` to logits (B, num_classes); for example
            :class:`pspikessm.models.PSpikeSSM`.
        num_classes: number of classes (linked from the data module by the CLI).
        lr, weight_decay, betas: AdamW's, for the untagged parameters (:mod:`pspikessm.optim`).
        scheduler, warmup_steps, total_steps, min_lr_factor, plateau_factor, plateau_patience,
            monitor: the learning-rate schedule (:func:`pspikessm.optim.configure_adamw`).
        eval_mode, mc_samples, eval_seed: how validation/test/predict treat the stochastic
            spikes (:mod:`pspikessm.evaluation`), logged as ``{stage}/eval_passes``.
        compile: compile the backbone (``torch.compile``, in place: checkpoints keep the plain
            names) when the trainer sets up: True (``default``), ``reduce-overhead`` (CUDA
            graphs: set ``data.length_buckets`` so shapes repeat) or ``max-autotune``.
        reset_optimizer: resuming with optimiser settings other than the checkpoint's builds
            a fresh optimiser and schedule at its step (off: an error naming the settings).
            Read by the CLI's run-safety callbacks (:mod:`pspikessm.runtime.resume_checks`).

    Batches are ``(inputs, lengths, targets)``. Spikes draw from torch's global generator (the
    run-safety callbacks, :mod:`pspikessm.runtime`, carry it through checkpoints). A checkpoint
    records the backbone's architecture and only loads into a backbone with the same one.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        scheduler: Scheduler = "cosine",
        warmup_steps: int = 0,
        total_steps: int | None = None,
        min_lr_factor: float = 0.0,
        plateau_factor: float = 0.2,
        plateau_patience: int = 20,
        monitor: str = "val/acc",
        eval_mode: EvalMode = "sample",
        mc_samples: int = 16,
        eval_seed: int | None = 0,
        compile: bool | CompileMode = False,
        reset_optimizer: bool = False,
    ) -> None:
        super().__init__()
        check_eval_options(eval_mode, mc_samples)
        check_schedule(scheduler, warmup_steps, total_steps)
        if compile not in (True, False, *get_args(CompileMode)):
            raise ValueError(
                f"model.compile={compile!r}: expected true, false or one of {get_args(CompileMode)}"
            )
        # Under LightningCLI the hyperparameters hold the backbone's class_path config, so
        # `load_from_checkpoint` rebuilds it; a backbone built in Python lives in the state dict.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        if isinstance(self.hparams.get("backbone"), nn.Module):
            self.remove_ignored_hparams(["backbone"])
        self.backbone = backbone
        # average="micro": the fraction of correct predictions, as LRA and the paper report
        # (torchmetrics' "macro" is another number); no value checks (a GPU sync per step).
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # in checkpoints: a resumed run keeps its best
        # The training epoch's running loss and accuracy are in checkpoints too, so an epoch
        # resumed part-way reports the whole epoch (and they restart with each new epoch).
        # Step values: the global batch; no NaN check (a sync; the non-finite stop does it).
        self.train_loss = MeanMetric(dist_sync_on_step=True, nan_strategy="disable")
        for metric in (self.train_loss, self.train_acc):
            metric.persistent(True)
        self._trained_this_epoch = False

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(inputs, lengths)

    def evaluate(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None, batch_idx: int = 0
    ) -> torch.Tensor:
        """Class log-probabilities (B, num_classes) under ``eval_mode``, seeded per batch."""
        hp = self.hparams
        with seeded_spikes(hp.eval_seed, self.global_rank, batch_idx, self.device):
            return class_log_probabilities(
                lambda: self(inputs, lengths), hp.eval_mode, hp.mc_samples
            )

    def _apply_eval_mode(self) -> None:
        apply_eval_mode(self.backbone, self.hparams.eval_mode)

    on_validation_start = on_test_start = on_predict_start = _apply_eval_mode

    def configure_model(self) -> None:
        mode = self.hparams.compile
        if mode and not getattr(self, "_backbone_compiled", False):  # in place: same keys
            self.backbone.compile(mode=None if mode is True else mode)
            self._backbone_compiled = True

    def on_train_epoch_start(self) -> None:
        # Not called when a run resumes part-way into an epoch: the restored states continue.
        self.train_loss.reset()
        self.train_acc.reset()
        self._trained_this_epoch = False

    def on_train_epoch_end(self) -> None:
        # An epoch resumed in its closing validation ran no training step in this process,
        # so Lightning has nothing to log for it: log the restored (whole-epoch) means here.
        if self._trained_this_epoch or self.trainer.ckpt_path is None:
            return
        with warnings.catch_warnings():  # "compute ... called before the update method"
            warnings.simplefilter("ignore", UserWarning)
            self.log("train/loss_epoch", self.train_loss.compute())
            self.log("train/acc", self.train_acc.compute())

    def on_train_start(self) -> None:
        # The sanity check has run by now; it must not count as the best epoch.
        if self.trainer.global_step == 0:
            self.val_acc_best.reset()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, lengths, targets = batch
        logits = self.backbone(inputs, lengths)
        loss = F.cross_entropy(logits, targets)
        self.train_acc(logits.detach(), targets)
        self.train_loss(loss.detach(), weight=targets.numel())
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        self._trained_this_epoch = True
        return loss

    def _evaluation_step(self, stage: str, batch: Batch, batch_idx: int) -> None:
        inputs, lengths, targets = batch
        logits = self.evaluate(inputs, lengths, batch_idx)
        loss, accuracy = getattr(self, f"{stage}_loss"), getattr(self, f"{stage}_acc")
        loss(F.cross_entropy(logits, targets), weight=targets.numel())
        accuracy(logits, targets)
        self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=stage == "val")
        self.log(f"{stage}/acc", accuracy, on_epoch=True, prog_bar=stage == "val")
        passes = eval_passes(self.hparams.eval_mode, self.hparams.mc_samples)
        self.log(f"{stage}/eval_passes", float(passes), on_epoch=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step("val", batch, batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluation_step("test", batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, lengths, _ = batch
        return self.evaluate(inputs, lengths, batch_idx).exp()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_architecture(checkpoint, self.backbone)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another architecture, naming the differing settings."""
        try:
            path = self.trainer.ckpt_path
        except RuntimeError:  # load_from_checkpoint: no trainer
            path = None
        check_checkpoint_architecture(checkpoint, self.backbone, path)

    def configure_optimizers(self) -> Any:
        return configure_adamw(self, self.hparams)
