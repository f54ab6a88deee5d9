"""The reported accuracy is the fraction of correct predictions, as LRA and the paper report it
(not torchmetrics' default per-class average)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from pspikessm.data.collate import pad_collate
from pspikessm.module import SequenceClassifier


class AlwaysFirstClass(nn.Module):
    """Predicts class 0 for every sequence: (B, L) tokens → (B, 3) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([5.0, 0.0, 0.0]))

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.bias.expand(inputs.shape[0], -1)


def test_val_and_test_accuracy_are_the_fraction_correct():
    targets = [0, 0, 0, 1, 0, 0, 2, 0]  # 6 of 8 are class 0: plain accuracy 0.75
    items = [(torch.ones(4, dtype=torch.long), t) for t in targets]
    loader = DataLoader(items, batch_size=4, collate_fn=pad_collate)
    model = SequenceClassifier(AlwaysFirstClass(), num_classes=3, scheduler="constant")
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (val,) = trainer.validate(model, dataloaders=loader, verbose=False)
    (test,) = trainer.test(model, dataloaders=loader, verbose=False)
    assert val["val/acc"] == test["test/acc"] == 0.75  # the per-class mean would be 1/3
