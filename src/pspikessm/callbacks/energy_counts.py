"""Counting rules of the energy estimate: accumulates (AC) and multiply-accumulates (MAC).

Energy per operation (45 nm CMOS, Horowitz 2014): :data:`PJ_PER_AC` = 0.9 pJ and
:data:`PJ_PER_MAC` = 4.6 pJ. Counts are per sequence over its ``l`` valid (unpadded) steps,
as if it ran alone; ``H`` is the width, ``C`` the number of classes.

Rules, per P-SpikeSSM part (spiking network / the same network non-spiking):

- encoder: ``nn.Linear(d_in, H)``: ``d_in·H·l`` MACs; ``nn.Embedding``: 0 (a table lookup).
- block, real-valued operations (MACs in both networks), with ``b`` branches (1, or 2 with
  the second branch): ClampFuse entry affines ``a_j ⊙ x + b_j``: ``b·H·l``; normalisation
  (one per block, pre- or post-norm): BatchNorm ``H·l`` (at inference a per-channel affine),
  LayerNorm ``3·H·l`` (mean, variance, scale), none 0; output affine ``a_out ⊙ GELU(u) +
  b_out`` (branch 1 only): ``H·l``; the SSM convolutions in parallel form, counted as the FFT
  convolution the code runs (:func:`fft_conv_macs`), ``b·H·fft_conv_macs(l)``.
- block, operations fed by binary spikes (ACs when spiking; MACs when non-spiking), per
  branch: the D skip ``D s_in``: 1 AC per input spike (``H·l`` MACs non-spiking); the
  SpikeMixer ``W s_out`` (b·H → H_out): ``H_out`` ACs per output spike (its fan-out)
  (``H·H_out·l`` MACs non-spiking). Without a mixer the output spikes are added to the
  residual stream, which is not counted: fan-out 0.
- head: final norm (pre-norm models) as above; decoder ``H·C`` MACs per sequence.
- not counted: biases and residual additions, elementwise nonlinearities (GELU, clamp),
  spike sampling (a comparison), dropout, mean pooling, and the kernel generation and kernel
  FFT (they depend on the weights only and are computed once per length at inference).

A block's MACs follow these rules in :func:`block_operation_counts`; its spiking neurons and
their fan-outs are :func:`spike_fan_outs`. Spike counts come from the actual spikes of each
run; with samplers in ``eval_mode="expected"`` they are firing probabilities, so ACs are
expected counts.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchmetrics import Metric

from pspikessm.models.block import PSpikeSSMBlock
from pspikessm.models.layers import ChannelAffine
from pspikessm.models.neurons import is_spike_source
from pspikessm.models.norms import ChannelLayerNorm

PJ_PER_AC = 0.9
PJ_PER_MAC = 4.6


class OperationCounts(Metric):
    """ACs, MACs and non-spiking MACs per table row, and the number of sequences.

    States (summed across processes): ``ac``, ``mac``, ``dense_mac`` (rows,) and
    ``sequences`` (). ``dense_mac`` is the whole non-spiking network's MACs for the row.
    """

    full_state_update = False

    def __init__(self, rows: int) -> None:
        super().__init__()
        for name in ("ac", "mac", "dense_mac"):
            self.add_state(name, torch.zeros(rows, dtype=torch.float64), "sum")
        self.add_state("sequences", torch.zeros((), dtype=torch.float64), "sum")

    def update(self, row: int, ac: float = 0.0, mac: float = 0.0, dense_mac: float = 0.0):
        self.ac[row] += ac
        self.mac[row] += mac
        self.dense_mac[row] += dense_mac

    def add_sequences(self, count: int) -> None:
        self.sequences += count

    def compute(self) -> dict[str, torch.Tensor]:
        """Per-sequence averages (rows,): ``ac``, ``mac``, ``dense_mac``, ``pj`` (spiking
        energy), ``dense_pj`` (non-spiking energy)."""
        per = 1.0 / self.sequences.clamp_min(1.0)
        ac, mac, dense = self.ac * per, self.mac * per, self.dense_mac * per
        return {
            "ac": ac,
            "mac": mac,
            "dense_mac": dense,
            "pj": PJ_PER_AC * ac + PJ_PER_MAC * mac,
            "dense_pj": PJ_PER_MAC * dense,
        }


def spike_fan_outs(block: PSpikeSSMBlock) -> list[tuple[nn.Module, int]]:
    """Every spike-emitting neuron of ``block`` with the fan-out of one of its spikes (the
    ACs it triggers): 1 for input spikes (the D skip), the mixer's output width for output
    spikes (0 without a mixer: they enter the residual stream, not counted)."""
    mixer_out = _mixer_width(block)
    pairs = [(branch.input_spikes, 1) for branch in block.branches]
    pairs += [(branch.output_spikes, mixer_out) for branch in block.branches]
    return [(neuron, fan_out) for neuron, fan_out in pairs if is_spike_source(neuron)]


def block_operation_counts(block: PSpikeSSMBlock, lengths: torch.Tensor) -> dict[str, float]:
    """MACs of ``block`` over sequences of ``lengths`` (B,) valid steps, by the rules above:
    ``mac`` in this network (real-valued operations, plus the spike-fed ones where the neuron
    kind feeds real values) and ``dense_mac`` in the same network without spikes. ACs are the
    spikes of :func:`spike_fan_outs` times their fan-outs, counted where the spikes are seen."""
    width, branches = block.fuse.affines[0].scale.numel(), len(block.branches)
    steps = float(lengths.sum())
    affines = sum(isinstance(m, ChannelAffine) for m in block.modules())
    per_step = affines * width + norm_macs_per_step(block.fuse.norm, width)
    conv = sum(fft_conv_macs(int(n)) for n in lengths.tolist() if n > 0)
    real = per_step * steps + branches * width * conv
    skips = steps * branches * width  # D s_in, fed real values
    mixer = skips * _mixer_width(block)
    spiking_in = is_spike_source(block.branches[0].input_spikes)
    spiking_out = is_spike_source(block.branches[0].output_spikes)
    fed_real = (0.0 if spiking_in else skips) + (0.0 if spiking_out else mixer)
    return {"mac": real + fed_real, "dense_mac": real + skips + mixer}


def _mixer_width(block: PSpikeSSMBlock) -> int:
    """The SpikeMixer's output width (0 without a mixer)."""
    return block.mixer.linear.out_features if hasattr(block.mixer, "linear") else 0


def norm_macs_per_step(norm: nn.Module, width: int) -> int:
    """MACs per time step of a normalisation over ``width`` channels: BatchNorm ``width`` (at
    inference a per-channel affine), LayerNorm ``3·width`` (mean, variance, scale), none 0."""
    if isinstance(norm, nn.BatchNorm1d):
        return width
    if isinstance(norm, ChannelLayerNorm | nn.LayerNorm):
        return 3 * width
    if isinstance(norm, nn.Identity):
        return 0
    raise TypeError(f"no energy counting rule for normalisation {type(norm).__name__}")


def fft_conv_macs(length: int) -> float:
    """MACs of one neuron's FFT convolution of a length-``l`` sequence (FFT size n = 2l, the
    minimum without wrap-around; the code may round n up to a faster size).

    A real FFT of size n counts as half a radix-2 complex FFT: ``n·log2(n)`` MACs ((n/2)·log2 n
    butterflies of one complex multiply, 4 real MACs each, halved); forward FFT of the input
    and inverse FFT of the product: ``2·n·log2(n)``; the product of ``n/2 + 1`` complex bins:
    ``4·(n/2 + 1)``.
    """
    n = 2 * length
    return 2.0 * n * math.log2(n) + 4.0 * (n // 2 + 1)
