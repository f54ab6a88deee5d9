"""FiringRateMonitor: exact rates on forced spikes, quiet on non-spiking models, hooks removed."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from helpers.spiking_doubles import ForcedSpikes, NoSpikes, token_batches
from pspikessm.callbacks import FiringRateMonitor, is_spike_source, spike_sources
from pspikessm.models import PSpikeSSM
from pspikessm.module import SequenceClassifier

LENGTHS = [5, 3, 8, 1, 6, 2]  # padded in batches of 4: padding must not count
P_IN = [1.0, 0.5, 0.0, 0.0]
P_OUT = [0.5, 0.5, 0.5, 0.0]


def expected_spikes(p: float, length: int) -> int:
    """Spikes of one neuron with fixed probability p and the alternating uniforms."""
    return {1.0: length, 0.5: math.ceil(length / 2), 0.0: 0}[p]


def expected_rate(probabilities: list[float], lengths: list[int]) -> float:
    spikes = sum(expected_spikes(p, n) for p in probabilities for n in lengths)
    return spikes / (len(probabilities) * sum(lengths))


def trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=TensorBoardLogger(tmp_path, name="run"),
        callbacks=[FiringRateMonitor()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
    )
    defaults.update(kwargs)
    return L.Trainer(**defaults)


def classifier(eval_mode: str = "sample") -> SequenceClassifier:
    backbone = ForcedSpikes([(P_IN, P_OUT), (P_OUT, P_IN)])
    return SequenceClassifier(backbone, num_classes=2, scheduler="constant", eval_mode=eval_mode)


def test_forced_spikes_give_exact_rates_and_silent_fractions(tmp_path):
    module = classifier()
    loader = token_batches(LENGTHS, batch_size=4)
    (metrics,) = trainer(tmp_path).validate(module, dataloaders=loader, verbose=False)
    rate_in, rate_out = expected_rate(P_IN, LENGTHS), expected_rate(P_OUT, LENGTHS)
    assert metrics["sparsity/val/layer0/input/rate"] == pytest.approx(rate_in, abs=1e-7)
    assert metrics["sparsity/val/layer0/output/rate"] == pytest.approx(rate_out, abs=1e-7)
    assert metrics["sparsity/val/layer1/input/rate"] == pytest.approx(rate_out, abs=1e-7)
    assert metrics["sparsity/val/layer1/output/rate"] == pytest.approx(rate_in, abs=1e-7)
    assert metrics["sparsity/val/layer0/input/silent"] == 0.5
    assert metrics["sparsity/val/layer0/output/silent"] == 0.25
    assert metrics["sparsity/val/rate"] == pytest.approx((rate_in + rate_out) / 2, abs=1e-7)

    (metrics,) = trainer(tmp_path).test(module, dataloaders=loader, verbose=False)
    assert metrics["sparsity/test/layer0/input/rate"] == pytest.approx(rate_in, abs=1e-7)
    assert metrics["sparsity/test/layer1/output/silent"] == 0.5


def test_a_neuron_forced_dead_shows_as_silent_and_outside_its_window(tmp_path):
    # Drives 1.0 and 0.0 sit on the window's edges (no gradient passes there), 0.5 inside;
    # -2.0 is a dead neuron far below it.
    backbone = ForcedSpikes([([1.0, 0.5, 0.0, -2.0], [0.5, 0.5, 0.5, 0.5])])
    module = SequenceClassifier(backbone, num_classes=2, scheduler="constant")
    loader = token_batches(LENGTHS, batch_size=4)
    (metrics,) = trainer(tmp_path).validate(module, dataloaders=loader, verbose=False)
    assert metrics["sparsity/val/layer0/input/silent"] == 0.5  # the 0.0 and the -2.0 neuron
    assert metrics["sparsity/val/layer0/input/drive_outside"] == pytest.approx(0.75)
    assert metrics["sparsity/val/layer0/input/drive_mean"] == pytest.approx(-0.125)
    assert metrics["sparsity/val/layer0/output/silent"] == 0.0
    assert metrics["sparsity/val/layer0/output/drive_outside"] == 0.0
    assert metrics["sparsity/val/layer0/output/drive_mean"] == pytest.approx(0.5)


def test_signed_spikes_count_their_on_and_off_populations(tmp_path):
    # ON fires at every step for 1.0, at even steps for 0.5; OFF at every step for -1.0.
    backbone = ForcedSpikes([([1.0, -1.0, 0.0, 0.5], [0.5, 0.5, 0.5, 0.5])], signed=True)
    module = SequenceClassifier(backbone, num_classes=2, scheduler="constant")
    loader = token_batches(LENGTHS, batch_size=4)
    (metrics,) = trainer(tmp_path).validate(module, dataloaders=loader, verbose=False)
    spikes = sum(2 * n + math.ceil(n / 2) for n in LENGTHS)
    assert metrics["sparsity/val/layer0/input/rate"] == pytest.approx(
        spikes / (8 * sum(LENGTHS)), abs=1e-7
    )
    assert metrics["sparsity/val/layer0/input/silent"] == 5 / 8  # ON: 2 of 4, OFF: 3 of 4
    assert metrics["sparsity/val/layer0/input/drive_outside"] == 0.5  # ±1: window (-1, 1)


def test_gradient_rms_at_the_drives_is_logged_in_training_when_asked(tmp_path):
    def spiking_classifier() -> SequenceClassifier:
        torch.manual_seed(0)
        backbone = PSpikeSSM(num_classes=2, vocab_size=20, d_model=4, n_layers=1)
        return SequenceClassifier(backbone, num_classes=2, scheduler="constant")

    loader = token_batches(LENGTHS, batch_size=4)
    monitor = FiringRateMonitor(histograms=False, images=False, gradients=True)
    fit = trainer(tmp_path, callbacks=[monitor])
    fit.fit(spiking_classifier(), train_dataloaders=loader, val_dataloaders=loader)
    for site in ("input", "output"):
        grad_rms = fit.callback_metrics[f"sparsity/train/layer0/{site}/grad_rms"]
        assert torch.isfinite(grad_rms) and grad_rms > 0
    assert "sparsity/val/layer0/input/grad_rms" not in fit.callback_metrics
    plain = trainer(tmp_path, callbacks=[FiringRateMonitor(histograms=False, images=False)])
    plain.fit(spiking_classifier(), train_dataloaders=loader, val_dataloaders=loader)
    assert "sparsity/train/layer0/input/drive_mean" in plain.callback_metrics
    assert not any(tag.endswith("grad_rms") for tag in plain.callback_metrics)


def test_train_rates_cover_the_steps_since_the_last_log(tmp_path):
    module = classifier()
    loader = token_batches(LENGTHS, batch_size=4)  # batches: lengths[:4], lengths[4:]
    fit = trainer(tmp_path, limit_val_batches=0)
    fit.fit(module, loader, loader)  # the validation loader only keeps Lightning quiet
    last_batch = LENGTHS[4:]
    value = fit.logged_metrics["sparsity/train/layer0/input/rate"]
    assert value == pytest.approx(expected_rate(P_IN, last_batch), abs=1e-7)


def test_expected_eval_mode_reports_expected_rates(tmp_path):
    module = classifier(eval_mode="expected")
    loader = token_batches(LENGTHS, batch_size=4)
    (metrics,) = trainer(tmp_path).validate(module, dataloaders=loader, verbose=False)
    assert metrics["sparsity/val/layer0/input/rate"] == pytest.approx(sum(P_IN) / 4, abs=1e-7)
    assert metrics["sparsity/val/layer0/output/rate"] == pytest.approx(sum(P_OUT) / 4, abs=1e-7)
    assert metrics["sparsity/val/layer0/input/silent"] == 0.5


def test_hooks_are_removed_after_the_run(tmp_path):
    module = classifier()
    trainer(tmp_path).validate(module, dataloaders=token_batches(LENGTHS, 4), verbose=False)
    hooked = [name for name, m in module.named_modules() if m._forward_hooks]
    assert hooked == []


def test_model_without_spikes_warns_once_and_logs_nothing(tmp_path):
    module = SequenceClassifier(NoSpikes(), num_classes=2, scheduler="constant")
    with pytest.warns(UserWarning, match="no spiking layers"):
        (metrics,) = trainer(tmp_path).validate(
            module, dataloaders=token_batches(LENGTHS, 4), verbose=False
        )
    assert not [key for key in metrics if key.startswith("sparsity/")]


def test_missing_logger_is_a_clear_error(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = trainer(tmp_path, logger=False)
    with pytest.raises(ValueError, match="FiringRateMonitor needs a logger"):
        run.validate(classifier(), dataloaders=token_batches(LENGTHS, 4), verbose=False)


@pytest.mark.parametrize("fast_dev_run", [False, True])
def test_a_logger_without_tensorboard_warns_except_in_a_dry_run(tmp_path, fast_dev_run):
    run = trainer(tmp_path, logger=CSVLogger(tmp_path), fast_dev_run=fast_dev_run)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.validate(classifier(), dataloaders=token_batches(LENGTHS, 4), verbose=False)
    warned = [w for w in caught if "no TensorBoardLogger" in str(w.message)]
    assert len(warned) == (0 if fast_dev_run else 1)


class ThresholdSpikes(torch.nn.Module):
    """A deterministic neuron kind that opts in to monitoring with ``emits_spikes``."""

    emits_spikes = True

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, uniforms=None):
        spikes = (x > 0.5).to(x.dtype)
        return spikes if mask is None else spikes * mask


def test_modules_marked_emits_spikes_are_sources_and_names_are_short():
    model = ForcedSpikes([(P_IN, P_OUT)])
    model.blocks[0].branches[0].output_spikes = ThresholdSpikes()
    model.extra = ThresholdSpikes()
    names = [name for name, _ in spike_sources(model)]
    assert names == ["layer0/input", "layer0/output", "extra"]
    assert not is_spike_source(model.encoder)


def test_emits_spikes_module_is_counted(tmp_path):
    module = classifier()
    module.backbone.blocks[0].branches[
        0
    ].output_spikes = ThresholdSpikes()  # p_out 0.5 is not > 0.5
    loader = token_batches(LENGTHS, batch_size=4)
    (metrics,) = trainer(tmp_path).validate(module, dataloaders=loader, verbose=False)
    assert metrics["sparsity/val/layer0/output/rate"] == 0.0
    assert metrics["sparsity/val/layer0/output/silent"] == 1.0


class RecordingLogger(Logger):
    """Keeps every ``log_metrics`` call as (step, metrics)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, dict[str, float]]] = []

    name = "recording"
    version = 0

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass


