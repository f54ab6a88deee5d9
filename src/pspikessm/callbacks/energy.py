"""EnergyEstimate: ACs, MACs and energy per layer of a P-SpikeSSM, logged at test time."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

from pspikessm.callbacks.energy_counts import (
    OperationCounts,
    block_operation_counts,
    norm_macs_per_step,
    spike_fan_outs,
)
from pspikessm.callbacks.energy_table import publish_table
from pspikessm.callbacks.spike_sources import ForwardHooks, source_name
from pspikessm.models.backbone import PSpikeSSM
from pspikessm.models.block import PSpikeSSMBlock

TOTAL = "total"


class EnergyEstimate(L.Callback):
    """Counts the operations of every P-SpikeSSM block (and encoder/head) during test.

    Counting rules: :mod:`pspikessm.callbacks.energy_counts` (0.9 pJ/AC, 4.6 pJ/MAC; ACs from
    the actual spikes × fan-out, MACs for real-valued operations, the SSM convolution counted
    as the FFT convolution). Active in ``test`` and in a stand-alone ``validate``; forward
    hooks are registered in ``setup`` and removed in ``teardown``; counts are summed across
    processes.

    Logged with ``pl_module.log`` at the end of the epoch, per sequence, for each row ``R``
    (``encoder``, ``layer{i}``, ``head``, ``total``): ``energy/R/ac``, ``energy/R/mac``,
    ``energy/R/nj`` (spiking energy, nJ), ``energy/R/dense_mac`` and ``energy/R/dense_nj``
    (the same network non-spiking); and ``energy/saving`` (non-spiking / spiking energy).
    The table is printed on rank zero and kept in :attr:`table` (a list of row dicts); with a
    logger it is also written to the run folder as ``energy.csv`` and, for TensorBoard, as
    the text ``energy/table`` (:mod:`~pspikessm.callbacks.energy_table`).
    """

    def __init__(self) -> None:
        self.table: list[dict[str, float]] = []
        self._rows: list[str] = []
        self._hooks = ForwardHooks()
        self._counts: OperationCounts | None = None
        self._active = False

    # --- hooks ------------------------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._hooks.remove()
        backbones = [(n, m) for n, m in pl_module.named_modules() if isinstance(m, PSpikeSSM)]
        blocks = [(n, m) for n, m in pl_module.named_modules() if isinstance(m, PSpikeSSMBlock)]
        if not blocks:
            rank_zero_warn(
                f"EnergyEstimate: {type(pl_module).__name__} has no PSpikeSSM blocks; "
                "nothing will be counted"
            )
            return
        prefix = len(backbones) > 1  # e.g. two encoders: row names keep their module path
        rows: list[str] = []

        def row(name: str) -> int:
            rows.append(name)
            return len(rows) - 1

        for name, backbone in backbones:
            base = f"{name}/" if prefix else ""
            self._hooks.add(backbone, self._encoder_hook(backbone, row(base + "encoder")))
        for name, block in blocks:
            index = row(_block_row(name, prefix or not backbones))
            self._hooks.add(block, self._block_hook(block, index))
            for neuron, fan_out in spike_fan_outs(block):
                self._hooks.add(neuron, self._spike_hook(index, fan_out))
        for name, backbone in backbones:
            base = f"{name}/" if prefix else ""
            self._hooks.add(backbone, self._head_hook(backbone, row(base + "head")))
        self._rows = rows
        self._counts = OperationCounts(len(rows))

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._hooks.remove()
        self._counts = None

    def _encoder_hook(self, backbone: PSpikeSSM, index: int):
        def hook(module, args, kwargs, output) -> None:
            if not self._active:
                return
            lengths = _batch_lengths(args, kwargs)
            encoder = backbone.encoder
            per_step = encoder.in_features * encoder.out_features if _is_linear(encoder) else 0
            macs = per_step * float(lengths.sum())
            self._counts.update(index, mac=macs, dense_mac=macs)
            self._counts.add_sequences(lengths.shape[0])  # examples (a pair counts once)

        return hook

    def _head_hook(self, backbone: PSpikeSSM, index: int):
        def hook(module, args, kwargs, output) -> None:
            if not self._active:
                return
            lengths = _batch_lengths(args, kwargs)
            encoder = backbone.encoder
            width = encoder.out_features if _is_linear(encoder) else encoder.embedding_dim
            macs = norm_macs_per_step(backbone.final_norm, width) * float(lengths.sum())
            # The decoder (a Linear, or the retrieval MLP) runs once per example.
            per_example = sum(
                m.in_features * m.out_features for m in backbone.decoder.modules() if _is_linear(m)
            )
            macs += per_example * lengths.shape[0]
            self._counts.update(index, mac=macs, dense_mac=macs)

        return hook

    def _block_hook(self, block: PSpikeSSMBlock, index: int):
        def hook(module, args, kwargs, output) -> None:
            if not self._active:
                return
            x = args[0]  # (B H L)
            mask = args[1] if len(args) > 1 else kwargs.get("mask")
            lengths = (
                torch.full((x.shape[0],), x.shape[-1]) if mask is None else mask.sum(dim=(1, 2))
            ).cpu()
            self._counts.update(index, **block_operation_counts(block, lengths))

        return hook

    def _spike_hook(self, index: int, fan_out: int):
        def hook(module, args, kwargs, output) -> None:
            if self._active:
                # |s|: a signed neuron's OFF spikes (-1) trigger ACs too; padding is zero.
                spikes = float(output.detach().abs().sum(dtype=torch.float64))
                self._counts.update(index, ac=spikes * fan_out)

        return hook

    # --- stages -------------------------------------------------------------------------------

    def _start(self, pl_module: L.LightningModule) -> None:
        if self._counts is not None:
            self._counts = self._counts.to(pl_module.device)  # NCCL reduces device tensors
            self._counts.reset()
            self._active = True

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._start(pl_module)

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._finish(pl_module, "test")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not trainer.sanity_checking:
            self._start(pl_module)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self._active:
            self._finish(pl_module, "val")

    def _finish(self, pl_module: L.LightningModule, split: str) -> None:
        self._active = False
        if self._counts is None:
            return
        result = self._counts.compute()  # summed over processes
        self.table = []
        for i, name in enumerate([*self._rows, TOTAL]):
            if name == TOTAL:
                values = {key: float(value.sum()) for key, value in result.items()}
            else:
                values = {key: float(value[i]) for key, value in result.items()}
            entry = {
                "row": name,
                "ac": values["ac"],
                "mac": values["mac"],
                "nj": values["pj"] / 1e3,
                "dense_mac": values["dense_mac"],
                "dense_nj": values["dense_pj"] / 1e3,
            }
            self.table.append(entry)
            for key in ("ac", "mac", "nj", "dense_mac", "dense_nj"):
                pl_module.log(f"energy/{name}/{key}", entry[key], on_epoch=True, batch_size=1)
        total = self.table[-1]
        saving = total["dense_nj"] / total["nj"] if total["nj"] > 0 else float("nan")
        pl_module.log("energy/saving", saving, on_epoch=True, batch_size=1)
        publish_table(pl_module.trainer, self.table, split)


def _block_row(name: str, qualified: bool) -> str:
    """The table row of the block at module path ``name``: ``layer{i}`` (the spike sources'
    naming rule, :func:`source_name`), or the path with dots → ``_`` when ``qualified``."""
    return name.replace(".", "_") if qualified else source_name(name)


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear)


def _batch_lengths(args: tuple, kwargs: dict) -> torch.Tensor:
    """Valid steps of a backbone call ``(inputs, lengths)``, on the CPU: (B,), or (B, 2) for
    pairs of documents."""
    inputs = args[0] if args else kwargs["inputs"]
    lengths = args[1] if len(args) > 1 else kwargs.get("lengths")
    if lengths is None:
        return torch.full((inputs.shape[0],), inputs.shape[1])
    return lengths.detach().cpu()
