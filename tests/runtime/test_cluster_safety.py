"""Runs on a shared cluster (issue 25): one run per folder, no NaN checkpoint called good, exact
mid-epoch resume without ``total_steps``, files the group can read, exit 75 on every
preemption path, ``last`` from the run that owns the newest checkpoint, impossible sizes
refused at configuration time, and clear messages for a full disk, a half-generated data set,
a ``data_dir`` that is no folder, predictions and float32 overflow."""

from __future__ import annotations

import csv
import errno
import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import Callback

from helpers.cli_args import fast_trainer_args, tiny_model_args, toy_quickstart_args
from helpers.cli_process import cli_process, run_cli
from pspikessm import files
from pspikessm.cli import cli_main, main
from pspikessm.data import ListOpsDataModule
from pspikessm.data.cache import write_cache
from pspikessm.data.listops_generator import ListOpsGeneratorConfig
from pspikessm.files import DiskFullError, atomic_write, file_mode
from pspikessm.runtime.callbacks import PREEMPTED_EXIT_CODE, NonFiniteLossError
from pspikessm.runtime.registration import prepare_run
from pspikessm.runtime.run_folder import LOCK, RunFolderTaken, find_last_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def quickstart_args(listops_dir: Path, tmp_path: Path, max_epochs: int = 1) -> list[str]:
    """The toy quickstart with ``total_steps`` left unset (issue 25's exact-resume case)."""
    return toy_quickstart_args(listops_dir, tmp_path, max_epochs)


# --- 1. One run per folder --------------------------------------------------------------------


@pytest.mark.slow
def test_runs_started_together_get_separate_folders(listops_dir, tmp_path):
    args = [*quickstart_args(listops_dir, tmp_path), "--trainer.limit_train_batches=2"]
    processes = [cli_process(args) for _ in range(3)]  # started together
    assert [process.wait(timeout=600) for process in processes] == [0, 0, 0]
    runs = sorted((tmp_path / "logs" / "quickstart").iterdir())
    assert [run.name for run in runs] == ["version_0", "version_1", "version_2"]
    for run in runs:  # each a whole run: its config, its checkpoint, no lock left
        assert (run / "config.yaml").is_file()
        assert (run / "checkpoints" / "last.ckpt").is_file()
        assert not (run / LOCK).exists()


