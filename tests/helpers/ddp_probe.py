"""A test-only callback: what each process sees when training starts and ends (JSON per rank).

Used by ``test_scaleout.py`` through ``--trainer.callbacks+=helpers.ddp_probe.RankProbe`` with
``tests/`` on PYTHONPATH; writes ``$PSPIKESSM_PROBE_DIR/rank{r}.json``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


def _weights_sum(module: L.LightningModule) -> float:
    return float(sum(p.detach().double().sum() for p in module.parameters()))


class RankProbe(Callback):
    """Records the weights' checksum and the next spike-stream draws per process."""

    def __init__(self) -> None:
        self.record: dict = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step > 0 or batch_idx > 0:
            return
        state = torch.get_rng_state()
        self.record["next_draws"] = torch.rand(8).tolist()
        torch.set_rng_state(state)  # observe the stream without moving it
        self.record["weights_at_start"] = _weights_sum(pl_module)
        self.record["world_size"] = trainer.world_size
        self.record["per_process_batch"] = int(batch[2].numel())

    def on_train_end(self, trainer, pl_module) -> None:
        self.record["weights_at_end"] = _weights_sum(pl_module)
        out = Path(os.environ["PSPIKESSM_PROBE_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record))
