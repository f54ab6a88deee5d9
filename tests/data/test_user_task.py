"""A user's own task, written outside the package, trains through the CLI by class_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from helpers.cli_args import fast_trainer_args
from pspikessm.cli import cli_main, main
from pspikessm.data.protocol import protocol_value
from pspikessm.module import SequenceClassifier

# A plain LightningDataModule (not pspikessm's base class) and a minimal backbone that has
# num_classes but neither vocab_size nor d_input.
USER_MODULE = '''
import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from pspikessm.data.collate import pad_collate


class ParityTask(L.LightningDataModule):
    """Token sequences; the label is the count of token 1, modulo 3."""

    num_classes = 3

    def __init__(self, vocab: int = 6, size: int = 24, batch_size: int = 8):
        super().__init__()
        self.vocab_size = vocab  # set in __init__: the CLI reads it before setup()
        self.size, self.batch_size = size, batch_size

    def _loader(self):
        generator = torch.Generator().manual_seed(0)
        items = []
        for _ in range(self.size):
            tokens = torch.randint(0, self.vocab_size, (int(torch.randint(5, 12, (1,))),))
            items.append((tokens, int((tokens == 1).sum()) % 3))
        return DataLoader(items, batch_size=self.batch_size, collate_fn=pad_collate)

    train_dataloader = val_dataloader = _loader


class NoClasses(ParityTask):
    num_classes = None


class MeanPool(nn.Module):
    """A user backbone: embedding, mean over time, linear head."""

    def __init__(self, num_classes: int = 2, width: int = 8):
        super().__init__()
        self.embed = nn.Embedding(6, width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, inputs, lengths=None):
        return self.head(self.embed(inputs).mean(dim=1))
'''

USER_CONFIG = """
# Trains: a user task from outside the package (test).
# Reproduces: nothing.
trainer:
  max_steps: 3
  limit_val_batches: 1
  logger:
    class_path: lightning.pytorch.loggers.TensorBoardLogger
    init_args: {save_dir: logs, name: user}
model:
  backbone:
    class_path: pspikessm.models.PSpikeSSM
    init_args: {d_model: 8, n_layers: 1, block: {d_state: 4}}
  scheduler: constant
data:
  class_path: user_task_a.ParityTask
  init_args: {vocab: 7}
"""


def write_user_task(folder: Path, module_name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write the user module and YAML into ``folder`` and make the module importable."""
    (folder / f"{module_name}.py").write_text(textwrap.dedent(USER_MODULE))
    config = folder / "user.yaml"
    config.write_text(USER_CONFIG.replace("user_task_a", module_name))
    monkeypatch.syspath_prepend(str(folder))
    return config


def test_user_data_module_trains_by_class_path_with_links(tmp_path, monkeypatch):
    config = write_user_task(tmp_path, "user_task_a", monkeypatch)
    cli = cli_main(["fit", "--config", str(config), *fast_trainer_args(tmp_path)])
    backbone = cli.model.backbone
    assert cli.trainer.global_step == 3
    assert type(cli.datamodule).__module__ == "user_task_a"
    # The links came from the user's data module, not from defaults.
    assert backbone.encoder.num_embeddings == 7
    assert backbone.decoder.out_features == 3
    assert cli.model.hparams.num_classes == 3
    saved = next((tmp_path / "logs" / "user").glob("version_*/config.yaml")).read_text()
    assert "user_task_a.ParityTask" in saved
    assert list((tmp_path / "logs" / "user").glob("version_*/checkpoints/last.ckpt"))


def test_user_backbone_without_vocab_size_or_d_input(tmp_path, monkeypatch):
    config = write_user_task(tmp_path, "user_task_b", monkeypatch)
    args = ["--model.backbone=user_task_b.MeanPool", "--model.backbone.init_args.width=4"]
    cli = cli_main(["--config", str(config), *args, *fast_trainer_args(tmp_path)], run=False)
    assert cli.model.backbone.head.out_features == 3  # num_classes linked, the others skipped


@pytest.mark.slow  # fit then reload; the user module trains fast
def test_checkpoint_of_a_backbone_without_linked_parameters_reloads(tmp_path, monkeypatch):
    config = write_user_task(tmp_path, "user_task_d", monkeypatch)
    args = ["--config", str(config), "--model.backbone=user_task_d.MeanPool", "--data.vocab=6"]
    fit = cli_main(["fit", *args, *fast_trainer_args(tmp_path)])
    checkpoint = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    saved = torch.load(checkpoint, weights_only=True)["hyper_parameters"]["backbone"]
    assert saved["init_args"] == {"num_classes": 3, "width": 8}  # no vocab_size/d_input
    validate = cli_main(
        ["validate", *args, f"--ckpt_path={checkpoint}", *fast_trainer_args(tmp_path)]
    )
    assert "val/acc" in validate.trainer.callback_metrics
    reloaded = SequenceClassifier.load_from_checkpoint(checkpoint)
    assert reloaded.backbone.head.out_features == 3


def test_missing_num_classes_is_a_clear_error(tmp_path, monkeypatch):
    config = write_user_task(tmp_path, "user_task_c", monkeypatch)
    args = ["--data=user_task_c.NoClasses", *fast_trainer_args(tmp_path)]
    with pytest.raises(
        AttributeError, match=r"user_task_c\.NoClasses has no `num_classes`"
    ) as raised:
        cli_main(["--config", str(config), *args], run=False)
    assert "compute_fn" not in str(raised.value)  # not wrapped in jsonargparse's link error


@pytest.mark.slow  # fit then energy
def test_energy_takes_a_user_data_module_that_fit_takes(tmp_path, monkeypatch, capsys):
    config = write_user_task(tmp_path, "user_task_e", monkeypatch)
    args = ["--config", str(config), *fast_trainer_args(tmp_path)]
    cli_main(["fit", *args])
    capsys.readouterr()
    main(["energy", *args, "--ckpt_path", "last", "--split", "val"])
    assert "non-spiking / spiking energy" in capsys.readouterr().out


class _Data:
    num_classes = 4


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("num_classes", 0, ValueError),
        ("num_classes", 2.0, TypeError),
        ("num_classes", True, TypeError),
        ("vocab_size", -1, ValueError),
        ("d_input", 0, ValueError),
        ("dual_input", 1, TypeError),
    ],
)
def test_protocol_rejects_bad_values(name, value, error):
    data = _Data()
    setattr(data, name, value)
    with pytest.raises(error, match=f"test_user_task._Data.*`{name}`"):
        protocol_value(data, name)


def test_protocol_defaults():
    assert protocol_value(_Data(), "num_classes") == 4
    assert protocol_value(_Data(), "vocab_size") == 0
    assert protocol_value(_Data(), "d_input") == 1
    assert protocol_value(_Data(), "dual_input") is False
