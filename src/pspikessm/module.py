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

from pspikessm.optim import parameter_groups, periodic_cosine_lambda, warmup_cosine_lambda
from pspikessm.rng import offset_for_rank, rng_state, set_rng_state
from pspikessm.spike_training import (
    check_sampling_options,
    sampled_loss,
    set_sampling,
    warmup_sampling,
)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

#: How evaluation treats stochastic spikes (the one definition; see ``eval_mode`` below).
EvalMode = Literal["sample", "expected", "mc"]
EVAL_MODES = get_args(EvalMode)
Scheduler = Literal["cosine", "cosine_periodic", "plateau", "constant"]
SCHEDULERS = get_args(Scheduler)
SETTINGS_KEY = "backbone_settings"  # checkpoint entry holding the backbone's architecture


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
        spike_warmup_steps: expectation warm-up: neurons with a ``sampling`` attribute (the
            SpikeSampler) output ``p + α (s - p)`` in training, α rising linearly from 0
            (firing probabilities) at step 0 to 1 (spikes) at this step; evaluation always
            samples. 0 (the paper's): spikes from the start.
        train_samples: spike samples per training step: the loss is averaged over this many
            forward passes of the batch, each with its own spikes (its gradient is the mean of
            their gradients). 1: the paper's.
        antithetic: draw the samples in antithetic pairs: the second pass of a pair uses
            ``1 - u`` of the first one's uniforms ``u`` (``train_samples`` even).

    Spike randomness: every process starts from the same seed (identical initialisation);
    when training starts, processes other than rank 0 move to spike streams of their own.
    Checkpoints carry rank 0's generator states, so a resumed one-process run draws exactly
    the spikes the uninterrupted run would have drawn.

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
        spike_warmup_steps: int = 0,
        train_samples: int = 1,
        antithetic: bool = False,
    ) -> None:
        super().__init__()
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"model.eval_mode={eval_mode!r}: expected one of {EVAL_MODES}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"model.scheduler={scheduler!r}: expected one of {SCHEDULERS}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        check_sampling_options(backbone, train_samples, antithetic)
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
        self.val_acc_best.persistent(True)  # in checkpoints: a resumed run keeps its best
        self._resumed_rng_state: dict | None = None

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.backbone(inputs, lengths)

    def _apply_eval_mode(self) -> None:
        """Tell every neuron that can (``sample_in_eval``) whether to sample in evaluation;
        evaluation draws spikes whatever the warm-up (``spike_warmup_steps``) has reached."""
        set_sampling(self.backbone, 1.0)
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
        rank = self.global_rank if self._trainer is not None else 0
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

    def on_train_start(self) -> None:
        # The sanity check has run by now; it must not count as the best epoch.
        if self.trainer.global_step == 0:
            self.val_acc_best.reset()
        # After the (RNG-isolated) sanity check and the checkpoint restore: continue the saved
        # spike stream, then split the streams by rank.
        if self._resumed_rng_state is not None:
            set_rng_state(self._resumed_rng_state)
            self._resumed_rng_state = None
        offset_for_rank(self.global_rank)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        if self.hparams.spike_warmup_steps > 0:
            step, warmup = self.trainer.global_step, self.hparams.spike_warmup_steps
            set_sampling(self.backbone, warmup_sampling(step, warmup))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        loss, logits = sampled_loss(self.backbone, batch, hp.train_samples, hp.antithetic)
        self.train_acc(logits, batch[2])
        # sync_dist: the logged loss is that of the global batch, not of process 0's share.
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
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
        checkpoint["rng_state"] = rng_state()
        checkpoint[SETTINGS_KEY] = getattr(self.backbone, "settings", None)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the spike stream; refuse a checkpoint whose backbone was built differently,
        naming the settings."""
        self._resumed_rng_state = checkpoint.get("rng_state")
        saved = checkpoint.get(SETTINGS_KEY)
        current = getattr(self.backbone, "settings", None)
        if not saved or not current:
            return
        mismatched = _mismatches(saved, current)
        if mismatched:
            raise ValueError(
                "checkpoint was trained with another architecture; set "
                "model.backbone.init_args.<setting> to the checkpoint's value, or load a "
                "matching checkpoint. Mismatched settings: " + "; ".join(mismatched)
            )

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


def _mismatches(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """``key.path: checkpoint X, model Y`` for every setting both have and that differs."""
    found = []
    for key in saved.keys() & current.keys():
        old, new = saved[key], current[key]
        if isinstance(old, dict) and isinstance(new, dict) and old and new:
            found += _mismatches(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: checkpoint {old!r}, model {new!r}")
    return sorted(found)
