"""``pspikessm predict`` writes its predictions to a CSV file in the run folder."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from pspikessm.files import atomic_write_text


def predictions_folder(trainer: L.Trainer) -> Path:
    """The run folder of the checkpoint (``<run>/checkpoints/x.ckpt`` → ``<run>``), else the
    trainer's log folder, else the working directory."""
    if trainer.ckpt_path:
        checkpoint = Path(trainer.ckpt_path)
        if checkpoint.parent.name == "checkpoints":
            return checkpoint.parent.parent
        return checkpoint.parent
    return Path(trainer.log_dir or ".")


class PredictionWriter(Callback):
    """Write what ``predict`` computes to ``<run folder>/predictions-<split>.csv``.

    One row per example, in the loader's order: ``index`` (the example's position in the
    split), ``predicted`` (the class with the highest probability) and ``p0 .. p<C-1>`` (the
    class probabilities under the model's ``eval_mode``). The split is the data module's
    ``predict_split`` (``test`` for the built-in tasks: ``predict_dataloader`` is the test
    loader); the command says which split it reads and where the file is. A file from an
    earlier ``predict`` of the same run and split is replaced (atomically). With several
    processes each writes its share to ``predictions-<split>-rank<r>.csv``; ``index`` then
    counts within that share.
    """

    def __init__(self) -> None:
        self._rows: list[torch.Tensor] = []
        self.path: Path | None = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows = []
        split = getattr(trainer.datamodule, "predict_split", "test")
        suffix = f"-rank{trainer.global_rank}" if trainer.world_size > 1 else ""
        self.path = predictions_folder(trainer) / f"predictions-{split}{suffix}.csv"
        rank_zero_info(f"predict: reading the {split} split; predictions go to {self.path}")

    def on_predict_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        """``outputs``: class probabilities (B, C) from ``predict_step``."""
        if isinstance(outputs, torch.Tensor):
            self._rows.append(outputs.detach().float().cpu())

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.path is None or not self._rows:
            return
        probabilities = torch.cat(self._rows)  # (N, C)
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["index", "predicted", *(f"p{c}" for c in range(probabilities.shape[1]))])
        for index, (row, predicted) in enumerate(
            zip(probabilities, probabilities.argmax(-1), strict=True)
        ):
            writer.writerow([index, int(predicted), *(f"{p:.6g}" for p in row.tolist())])
        atomic_write_text(self.path, text.getvalue())
        self._rows = []
        rank_zero_info(f"predict: wrote {len(probabilities)} predictions to {self.path}")