def test_a_taken_fixed_version_is_an_error_naming_the_holder(listops_dir, tmp_path):
    run = tmp_path / "logs" / "quickstart" / "mine"
    run.mkdir(parents=True)
    holding = (  # another run's process: it holds the folder's lock until it is killed
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(run / LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, f'process {os.getpid()} on here'.encode())\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", holding], stdout=subprocess.PIPE, text=True)
    args = [*quickstart_args(listops_dir, tmp_path), "--trainer.logger.init_args.version=mine"]
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderTaken, match=rf"in use by process {holder.pid} on here"):
            cli_main(args)
        assert sorted(p.name for p in run.iterdir()) == [LOCK]  # nothing of it touched
    finally:
        holder.kill()  # SIGKILL: no clean-up, the kernel drops its lock
        holder.wait()
    # Its holder gone (killed, as a requeued job's previous attempt), the next start runs.
    cli_main([*args, "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not (run / LOCK).exists()  # released at the end


# --- 2. Non-finite weights never reach a checkpoint -------------------------------------------


class PoisonGradients(Callback):
    """Make every gradient NaN at one global step: the loss was finite, the update is not."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_after_backward(self, trainer, pl_module) -> None:
        if trainer.global_step == self.step:
            for parameter in pl_module.parameters():
                if parameter.grad is not None:
                    parameter.grad.fill_(float("nan"))


@pytest.mark.slow
def test_non_finite_weights_stop_the_run_before_any_save(listops_dir, tmp_path):
    cli = cli_main(quickstart_args(listops_dir, tmp_path, max_epochs=2)[1:], run=False)
    cli.trainer.callbacks.insert(0, PoisonGradients(step=11))  # the second epoch's last step
    last = tmp_path / "logs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    message = r"non-finite weights after the optimiser step .* global step 12 \(epoch 1, batch 5\)"
    with pytest.raises(NonFiniteLossError, match=message) as stopped:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert f"Last good checkpoint: {last}" in str(stopped.value)
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 6  # the first epoch's: the NaN state was never saved
    assert all(torch.isfinite(t).all() for t in saved["state_dict"].values())


# --- 3. Exact mid-epoch resume without total_steps --------------------------------------------


def lra_listops_args(listops_dir: Path, tmp_path: Path) -> list[str]:
    """configs/lra/listops.yaml, toy-sized, its total_steps unset: 6 steps per epoch."""
    return [
        "fit",
        "--config", str(ROOT / "configs" / "lra" / "listops.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.batch_size=16",
        "--data.init_args.eval_batch_size=8",
        "--data.init_args.num_workers=0",
        "--model.total_steps=null",
        "--model.warmup_steps=2",
        "--trainer.max_epochs=2",
        "--trainer.max_steps=-1",
        "--trainer.callbacks=[]",
        "--trainer.enable_progress_bar=false",
        "--trainer.logger.init_args.name=quickstart",
        *fast_trainer_args(tmp_path),
        *tiny_model_args(),
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("config", ["quickstart", "lra_listops"])
def test_mid_epoch_resume_without_total_steps_is_exact(listops_dir, tmp_path, config):
    if config == "quickstart":
        args = quickstart_args(listops_dir, tmp_path / "x", max_epochs=2)
    else:
        args = lra_listops_args(listops_dir, tmp_path / "x")

    def for_folder(folder: Path) -> list[str]:
        return [a.replace(str(tmp_path / "x"), str(folder)) for a in args]

    # Every attempt in a fresh interpreter, the uninterrupted run too: bit-identity is
    # between runs started alike (thread settings of this test process differ).
    whole = tmp_path / "whole"
    assert run_cli(for_folder(whole)) == 0
    parts = tmp_path / "parts"
    status = run_cli(
        [*for_folder(parts), "--trainer.callbacks+=helpers.fault_injection.InjectFault"],
        "SIGTERM:train:8",
    )
    assert status == PREEMPTED_EXIT_CODE
    checkpoint = parts / "logs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 9  # mid-epoch 2
    assert run_cli([*for_folder(parts), "--ckpt_path", "last"]) == 0

    expected = torch.load(
        whole / "logs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True
    )
    resumed = torch.load(checkpoint, weights_only=True)
    assert resumed["global_step"] == expected["global_step"] == 12
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor), name
    assert torch.equal(resumed["rng_state"]["torch"], expected["rng_state"]["torch"])


# --- 4. Files with the user's umask -----------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_written_files_get_the_umask_mode(tmp_path, umask):
    previous = os.umask(umask)
    try:
        assert file_mode() == 0o666 & ~umask
        atomic_write(tmp_path / "last.ckpt", lambda file: torch.save({"a": 1}, file))
        write_cache(tmp_path / "cache" / "part.pt", {"x": torch.zeros(2)})
    finally:
        os.umask(previous)
    for path in (tmp_path / "last.ckpt", tmp_path / "cache" / "part.pt"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_checkpoints_and_config_records_are_group_readable(listops_dir, tmp_path):
    previous = os.umask(0o022)
    try:
        cli_main(
            [
                *quickstart_args(listops_dir, tmp_path),
                "--trainer.limit_train_batches=1",
                "--trainer.limit_val_batches=1",
            ]
        )
    finally:
        os.umask(previous)
    run = tmp_path / "logs" / "quickstart" / "version_0"
    for path in (run / "config.yaml", run / "checkpoints" / "last.ckpt"):
        assert path.stat().st_mode & 0o777 == 0o644, path


# --- 5. Exit 75 on every preemption path ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["SIGTERM:setup:0", "SIGTERM:repeat:2"])
def test_every_preemption_path_exits_with_75(listops_dir, tmp_path, fault):
    args = [
        *quickstart_args(listops_dir, tmp_path),
        "--trainer.callbacks+=helpers.fault_injection.InjectFault",
    ]
    assert run_cli(args, fault) == PREEMPTED_EXIT_CODE
    run = tmp_path / "logs" / "quickstart" / "version_0"
    if fault.endswith(":setup:0"):  # before training: nothing written, no run folder left
        assert not run.exists()
    else:  # the repeated signal did not cut the stop short: its checkpoint is there
        assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3


# --- 6. `--ckpt_path last`: the run that owns the newest checkpoint, said -----------------------


def last_config(save_dir: Path) -> Namespace:
    logger = Namespace(
        class_path="lightning.pytorch.loggers.TensorBoardLogger",
        init_args=Namespace(save_dir=str(save_dir), name="quickstart", version=None),
    )
    return Namespace(
        trainer=Namespace(logger=logger, default_root_dir=None, precision="32-true"),
        checkpoint=Namespace(dirpath=None),
        ckpt_path="last",
    )


def test_last_is_the_newest_checkpoint_and_says_which(tmp_path, caplog):
    runs = tmp_path / "quickstart"
    for version, age in ((0, 0), (1, 100)):  # version_1's checkpoint is the older one
        checkpoint = runs / f"version_{version}" / "checkpoints" / "last.ckpt"
        checkpoint.parent.mkdir(parents=True)
        checkpoint.write_bytes(b"x")
        os.utime(checkpoint, (time.time() - age, time.time() - age))
    (runs / "version_2").mkdir()  # the newest run stopped before its first checkpoint

    found = find_last_checkpoint(last_config(tmp_path))
    assert found.version == 0
    assert found.newer_without == (runs / "version_2",)

    config = last_config(tmp_path)
    with caplog.at_level(logging.INFO, logger="pspikessm"):
        prepare_run("test", config)
    assert config.ckpt_path == str(runs / "version_0" / "checkpoints" / "last.ckpt")
    said = caplog.text
    assert "version_0: the newest checkpoint" in said
    assert f"{runs / 'version_2'} hold no checkpoint" in said


def test_evaluation_folders_are_not_runs_that_stopped(tmp_path, caplog):
    runs = tmp_path / "quickstart"
    checkpoint = runs / "version_0" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    for version, command in ((1, "test"), (2, "predict"), (3, "validate"), (4, "fit")):
        (runs / f"version_{version}").mkdir()
        header = f"# pspikessm {command}: config.yaml, started 2026-12-05 12:00:00\n"
        (runs / f"version_{version}" / "config.yaml").write_text(header + "seed_everything: 0\n")
    (runs / "version_5").mkdir()  # no record at all: stopped before training started

    found = find_last_checkpoint(last_config(tmp_path))
    assert found.version == 0
    assert found.newer_without == (runs / "version_4", runs / "version_5")


@pytest.mark.slow
def test_test_and_predict_folders_record_the_step_and_count_as_evaluations(
    listops_dir, tmp_path, caplog, capsys
):
    fit = quickstart_args(listops_dir, tmp_path)  # 6 steps
    cli_main(fit)
    for command in ("test", "predict"):
        cli_main([command, *fit[1:], "--ckpt_path", "last"])
    runs = tmp_path / "logs" / "quickstart"
    checkpoint = runs / "version_0" / "checkpoints" / "last.ckpt"
    for version, command in ((1, "test"), (2, "predict")):
        header = (runs / f"version_{version}" / "config.yaml").read_text().splitlines()[:2]
        assert header[0].startswith(f"# pspikessm {command}: config.yaml, started ")
        assert header[1] == f"# from checkpoint {checkpoint} (global step 6)"

    with caplog.at_level(logging.INFO, logger="pspikessm"):
        resumed = cli_main([*quickstart_args(listops_dir, tmp_path, 2), "--ckpt_path", "last"])
    assert resumed.trainer.logger.version == 0 and resumed.trainer.global_step == 12
    assert "stopped before their first save" not in caplog.text

    capsys.readouterr()
    main(["report", str(tmp_path / "logs"), "--csv"])
    rows = {row["folder"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    statuses = {folder: row["status"] for folder, row in rows.items()}
    assert statuses["quickstart/version_1"] == "test only"
    assert statuses["quickstart/version_2"] == "predict only"


# --- 7. Impossible sizes refused at configuration time ----------------------------------------


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("--data.init_args.max_length=0", "data.max_length=0"),
        ("--data.init_args.max_length=-3", "data.max_length=-3"),
        ("--model.backbone.init_args.block.d_state=0", "block.d_state=0"),
        ("--model.backbone.init_args.block.d_state=-2", "block.d_state=-2"),
        ("--model.backbone.init_args.d_model=-4", "d_model=-4"),
        ("--model.warmup_steps=-5", "model.warmup_steps=-5"),
        (
            "--model.backbone.init_args.block.kernel=torch.nn.Linear",
            "block.kernel='torch.nn.Linear'",
        ),
        ("--trainer.precision=16-true", "trainer.precision=16-true"),
        ("--trainer.precision=bf16-true", "trainer.precision=bf16-true"),
    ],
)
@pytest.mark.parametrize("kernel", ["diag", "dplr"])
def test_impossible_sizes_are_refused_naming_the_option(
    listops_dir, tmp_path, override, named, kernel
):
    if kernel == "dplr" and "d_state" not in override:
        return  # the other options do not depend on the kernel
    args = [
        *quickstart_args(listops_dir, tmp_path)[1:],  # run=False: no subcommand
        f"--model.backbone.init_args.block.kernel={kernel}",
        override,
    ]
    with pytest.raises((ValueError, TypeError)) as refused:
        cli_main(args, run=False)
    assert named in str(refused.value)
    assert not (tmp_path / "logs" / "quickstart" / "version_0" / "checkpoints").exists()


# --- 8. Full disk -----------------------------------------------------------------------------


class FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes."""

    def __init__(self, file, room: int) -> None:
        self.file, self.room = file, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_write(path, lambda file: torch.save({"step": 1}, file))
    before = path.read_bytes()
    opened = files._open_temporary
    monkeypatch.setattr(files, "_open_temporary", lambda fd: FullDisk(opened(fd), 100))
    with pytest.raises(DiskFullError, match=rf"no space left on the device of {tmp_path}"):
        atomic_write(path, lambda file: torch.save({"step": 2, "w": torch.zeros(1000)}, file))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left


# --- 9, 10. A half-generated data set; a data_dir that is no folder ----------------------------


def test_an_interrupted_generation_is_generated_again(tmp_path):
    generate = ListOpsGeneratorConfig(num_train=40, num_val=10, num_test=10, max_length=30)
    data = ListOpsDataModule(data_dir=tmp_path / "gen", max_length=32, generate=generate)
    data.prepare_data()
    complete = (tmp_path / "gen" / "basic_test.tsv").read_text()
    (tmp_path / "gen" / "basic_test.tsv").unlink()  # killed before the last split was written
    (tmp_path / "gen" / "basic_test.tsv.tmp").write_text("half a row")
    ListOpsDataModule(data_dir=tmp_path / "gen", max_length=32, generate=generate).prepare_data()
    assert (tmp_path / "gen" / "basic_test.tsv").read_text() == complete


def test_a_data_dir_that_is_no_folder_is_named(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(NotADirectoryError, match=rf"data.data_dir={file} is a file"):
        ListOpsDataModule(data_dir=file)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(NotADirectoryError, match=rf"data.data_dir={loop}: cannot be opened"):
        ListOpsDataModule(data_dir=loop)


# --- 11. predict writes its predictions -------------------------------------------------------


@pytest.mark.slow
def test_predict_writes_a_predictions_file_into_the_run_folder(listops_dir, tmp_path, caplog):
    fit = quickstart_args(listops_dir, tmp_path)
    cli_main([*fit, "--trainer.limit_train_batches=2"])
    # `pspikessm predict --config configs/quickstart.yaml --ckpt_path last`, as typed.
    with caplog.at_level(logging.INFO):
        main(["predict", *fit[1:], "--ckpt_path", "last"])
    path = tmp_path / "logs" / "quickstart" / "version_0" / "predictions-test.csv"
    assert f"reading the test split; predictions go to {path}" in caplog.text
    rows = path.read_text().splitlines()
    assert rows[0] == "index,predicted," + ",".join(f"p{c}" for c in range(10))
    test_rows = len((listops_dir / "listops-1000" / "basic_test.tsv").read_text().splitlines()) - 1
    assert len(rows) == 1 + test_rows
    values = np.array([[float(v) for v in row.split(",")] for row in rows[1:]])
    assert (values[:, 0] == np.arange(test_rows)).all()
    np.testing.assert_allclose(values[:, 2:].sum(axis=1), 1.0, atol=1e-4)
    assert (values[:, 1] == values[:, 2:].argmax(axis=1)).all()


# --- 12. float32 overflow; a stale temporary file -----------------------------------------------


def test_a_stale_temporary_of_a_killed_writer_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = os.uname().nodename
    stale = tmp_path / f".part.pt.{host}.{dead.pid}.abc.tmp"
    live = tmp_path / f".part.pt.{host}.{os.getpid()}.def.tmp"  # a writer still at work
    stale.write_bytes(b"half")
    live.write_bytes(b"half")
    write_cache(tmp_path / "part.pt", {"x": torch.ones(1)})
    assert not stale.exists()
    assert live.exists()
    assert torch.load(tmp_path / "part.pt", weights_only=True)["x"].item() == 1.0


def test_a_value_beyond_float32_names_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "csv_sequences"))
    from csv_sequences import read_sequence

    path = tmp_path / "seq.csv"
    path.write_text("a,b\n1.0,2.0\n3.0,1e308\n")
    with pytest.raises(ValueError, match=rf"{path}:3: a value beyond float32's range"):
        read_sequence(path)
