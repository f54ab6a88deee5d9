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
  convolution the code runs (:func:`pspikessm.models.convolution.fft_conv_macs`),
  ``b·H·fft_conv_macs(l)``.
- block, operations fed by binary spikes (ACs when spiking; MACs when non-spiking), per
  branch: the D skip ``D s_in``: 1 AC per input spike (``H·l`` MACs non-spiking); the
  SpikeMixer ``W s_out`` (b·H → H_out): ``H_out`` ACs per output spike (its fan-out)
  (``H·H_out·l`` MACs non-spiking). Without a mixer the output spikes are added to the
  residual stream, which is not counted: fan-out 0.
- head: final norm (pre-norm models) as above; decoder ``H·C`` MACs per sequence.
- not counted: biases and residual additions, elementwise nonlinearities (GELU, clamp),
  spike sampling (a comparison), dropout, mean pooling, and the kernel generation and kernel
  FFT (they depend on the weights only and are computed once per length at inference).

Each block counts its own MACs by these rules (:meth:`PSpikeSSMBlock.operation_counts`) and
names its spiking neurons with their fan-outs (:meth:`PSpikeSSMBlock.spike_fan_outs`). Spike
counts come from the actual spikes of each run; with samplers in
``eval_mode="expected"`` they are firing probabilities, so ACs are expected counts.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

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
