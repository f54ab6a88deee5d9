"""A non-finite loss caused by huge inputs names the input scale, with the magnitude seen,
instead of advising a lower learning rate or clipping."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.cli_args import fast_trainer_args
from pspikessm.cli import cli_main
from pspikessm.runtime.callbacks import NonFiniteLossError, NonFiniteLossStop
from pspikessm.runtime.callbacks.nonfinite import input_magnitude

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "csv_sequences"


def test_input_magnitude_reads_the_float_tensors_of_a_batch():
    tokens = torch.tensor([[3, 70000]])
    assert input_magnitude((tokens, torch.tensor([2]), torch.tensor([1]))) is None
    batch = (torch.tensor([[[1.0], [-3e38]]]), torch.tensor([2]), {"extra": torch.ones(2)})
    assert input_magnitude(batch) == pytest.approx(3e38)
    assert input_magnitude([torch.tensor([1.0, float("nan")])]) == float("inf")


def test_inputs_holding_nan_are_named(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"inputs of this batch hold NaN or inf"):
        fit(tmp_path, torch.tensor([[1.0], [float("nan")]]))


class Squares(L.LightningModule):
    """Loss = mean of (w x + b)^2: infinite once x is near float32's largest value."""

    def __init__(self, poisoned: bool) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.poisoned = poisoned  # a NaN loss that the inputs did not cause

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        return loss * float("nan") if self.poisoned else loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(tmp_path: Path, inputs: torch.Tensor, poisoned: bool = False) -> None:
    data = TensorDataset(inputs)
    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=False, callbacks=[NonFiniteLossStop()],
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(Squares(poisoned), DataLoader(data, batch_size=2))


def test_huge_inputs_are_named_as_the_cause(tmp_path):
    inputs = torch.tensor([[1.0], [2.0], [3e38], [1.0]])  # the second batch holds 3e38
    with pytest.raises(
        NonFiniteLossError, match=r"global step 1 .*\|x\| = 3e\+38: their scale"
    ) as e:
        fit(tmp_path, inputs)
    assert "model.lr" not in str(e.value)


def test_ordinary_inputs_keep_the_learning_rate_advice(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"lowering model\.lr") as e:
        fit(tmp_path, torch.ones(4, 1), poisoned=True)
    assert "scale" not in str(e.value)


@pytest.mark.slow
def test_the_csv_example_without_normalisation_names_the_input_scale(tmp_path, monkeypatch):
    """The issue's case: 3e38 in a CSV (float32's range, so the reader accepts it), read
    with ``normalize: false``."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    data = tmp_path / "data"
    for split, count in (("train", 8), ("val", 2)):
        for label in ("a", "b"):
            folder = data / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                value = 3e38 if label == "b" else 1.0
                (folder / f"{index}.csv").write_text("\n".join([f"{value},{index}"] * 6) + "\n")
    with pytest.raises(NonFiniteLossError, match=r"\|x\| = 3e\+38: their scale is the likely"):
        cli_main(
            [
                "fit", "--config", str(EXAMPLE / "config.yaml"),
                f"--data.init_args.data_dir={data}", "--data.init_args.normalize=false",
                "--data.init_args.batch_size=4", "--trainer.max_epochs=1",
                "--trainer.callbacks=[]", "--trainer.enable_progress_bar=false",
                *fast_trainer_args(tmp_path),
            ]
        )  # fmt: skip