@pytest.mark.parametrize("every", [2, 3])
def test_train_rates_are_written_at_the_steps_lightning_writes(tmp_path, every):
    module = classifier()
    lengths = [5, 3, 8, 1, 6, 2, 4, 7, 3, 2]  # five batches of two
    recording = RecordingLogger()
    fit = trainer(
        tmp_path,
        logger=recording,
        limit_val_batches=0,
        log_every_n_steps=every,
        max_epochs=2,
        callbacks=[FiringRateMonitor(histograms=False, images=False)],
    )
    # The recording logger is not TensorBoard: the monitor says the custom-scalars layout is off.
    # (A validation loader that limit_val_batches=0 never runs keeps Lightning from warning.)
    with pytest.warns(UserWarning, match="no TensorBoardLogger"):
        fit.fit(module, token_batches(lengths, batch_size=2), token_batches(lengths, batch_size=2))
    loss_steps = [step for step, m in recording.calls if "train/loss_step" in m]
    rate_calls = [(s, m) for s, m in recording.calls if "sparsity/train/layer0/input/rate" in m]
    assert loss_steps == [every * k - 1 for k in range(1, 10 // every + 1)]
    assert [step for step, _ in rate_calls] == loss_steps
    # Each value covers the batches since the previous write or the start of the epoch.
    batches_per_epoch = 5
    previous = -1
    for step, metrics in rate_calls:
        first = max(previous + 1, step - step % batches_per_epoch)
        covered = [n for b in range(first, step + 1) for n in lengths_of_batch(lengths, b, 2)]
        assert metrics["sparsity/train/layer0/input/rate"] == pytest.approx(
            expected_rate(P_IN, covered), abs=1e-7
        ), step
        previous = step


def lengths_of_batch(lengths: list[int], step: int, batch_size: int) -> list[int]:
    """Lengths of the batch at optimiser ``step`` when every epoch walks ``lengths`` in order."""
    start = step * batch_size % len(lengths)
    return lengths[start : start + batch_size]


def test_one_naming_rule_for_blocks_their_sites_and_other_modules():
    from pspikessm.callbacks.spike_sources import source_name

    assert source_name("backbone.blocks.3") == "layer3"  # the energy table's block rows
    assert source_name("backbone.blocks.0.branches.0.input_spikes") == "layer0/input"
    assert source_name("backbone.blocks.1.branches.1.output_spikes") == "layer1/output_b"
    assert source_name("blocks.2.branches.2.ssm") == "layer2/u_b2"  # the parity probes' u
    assert source_name("backbone.blocks.0.fuse") == "backbone_blocks_0_fuse"
    assert source_name("") == "model"
