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

from pspikessm.optim import build_adamw, periodic_cosine_lambda, warmup_cosine_lambda
from pspikessm.resume_checks import ResumeGuard
from pspikessm.rng import offset_for_rank, rng_state, set_rng_state
from pspikessm.spike_training import check_options, sampled_loss, set_sampling, warmup_sampling

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

#: How evaluation treats stochastic spikes (the one definition; see ``eval_mode`` below).
EvalMode = Literal["sample", "expected", "mc"]
EVAL_MODES = get_args(EvalMode)
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]
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
        compile: compile the backbone (``torch.compile``, in place: checkpoints keep the plain
            names) when the trainer sets up: True (``default``), ``reduce-overhead`` (CUDA
            graphs: set ``data.length_buckets`` so shapes repeat) or ``max-autotune``.
        reset_optimizer: resuming with optimiser settings other than the checkpoint's builds
            a fresh optimiser and schedule at its step (off: an error naming the settings;
            equal settings reset nothing). See :mod:`pspikessm.resume_checks`.
        spike_warmup_steps, train_samples, antithetic: how training draws spikes
            (:mod:`pspikessm.spike_training`; the defaults are the paper's): spikes blended
            with their probabilities, ``p + α (s - p)``, α rising from 0 to 1 over
            ``spike_warmup_steps`` (evaluation always samples); the loss averaged over
            ``train_samples`` spike samples, drawn in pairs ``u``, ``1 - u`` if ``antithetic``.

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
        compile: bool | CompileMode = False,
        reset_optimizer: bool = False,
        spike_warmup_steps: int = 0,
        train_samples: int = 1,
        antithetic: bool = False,
    ) -> None:
        super().__init__()
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"model.eval_mode={eval_mode!r}: expected one of {EVAL_MODES}")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"model.scheduler={scheduler!r}: expected one of {SCHEDULERS}")
        if not isinstance(compile, bool) and compile not in (modes := get_args(CompileMode)):
            raise ValueError(f"model.compile={compile!r}: expected true, false or {modes}")
        if mc_samples < 1:
            raise ValueError(f"mc_samples must be >= 1, got {mc_samples}")
        check_options(backbone, train_samples, antithetic)
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
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # in checkpoints: a resumed run keeps its best
        # The training epoch's running loss and accuracy are in checkpoints too, so an epoch
        # resumed part-way reports the whole epoch (and they restart with each new epoch).
        # step values: the global batch; no NaN check (a sync; NonFiniteLossStop does it)
        self.train_loss = MeanMetric(dist_sync_on_step=True, nan_strategy="disable")
        for metric in (self.train_loss, self.train_acc):
            metric.persistent(True)
        self._trained_this_epoch = False
        self._resumed_rng_state: dict | None = None
        self._resume_guard = ResumeGuard()  # architecture and optimiser checks of checkpoints

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
        # After the (RNG-isolated) sanity check and the checkpoint restore: continue the saved
        # spike stream, then split the streams by rank.
        if self._resumed_rng_state is not None:
            set_rng_state(self._resumed_rng_state)
            self._resumed_rng_state = None
        offset_for_rank(self.global_rank)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        if self.hparams.spike_warmup_steps > 0:  # else: untouched, spikes throughout
            alpha = warmup_sampling(self.global_step, self.hparams.spike_warmup_steps)
            set_sampling(self.backbone, alpha)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        loss, logits = sampled_loss(self.backbone, batch, hp.train_samples, hp.antithetic)
        self.train_acc(logits, batch[2])
        self.train_loss(loss.detach(), weight=batch[2].numel())
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
        checkpoint["rng_state"] = rng_state()
        self._resume_guard.save(checkpoint, self.backbone)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the spike stream; refuse a checkpoint of another architecture, naming the settings."""
        self._resume_guard.load(checkpoint, self.backbone, self._trainer)
        self._resumed_rng_state = checkpoint.get("rng_state")

    def on_fit_start(self) -> None:
        self._resume_guard.fit_start(self.trainer, self.hparams.reset_optimizer)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = build_adamw(self, hp.lr, hp.weight_decay, hp.betas, self._trainer)
        if hp.scheduler == "constant":
            return optimizer
        if hp.scheduler == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max", factor=hp.plateau_factor, patience=hp.plateau_patience
            )
            schedule = {"scheduler": plateau, "monitor": hp.monitor, "interval": "epoch"}
            return {"optimizer": optimizer, "lr_scheduler": schedule}
        total = hp.total_steps or int(self.trainer.estimated_stepping_batches)
        if hp.scheduler == "cosine_periodic":
            factor = periodic_cosine_lambda(hp.warmup_steps, total)
        else:
            factor = warmup_cosine_lambda(hp.warmup_steps, total, hp.min_lr_factor)
        cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
