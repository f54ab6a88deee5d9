"""``pspikessm report``: a folder with a finished, a preempted, a failed and an older run (no
summary.json) gives one row each; RunSummary writes the summary.json the report reads."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.tensorboard import SummaryWriter

from helpers.scripted_runs import ScriptedAccuracy, loader
from pspikessm.callbacks import RunSummary
from pspikessm.callbacks.run_status import STATUS_FILE, update_status
from pspikessm.cli import main
from pspikessm.cli.report import PUBLISHED, configs_of


def fabricate_run(run_dir: Path, val_acc: list[float], status: dict | None, test=None) -> None:
    """A run folder as fit writes it: events (one validation per epoch, 10 steps each),
    config.yaml, checkpoints/last.ckpt and (unless ``status`` is None) summary.json."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run_dir / "config.yaml").write_text("# pspikessm fit: config.yaml\nseed_everything: 0\n")
    writer = SummaryWriter(str(run_dir))
    for epoch, value in enumerate(val_acc):
        step = 10 * (epoch + 1) - 1
        writer.add_scalar("val/acc", value, step)
        writer.add_scalar("val/acc_best", max(val_acc[: epoch + 1]), step)
        writer.add_scalar("epoch", epoch, step)
        writer.add_scalar("sparsity/val/rate", 0.2 + 0.01 * epoch, step)
    if test is not None:
        writer.add_scalar("test/acc", test, 10 * len(val_acc))
        writer.add_scalar("energy/saving", 3.25, 10 * len(val_acc))
    writer.close()
    if status is not None:
        update_status(run_dir, **status)


def command(*configs: str) -> str:
    return "pspikessm fit " + " ".join(f"--config {c}" for c in configs) + " --ckpt_path last"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    best = {"metric": "val/acc", "value": 0.61, "epoch": 1}
    fabricate_run(
        logs / "psmnist" / "slurm-7_1",
        [0.4, 0.61, 0.58],
        {"status": "finished", "task": "psmnist", "attempts": 2, "seconds": 3725.0,
         "global_step": 30, "best": best, "command": command("configs/mnist/psmnist.yaml"),
         "test": {"test/acc": 0.6, "energy/saving": 3.25}},
        test=0.6,
    )  # fmt: skip
    fabricate_run(
        logs / "lra-listops" / "slurm-7_0",
        [0.3, 0.35],
        {"status": "preempted", "task": "lra-listops", "attempts": 1, "seconds": 86.0,
         "global_step": 20, "command": command("configs/lra/listops.yaml",
                                               "configs/model/fast.yaml", "configs/trainer/gpu.yaml"),
         "best": {"metric": "val/acc", "value": 0.35, "epoch": 1}},
    )  # fmt: skip
    fabricate_run(
        logs / "speech-sc10" / "version_0",
        [0.1],
        {"status": "failed", "task": "speech-sc10", "attempts": 1, "seconds": 5.0,
         "global_step": 3, "error": "NonFiniteLossError: loss is nan at step 3",
         "command": command("configs/speech/sc10.yaml")},
    )  # fmt: skip
    fabricate_run(logs / "quickstart" / "version_0", [0.2, 0.45, 0.4], None)  # before summary.json
    return logs


