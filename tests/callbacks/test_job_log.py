"""Job-log output: with stdout not a terminal, one line per epoch with val/acc and no bar; on a
terminal, the bar and no lines (unless asked)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.callbacks import JobLog, TerminalProgressBar, job_log as job_log_module

ROOT = Path(__file__).resolve().parents[2]
ACCURACIES = [0.2, 0.5, 0.4]


class ScriptedRun(L.LightningModule):
    """Logs train/loss per step and epoch, val/acc = ACCURACIES[epoch] and its best so far."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.best = 0.0

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).sum() * 0 + 1.5
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", ACCURACIES[self.current_epoch])

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.best = max(self.best, ACCURACIES[self.current_epoch])
            self.log("val/acc_best", self.best)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def run(
    tmp_path: Path,
    job_log: JobLog,
    bar: TerminalProgressBar | None = None,
    checkpoint: ModelCheckpoint | None = None,
    ckpt_path: Path | None = None,
) -> None:
    loader = DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=1)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=len(ACCURACIES),
        logger=False,
        enable_checkpointing=checkpoint is not None,
        enable_model_summary=False,
        callbacks=[job_log, bar or TerminalProgressBar(), *([checkpoint] if checkpoint else [])],
        default_root_dir=tmp_path,
    )
    trainer.fit(ScriptedRun(), loader, loader, ckpt_path=ckpt_path)


def test_one_line_per_epoch_when_stdout_is_not_a_terminal(tmp_path, capsys):
    bar = TerminalProgressBar()
    assert bar.is_disabled  # capsys's stdout is no terminal
    run(tmp_path, JobLog(every_minutes=0), bar)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == len(ACCURACIES)
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch}/3 step {4 * (epoch + 1)} | train/loss 1.5000")
        best = max(ACCURACIES[: epoch + 1])
        assert f"| val/acc {ACCURACIES[epoch]:.4f} (best {best:.4f}) |" in line
        assert re.search(r"\| \d+ s/epoch \| left ~\d+ s$", line), line


def test_lines_inside_a_long_epoch(tmp_path, capsys, monkeypatch):
    # A clock that moves 100 s per call: every batch is "minutes" after the previous line.
    ticks = iter(range(0, 10**6, 100))
    monkeypatch.setattr(job_log_module, "_clock", lambda: float(next(ticks)))
    run(tmp_path, JobLog(every_minutes=1.0))
    lines = capsys.readouterr().out.splitlines()
    inside = [line for line in lines if "into the epoch" in line]
    assert inside and all(re.search(r"\| batch [1-4]/4 \|", line) for line in inside)
    assert "train/loss 1.5000" in inside[0]


def test_an_epoch_resumed_part_way_is_timed_from_the_resume(tmp_path, capsys, monkeypatch):
    # A checkpoint after global step 6: batch 2 of the 4 of epoch 1.
    saved = ModelCheckpoint(tmp_path, "at-{step}", every_n_train_steps=6, save_top_k=-1)
    run(tmp_path, JobLog(every_minutes=0), checkpoint=saved)
    checkpoint = tmp_path / "at-step=6.ckpt"
    capsys.readouterr()
    # The machine has been up for 11 days; the clock then moves 1 s per reading.
    ticks = iter(range(10**6, 10**7))
    monkeypatch.setattr(job_log_module, "_clock", lambda: float(next(ticks)))
    run(tmp_path, JobLog(every_minutes=0), ckpt_path=checkpoint)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line.split(" step ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3"]
    per_epoch = [int(re.search(r"\| (\d+) s/epoch \|", line)[1]) for line in lines]
    # Epoch 1: its last 2 of 4 batches in a few readings of the clock, counted as half an
    # epoch; never the time since the clock's zero (the machine's uptime).
    assert 0 < per_epoch[0] < 60 and 0 < per_epoch[1] < 60, lines


def test_on_a_terminal_the_bar_draws_and_the_log_is_quiet(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(job_log_module, "stdout_is_terminal", lambda: True)
    assert TerminalProgressBar().is_enabled
    assert not JobLog().active() and JobLog(when="always").active()


def test_bad_options_name_the_option():
    with pytest.raises(ValueError, match=r"JobLog\(when='sometimes'\)"):
        JobLog(when="sometimes")
    with pytest.raises(ValueError, match=r"every_minutes=-1"):
        JobLog(every_minutes=-1)


@pytest.mark.slow
def test_quickstart_redirected_to_a_file_logs_every_epoch(tmp_path, listops_dir):
    """``pspikessm fit --config configs/quickstart.yaml > log.txt``, shrunk."""
    log = tmp_path / "log.txt"
    command = [
        sys.executable, "-m", "pspikessm", "fit",
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}", "--data.init_args.batch_size=16",
        *tiny_model_args(), *fast_trainer_args(tmp_path),
        "--trainer.max_epochs=2", "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    with log.open("w") as stdout:
        result = subprocess.run(command, env=env, cwd=tmp_path, stdout=stdout, timeout=300)
    text = log.read_text()
    assert result.returncode == 0, text[-3000:]
    lines = [line for line in text.splitlines() if re.match(r"epoch \d+/2 step", line)]
    assert [line.split(" step ")[0] for line in lines] == ["epoch 0/2", "epoch 1/2"]
    for line in lines:
        assert re.search(r"\| val/acc 0\.\d{4} \(best 0\.\d{4}\) \| firing rate 0\.\d{3} \|", line)
        assert "train/loss" in line and "s/epoch" in line
    assert "━" not in text  # no frame of the rich bar
