"""A LightningModule whose metrics are scripted, for the callbacks that read them (the run
summary, the HPARAMS table, the report)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ACCURACIES = [0.2, 0.5, 0.4, 0.45]  # val/acc of epochs 0..3: the best is epoch 1
TEST_ACCURACY = 0.3


class ScriptedAccuracy(L.LightningModule):
    """Logs ``val/acc`` = ``accuracies[epoch]`` and ``test/acc`` = ``test_accuracy``."""

    def __init__(self, accuracies=tuple(ACCURACIES), test_accuracy=TEST_ACCURACY, width=3):
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", self.hparams.accuracies[self.current_epoch])

    def test_step(self, batch, batch_idx):
        self.log("test/acc", self.hparams.test_accuracy)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=1)  # two steps per epoch