def test_the_report_has_a_row_per_run_with_its_status(logs, capsys, monkeypatch):
    monkeypatch.chdir(logs.parent)
    main(["report", "--csv"])  # default: ./logs
    rows = {row["folder"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert set(rows) == {
        "lra-listops/slurm-7_0", "psmnist/slurm-7_1", "quickstart/version_0",
        "speech-sc10/version_0",
    }  # fmt: skip
    finished, preempted = rows["psmnist/slurm-7_1"], rows["lra-listops/slurm-7_0"]
    failed, older = rows["speech-sc10/version_0"], rows["quickstart/version_0"]
    assert [r["status"] for r in (finished, preempted, failed, older)] == [
        "finished", "preempted", "failed", "unknown",
    ]  # fmt: skip
    assert (finished["task"], finished["config"], finished["overlays"]) == (
        "psmnist", "configs/mnist/psmnist.yaml", "",
    )  # fmt: skip
    assert float(finished["best_val_acc"]) == pytest.approx(0.61) and finished["best_epoch"] == "1"
    assert float(finished["test_acc"]) == pytest.approx(0.6)
    assert float(finished["energy_ratio"]) == pytest.approx(3.25)
    assert float(finished["firing_rate"]) == pytest.approx(0.22)  # the last validation's
    assert (finished["steps"], finished["seconds"], finished["paper"]) == ("30", "3725.0", "98.4")
    assert preempted["overlays"] == "configs/model/fast.yaml configs/trainer/gpu.yaml"
    assert preempted["test_acc"] == "" and preempted["paper"] == ""
    # Without summary.json: the task from the folder, the best and steps from the events.
    assert (older["task"], older["best_epoch"], older["steps"]) == ("quickstart", "1", "29")
    assert float(older["best_val_acc"]) == pytest.approx(0.45)


def test_the_markdown_table(logs, capsys):
    main(["report", str(logs)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| task | config | overlays | steps | best val/acc | epoch |")
    assert len(lines) == 2 + 4
    (psmnist,) = [line for line in lines if line.startswith("| psmnist ")]
    assert "| 0.6100 | 1 | 0.6000 | 0.2200 | 3.25x | 1 h 02 min | finished | 98.4 |" in psmnist


@pytest.mark.parametrize("form", [["--csv"], []])
def test_a_damaged_summary_marks_its_row_and_keeps_the_others(logs, capsys, form):
    corrupt, mistyped = logs / "smnist" / "version_0", logs / "smnist" / "version_1"
    fabricate_run(corrupt, [0.3, 0.5], None)
    (corrupt / STATUS_FILE).write_text('{"status": "finished", "seconds": 12')  # cut short
    fabricate_run(mistyped, [0.3, 0.5], None)
    (mistyped / STATUS_FILE).write_text(
        json.dumps({"status": "finished", "seconds": "an hour", "best": 5, "global_step": "30",
                    "test": {"test/acc": "high"}, "attempts": 1})
    )  # fmt: skip
    main(["report", str(logs), *form])
    captured = capsys.readouterr()
    if form:
        rows = {r["folder"]: r for r in csv.DictReader(io.StringIO(captured.out))}
    else:  # the Markdown table: the status is the 11th column
        lines = captured.out.splitlines()[2:]
        rows = {
            line.split(" | ")[-1].strip(" |"): {"status": line.split(" | ")[10]} for line in lines
        }
    assert len(rows) == 6  # the four good runs and both damaged ones
    assert rows["psmnist/slurm-7_1"]["status"] == "finished"
    assert rows["smnist/version_0"]["status"] == "unknown (bad summary.json)"
    assert rows["smnist/version_1"]["status"] == "finished (bad summary.json)"
    if form:  # what the file got wrong is left out; the events give the best and the steps
        assert float(rows["smnist/version_1"]["best_val_acc"]) == pytest.approx(0.5)
        assert rows["smnist/version_1"]["steps"] == "19"
        assert (
            rows["smnist/version_1"]["seconds"] == "" and rows["smnist/version_1"]["test_acc"] == ""
        )
    errors = captured.err
    assert f"{corrupt / STATUS_FILE}: not valid JSON" in errors
    for field in ("seconds", "best", "global_step", "test"):
        assert f"{mistyped / STATUS_FILE}: '{field}' should be" in errors
    assert "'attempts'" not in errors and "'status'" not in errors


def test_no_runs_and_a_missing_folder_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["report", str(tmp_path)])
    assert exited.value.code == 1 and f"no runs under {tmp_path}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["report", str(tmp_path / "nowhere")])
    assert exited.value.code == 2 and "nowhere is not a folder of runs" in capsys.readouterr().err


def test_config_and_overlays_from_the_command():
    assert configs_of("pspikessm fit --config a.yaml --config=b.yaml --x 1 --config c.yaml") == (
        "a.yaml", "b.yaml c.yaml",
    )  # fmt: skip
    assert configs_of("") == ("", "")
    assert PUBLISHED["speech-sc10"] == 95.6 and PUBLISHED["psmnist"] == 98.4


# --- summary.json as RunSummary writes it -----------------------------------------------------


class StopAt(L.Callback):
    """Raises ``error`` after the second training step."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == 2:
            raise self.error


def fit(tmp_path: Path, *callbacks: L.Callback, max_epochs: int = 2) -> dict:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=TensorBoardLogger(tmp_path, name="run", version=0),
        callbacks=[RunSummary(), *callbacks],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    with contextlib.suppress(RuntimeError, SIGTERMException):  # what StopAt raised
        trainer.fit(ScriptedAccuracy(), loader(), loader())
    return json.loads((tmp_path / "run" / "version_0" / STATUS_FILE).read_text())


def test_a_finished_fit_records_its_status_best_and_time(tmp_path):
    record = fit(tmp_path)
    assert record["status"] == "finished" and record["attempts"] == 1
    assert record["best"] == {"metric": "val/acc", "value": pytest.approx(0.5), "epoch": 1}
    assert record["global_step"] == 4 and record["seconds"] >= 0 and record["task"] == "run"
    assert "error" not in record


@pytest.mark.parametrize(
    ("error", "status"),
    [(SIGTERMException(75), "preempted"), (RuntimeError("boom\nmore"), "failed")],
)
def test_a_stopped_fit_records_why(tmp_path, error, status):
    record = fit(tmp_path, StopAt(error))
    assert record["status"] == status and record["global_step"] == 2
    if status == "failed":
        assert record["error"] == "RuntimeError: boom"


def test_attempts_and_time_add_up_and_test_metrics_are_kept(tmp_path):
    update_status(tmp_path / "run" / "version_0", attempts=1, seconds=100.0, status="preempted")
    record = fit(tmp_path, max_epochs=1)
    assert record["attempts"] == 2 and record["seconds"] >= 100.0
    trainer = L.Trainer(
        accelerator="cpu",
        logger=TensorBoardLogger(tmp_path, name="run", version=0),
        callbacks=[RunSummary()],
        enable_progress_bar=False,
    )
    trainer.test(ScriptedAccuracy(), loader(), verbose=False)
    record = json.loads((tmp_path / "run" / "version_0" / STATUS_FILE).read_text())
    assert record["test"] == {"test/acc": pytest.approx(0.3)} and record["status"] == "finished"
