"""EnergyEstimate: operation counts of a tiny network equal hand-computed numbers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader

from helpers.tensorboard_events import latest_text, load
from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.energy_counts import fft_conv_macs
from pspikessm.callbacks.energy_table import format_table
from pspikessm.data.collate import pad_collate, pad_pair_collate
from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.models.neurons.real_valued import RealValued
from pspikessm.module import SequenceClassifier


def forced_model(second_branch: bool = False, mixer: str = "gelu") -> SequenceClassifier:
    """H=2, 1 layer, linear encoder (3 → 2), pre-norm LayerNorm, 3 classes. Branch 1: neuron
    0 always fires at the input, neuron 1 never; both neurons always fire at the output.
    Branch 2 (optional): neuron 0 fires at the input and (u = 10 s_in) at the output, neuron 1
    never."""
    settings = BlockSettings(
        d_state=2, norm="layer", prenorm=True, second_branch=second_branch, mixer=mixer
    )
    backbone = PSpikeSSM(num_classes=3, d_input=3, d_model=2, n_layers=1, block=settings)
    block = backbone.blocks[0]
    with torch.no_grad():
        for affine in block.fuse.affines:
            affine.scale.zero_()
            affine.shift.copy_(torch.tensor([1.0, 0.0]))
        block.fuse.norm.bias.copy_(torch.tensor([1.0, 0.0]))  # LN([1, 0]) + bias → (2, -1)
        block.branches[0].output_affine.scale.zero_()
        block.branches[0].output_affine.shift.fill_(1.0)
        for branch in block.branches[1:]:
            branch.ssm.kernel.c.zero_()
            branch.ssm.d.fill_(10.0)
    return SequenceClassifier(backbone, num_classes=3, scheduler="constant")


def energy_metrics(model: SequenceClassifier, lengths: list[int]) -> dict[str, float]:
    """The energy metrics of ``model`` tested on random sequences of ``lengths``."""
    loader = DataLoader(
        [(torch.randn(n, 3), 0) for n in lengths], batch_size=2, collate_fn=pad_collate
    )
    trainer = L.Trainer(
        accelerator="cpu", logger=False, callbacks=[EnergyEstimate()], enable_progress_bar=False
    )
    (metrics,) = trainer.test(model, dataloaders=loader, verbose=False)
    return metrics


def test_fft_conv_macs_by_hand():
    assert fft_conv_macs(2) == 2 * 4 * 2 + 4 * 3  # n = 4: two FFTs of 4·log2(4), 3 bins
    assert fft_conv_macs(3) == pytest.approx(2 * 6 * math.log2(6) + 4 * 4)


def test_energy_counts_of_a_tiny_network_by_hand():
    lengths = [3, 2]
    items = [(torch.randn(n, 3), 0) for n in lengths]
    loader = DataLoader(items, batch_size=2, collate_fn=pad_collate)
    energy = EnergyEstimate()
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[energy],
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (metrics,) = trainer.test(forced_model(), dataloaders=loader, verbose=False)

    steps, sequences, width = 5, 2, 2
    conv = 2 * (2 * 6 * math.log2(6) + 16) + 2 * (2 * 4 * 2 + 12)  # H · Σ fft_conv_macs(l)
    # entry affine H + LayerNorm 3H + output affine H per step, plus the FFT convolutions
    layer_mac = (width + 3 * width + width) * steps + conv
    layer_ac = 1 * steps * 1 + 2 * steps * 2  # input spikes × 1 (D skip) + output × H_out
    layer_dense = layer_mac + (width + width * width) * steps
    encoder_mac = 3 * 2 * steps
    head_mac = 3 * width * steps + width * 3 * sequences  # final LayerNorm + decoder

    expect = {
        "energy/encoder/mac": encoder_mac / sequences,
        "energy/encoder/ac": 0.0,
        "energy/layer0/ac": layer_ac / sequences,
        "energy/layer0/mac": layer_mac / sequences,
        "energy/layer0/dense_mac": layer_dense / sequences,
        "energy/head/mac": head_mac / sequences,
        "energy/total/ac": layer_ac / sequences,
        "energy/total/mac": (encoder_mac + layer_mac + head_mac) / sequences,
    }
    for key, value in expect.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6), key
    total_nj = (0.9 * layer_ac + 4.6 * (encoder_mac + layer_mac + head_mac)) / sequences / 1e3
    dense_nj = 4.6 * (encoder_mac + layer_dense + head_mac) / sequences / 1e3
    assert metrics["energy/total/nj"] == pytest.approx(total_nj, rel=1e-6)
    assert metrics["energy/total/dense_nj"] == pytest.approx(dense_nj, rel=1e-6)
    assert metrics["energy/saving"] == pytest.approx(dense_nj / total_nj, rel=1e-6)
    assert [row["row"] for row in energy.table] == ["encoder", "layer0", "head", "total"]
    assert "layer0" in format_table(energy.table)


def test_second_branch_counts_by_hand():
    metrics = energy_metrics(forced_model(second_branch=True), [3, 2])
    steps, sequences, width = 5, 2, 2
    conv = 2 * width * (fft_conv_macs(3) + fft_conv_macs(2))  # two branches' convolutions
    # entry affines 2H + LayerNorm 3H + branch 1's output affine H per step
    layer_mac = (2 * width + 3 * width + width) * steps + conv
    # input spikes × 1 (D skip): 1 per step per branch; output × H_out (2): 2 + 1 per step
    layer_ac = (1 + 1) * steps + (2 + 1) * steps * width
    layer_dense = layer_mac + (2 * width + 2 * width * width) * steps  # D skips, 2H → H mixer
    assert metrics["energy/layer0/ac"] == pytest.approx(layer_ac / sequences)
    assert metrics["energy/layer0/mac"] == pytest.approx(layer_mac / sequences)
    assert metrics["energy/layer0/dense_mac"] == pytest.approx(layer_dense / sequences)


def test_no_mixer_counts_by_hand():
    metrics = energy_metrics(forced_model(mixer="none"), [3, 2])
    steps, sequences, width = 5, 2, 2
    conv = width * (fft_conv_macs(3) + fft_conv_macs(2))
    layer_mac = (width + 3 * width + width) * steps + conv
    # Only the D skip consumes spikes; output spikes are added to the stream (not counted).
    assert metrics["energy/layer0/ac"] == pytest.approx(1 * steps / sequences)
    assert metrics["energy/layer0/mac"] == pytest.approx(layer_mac / sequences)
    assert metrics["energy/layer0/dense_mac"] == pytest.approx(
        (layer_mac + width * steps) / sequences
    )


def test_a_non_spiking_neuron_makes_its_consumer_cost_macs():
    model = forced_model()
    before = energy_metrics(model, [3, 2])
    model.backbone.blocks[0].branches[0].output_spikes = RealValued()
    after = energy_metrics(model, [3, 2])
    steps, sequences, width = 5, 2, 2
    assert after["energy/layer0/ac"] == pytest.approx(steps / sequences)  # input spikes only
    mixer_macs = width * width * steps / sequences
    assert after["energy/layer0/mac"] == pytest.approx(before["energy/layer0/mac"] + mixer_macs)
    assert after["energy/layer0/dense_mac"] == pytest.approx(before["energy/layer0/dense_mac"])


def test_pair_tasks_count_the_retrieval_head_once_per_pair():
    torch.manual_seed(0)
    width, classes = 8, 2
    backbone = PSpikeSSM(
        num_classes=classes,
        vocab_size=11,
        d_model=width,
        n_layers=1,
        dual_input=True,
        block=BlockSettings(d_state=4),
    )
    model = SequenceClassifier(backbone, num_classes=classes)
    pairs = [
        ((torch.randint(3, 11, (5,)), torch.randint(3, 11, (4,))), 1),
        ((torch.randint(3, 11, (3,)), torch.randint(3, 11, (6,))), 0),
    ]
    loader = DataLoader(pairs, batch_size=2, collate_fn=pad_pair_collate)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, callbacks=[EnergyEstimate()], enable_progress_bar=False
    )
    (metrics,) = trainer.test(model, dataloaders=loader, verbose=False)
    # Post-norm (no final norm); the MLP on [u, v, u·v, u−v]: 4H → H → classes, per pair.
    assert metrics["energy/head/mac"] == pytest.approx(4 * width * width + width * classes)


def test_table_goes_to_tensorboard_text_and_energy_csv_in_the_run_folder(tmp_path):
    loader = DataLoader(
        [(torch.randn(n, 3), 0) for n in (3, 2)], batch_size=2, collate_fn=pad_collate
    )
    energy = EnergyEstimate()
    logger = TensorBoardLogger(tmp_path, name="run")
    trainer = L.Trainer(
        accelerator="cpu", logger=logger, callbacks=[energy], enable_progress_bar=False
    )
    (metrics,) = trainer.test(forced_model(), dataloaders=loader, verbose=False)

    with open(Path(logger.log_dir) / "energy.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["row"] for row in rows] == ["encoder", "layer0", "head", "total"]
    assert {row["split"] for row in rows} == {"test"}
    for row in rows:  # unrounded: the logged scalars exactly (they are float32)
        for key in ("ac", "mac", "nj", "dense_mac", "dense_nj"):
            assert float(row[key]) == pytest.approx(metrics[f"energy/{row['row']}/{key}"], rel=1e-6)

    text = latest_text(load(Path(logger.log_dir)), "energy/table")
    assert "| layer | ACs | MACs |" in text
    total = energy.table[-1]
    assert f"| total | {total['ac']:.4g} | {total['mac']:.4g} | {total['nj']:.4g} |" in text
    assert f"non-spiking / spiking energy: {metrics['energy/saving']:.3g}x" in text


def test_without_a_logger_the_table_is_only_printed(tmp_path, capsys):
    loader = DataLoader([(torch.randn(3, 3), 0)], batch_size=1, collate_fn=pad_collate)
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        default_root_dir=tmp_path,
        callbacks=[EnergyEstimate()],
        enable_progress_bar=False,
    )
    trainer.test(forced_model(), dataloaders=loader, verbose=False)
    assert "non-spiking / spiking energy" in capsys.readouterr().out
    assert list(tmp_path.rglob("*")) == []
