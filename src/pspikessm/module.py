"""The LightningModule: a sequence classifier around any backbone."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Literal, get_args

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from pspikessm.models.architecture import check_checkpoint_architecture, save_architecture
from pspikessm.optim import parameter_groups, periodic_cosine_lambda, warmup_cosine_lambda

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

#: How evaluation treats stochastic spikes (the one definition; see ``eval_mode`` below).
EvalMode = Literal["sample", "expected", "mc"]
EVAL_MODES = get_args(EvalMode)
Scheduler = Literal["cosine", "cosine_periodic", "plateau", "constant"]
SCHEDULERS = get_args(Scheduler)


class SequenceClassifier(L.LightningModule):
    """Cross-entropy training of a sequence classifier with AdamW and SSM parameter groups.

    Args:
        backbone: maps ``(inputs, lengths)`` to logits (B, num_classes); for example
            :class:`pspikessm.models.PSpikeSSM`.
        num_classes: number of classes (linked from the data module by the CLI).
        lr: peak learning rate of the untagged parameters.
        weight_decay: AdamW weight decay of the untagged parameters.
        betas: AdamW betas.
        scheduler: ``cosine`` (linear warm-up then cosine decay to ``min_lr_factor * lr`` at
            ``total_steps``, constant after), ``cosine_periodic`` (the authors':
            transformers' cosine with warm-up, which keeps running past ``total_steps`` so the
            rate rises again), ``plateau`` (reduce on plateau of ``monitor``, per epoch) or
            ``constant``. Both cosines step per optimiser step.
        warmup_steps: linear warm-up steps of the cosine schedules.
        total_steps: steps of the cosine schedules; None uses the trainer's estimate.
        min_lr_factor: the ``cosine`` schedule ends at ``min_lr_factor * lr``.
        plateau_factor: LR factor of the plateau schedule.
        plateau_patience: epochs without improvement before the plateau schedule steps.
        monitor: metric the plateau schedule watches (maximised).
        eval_mode: how validation/test/predict treat the stochastic spikes: ``sample`` (one
            stochastic pass, as the paper's code), ``expected`` (firing probabilities instead
            of spikes, deterministic) or ``mc`` (the mean of the class probabilities over
            ``mc_samples`` stochastic passes). Logged as ``{stage}/eval_passes`` (0 for
            expected, 1 for sample, K for mc) next to the metrics.
        mc_samples: passes K of the ``mc`` mode.
        eval_seed: seed of the evaluation spikes; each batch draws from
            ``(eval_seed, rank, batch index)`` inside a forked RNG, so evaluation is
            reproducible and leaves the training RNG untouched. None: unseeded.
        compile: compile the backbone with ``torch.compile`` when the trainer sets up (the
            parameter names, hence checkpoints, are those of the plain backbone).
        reset_optimizer: resuming with optimiser settings other than the checkpoint's builds
            a fresh optimiser and schedule at its step (off: an error naming the settings;
            equal settings reset nothing). Read by the CLI's run-safety callbacks
            (:mod:`pspikessm.runtime.resume_checks`).

    Spike randomness is torch's global generator; the CLI's run-safety callbacks
    (:mod:`pspikessm.runtime`) carry it through checkpoints and split it per process.

    Batches are ``(inputs, lengths, targets)``. A checkpoint records the backbone's
    architecture (``backbone.settings``) and only loads into a backbone with the same one.
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
        compile: bool = False,
        reset_optimizer: bool = False,
    ) -> None:
        super().__init__()
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"model.eval_mode={eval_mode!r}: expected one of {EVAL_MODES}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"model.scheduler={scheduler!r}: expected one of {SCHEDULERS}")
        for option, value, least in (
            ("mc_samples", mc_samples, 1),
            ("warmup_steps", warmup_steps, 0),
            ("total_steps", 1 if total_steps is None else total_steps, 1),
        ):
            if value < least:
                raise ValueError(f"model.{option}={value}: expected an integer >= {least}")
        # Under LightningCLI the hyperparameters hold the backbone's class_path config, so
        # `load_from_checkpoint` rebuilds it; a backbone built in Python lives in the state dict.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        if isinstance(self.hparams.get("backbone"), nn.Module):
            self.remove_ignored_hparams(["backbone"])
        self.backbone = backbone
        # average="micro": the fraction of correct predictions, as LRA and the paper report;
        # torchmetrics' default ("macro") is the mean of per-class recalls, another number.
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # in checkpoints: a resumed run keeps its best
        # The training epoch's running loss and accuracy are in checkpoints too, so an epoch
        # resumed part-way reports the whole epoch (and they restart with each new epoch).
        self.train_loss = MeanMetric(dist_sync_on_step=True)  # step values: the global batch
        for metric in (self.train_loss, self.train_acc):
            metric.persistent(True)
        self._trained_this_epoch = False

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(inputs, lengths)

    def _apply_eval_mode(self) -> None:
        """Tell every neuron that can (``sample_in_eval``) whether to sample in evaluation."""
        for module in self.backbone.modules():
            if hasattr(module, "sample_in_eval"):
                module.sample_in_eval = self.hparams.eval_mode != "expected"

    @property
    def eval_passes(self) -> int:
        """Stochastic passes per evaluated example: 0 (expected), 1 (sample) or K (mc)."""
        mode = self.hparams.eval_mode
        return {"expected": 0, "sample": 1}.get(mode, self.hparams.mc_samples)

    @contextmanager
    def _eval_rng(self, batch_idx: int, dataloader_idx: int = 0):
        """Seed the spikes of one evaluation batch without touching the global RNG stream."""
        seed = self.hparams.eval_seed
        if seed is None:
            yield
            return
        devices = [self.device] if self.device.type == "cuda" else []
        rank = self.global_rank  # 0 without a trainer
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(
                ((seed * 1_000_003 + dataloader_idx) * 1_000_003 + batch_idx) * 1009 + rank
            )
            yield

    def evaluate(
        self, inputs: torch.Tensor, lengths: torch.Tensor | None, batch_idx: int = 0
    ) -> torch.Tensor:
        """Class log-probabilities (B, num_classes) under ``eval_mode``, seeded per batch."""
        with self._eval_rng(batch_idx):
            if self.hparams.eval_mode != "mc":
                return self(inputs, lengths).log_softmax(dim=-1)
            probabilities = sum(
                self(inputs, lengths).softmax(dim=-1) for _ in range(self.hparams.mc_samples)
            )
            return (probabilities / self.hparams.mc_samples).clamp_min(1e-12).log()

    def on_validation_start(self) -> None:
        self._apply_eval_mode()

    def on_test_start(self) -> None:
        self._apply_eval_mode()

    def on_predict_start(self) -> None:
        self._apply_eval_mode()

    def configure_model(self) -> None:
        if self.hparams.compile and not getattr(self, "_backbone_compiled", False):
            self.backbone.compile()  # in place: state_dict keys stay those of the plain model
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

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, lengths, targets = batch
        logits = self.evaluate(inputs, lengths, batch_idx)
        self.val_loss(F.cross_entropy(logits, targets), weight=targets.numel())
        self.val_acc(logits, targets)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)
        self.log("val/eval_passes", float(self.eval_passes), on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, lengths, targets = batch
        logits = self.evaluate(inputs, lengths, batch_idx)
        self.test_loss(F.cross_entropy(logits, targets), weight=targets.numel())
        self.test_acc(logits, targets)
        self.log("test/loss", self.test_loss, on_epoch=True)
        self.log("test/acc", self.test_acc, on_epoch=True)
        self.log("test/eval_passes", float(self.eval_passes), on_epoch=True)

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

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(
            parameter_groups(self, hp.lr, hp.weight_decay), lr=hp.lr, betas=tuple(hp.betas)
        )
        if hp.scheduler == "constant":
            return optimizer
        if hp.scheduler == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=hp.plateau_factor, patience=hp.plateau_patience
            )
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": plateau, "monitor": hp.monitor, "interval": "epoch"},
            }
        total = hp.total_steps or int(self.trainer.estimated_stepping_batches)
        if hp.scheduler == "cosine_periodic":
            factor = periodic_cosine_lambda(hp.warmup_steps, total)
        else:
            factor = warmup_cosine_lambda(hp.warmup_steps, total, hp.min_lr_factor)
        cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
