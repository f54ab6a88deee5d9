"""The LightningModule: a sequence classifier around any backbone."""

from __future__ import annotations

import warnings
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from pspikessm.models.backbone import spike_samplers
from pspikessm.optim import parameter_groups, warmup_cosine_lambda

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class SequenceClassifier(L.LightningModule):
    """Cross-entropy training of a sequence classifier with AdamW and SSM parameter groups.

    Args:
        backbone: maps ``(inputs, lengths)`` to logits (B, num_classes); for example
            :class:`pspikessm.models.PSpikeSSM`.
        num_classes: number of classes (linked from the data module by the CLI).
        lr: peak learning rate of the untagged parameters.
        weight_decay: AdamW weight decay of the untagged parameters.
        betas: AdamW betas.
        scheduler: ``cosine`` (linear warm-up then cosine decay, per step), ``plateau``
            (reduce on plateau of ``monitor``, per epoch) or ``constant``.
        warmup_steps: linear warm-up steps of the cosine schedule.
        total_steps: steps of the cosine schedule; None uses the trainer's estimate.
        min_lr_factor: the cosine schedule ends at ``min_lr_factor * lr``.
        plateau_factor: LR factor of the plateau schedule.
        plateau_patience: epochs without improvement before the plateau schedule steps.
        monitor: metric the plateau schedule watches (maximised).
        eval_mode: spikes in validation/test/predict: ``sample`` (one stochastic pass, as
            the paper's code) or ``expected`` (firing probabilities, deterministic).

    Batches are ``(inputs, lengths, targets)``.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.999),
        scheduler: Literal["cosine", "plateau", "constant"] = "cosine",
        warmup_steps: int = 0,
        total_steps: int | None = None,
        min_lr_factor: float = 0.0,
        plateau_factor: float = 0.2,
        plateau_patience: int = 20,
        monitor: str = "val/acc",
        eval_mode: Literal["sample", "expected"] = "sample",
    ) -> None:
        super().__init__()
        # Under LightningCLI the hyperparameters hold the backbone's class_path config, so
        # `load_from_checkpoint` rebuilds it; a backbone built in Python lives in the state dict.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters()
        if isinstance(self.hparams.get("backbone"), nn.Module):
            self.remove_ignored_hparams(["backbone"])
        self.backbone = backbone
        self.train_acc = MulticlassAccuracy(num_classes)
        self.val_acc = MulticlassAccuracy(num_classes)
        self.test_acc = MulticlassAccuracy(num_classes)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(inputs, lengths)

    def _apply_eval_mode(self) -> None:
        for _, sampler in spike_samplers(self.backbone):
            sampler.eval_mode = self.hparams.eval_mode

    def on_validation_start(self) -> None:
        self._apply_eval_mode()

    def on_test_start(self) -> None:
        self._apply_eval_mode()

    def on_predict_start(self) -> None:
        self._apply_eval_mode()

    def on_train_start(self) -> None:
        # The sanity check has run by now; it must not count as the best epoch.
        self.val_acc_best.reset()

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, lengths, targets = batch
        logits = self(inputs, lengths)
        loss = F.cross_entropy(logits, targets)
        self.train_acc(logits, targets)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, lengths, targets = batch
        logits = self(inputs, lengths)
        self.val_loss(F.cross_entropy(logits, targets), weight=targets.numel())
        self.val_acc(logits, targets)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        inputs, lengths, targets = batch
        logits = self(inputs, lengths)
        self.test_loss(F.cross_entropy(logits, targets), weight=targets.numel())
        self.test_acc(logits, targets)
        self.log("test/loss", self.test_loss, on_epoch=True)
        self.log("test/acc", self.test_acc, on_epoch=True)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, lengths, _ = batch
        return self(inputs, lengths).softmax(dim=-1)

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
        cosine = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine_lambda(hp.warmup_steps, total, hp.min_lr_factor)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
