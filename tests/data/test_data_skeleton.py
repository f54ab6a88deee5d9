"""The skeleton every task shares: downloads in prepare_data only, the cache folder, the
split helper, and data that is partly there is never replaced by a download."""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import pspikessm.data.base as base
from helpers.cli_args import tiny_model_args
from helpers.http_server import serve
from helpers.served_tasks import URL_VARIABLE
from helpers.task_files import tone_clips, write_cifar, write_speech
from pspikessm.data import (
    CIFAR10DataModule,
    IMDBDataModule,
    ListOpsDataModule,
    RetrievalDataModule,
    SpeechCommandsDataModule,
)
from pspikessm.data.cache import UnreadableCache, load_cache
from pspikessm.data.download import CIFAR10, LRA_RELEASE
from pspikessm.data.errors import DataNotFound
from pspikessm.data.splits import seeded_split


def tar_of(folder: Path, arcname: str, mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        archive.add(folder, arcname=arcname)
    return buffer.getvalue()


@pytest.fixture
def no_fetch(monkeypatch):
    """Any download attempt fails the test."""
    monkeypatch.setattr(base, "fetch", lambda *a: pytest.fail("fetched"))


# --- Downloads happen in prepare_data only ----------------------------------------------------


@pytest.mark.parametrize("task", [IMDBDataModule, RetrievalDataModule])
def test_vocab_size_never_downloads(tmp_path, no_fetch, task):
    """The CLI reads vocab_size on every process before prepare_data: it must not fetch."""
    data = task(tmp_path, download=True)
    with pytest.raises(DataNotFound, match=r"pspikessm prepare.*Training cannot download it"):
        _ = data.vocab_size
    assert not list(tmp_path.iterdir())


def test_listops_vocabulary_is_known_without_data(tmp_path, no_fetch):
    data = ListOpsDataModule(tmp_path / "absent", download=True)
    assert data.vocab_size == 18 and not (tmp_path / "absent").exists()


def test_listops_downloads_the_lra_release(tmp_path, listops_dir, monkeypatch):
    """``download=true`` fetches the release (a plain tar) and reads the unpacked
    ``lra_release/listops-1000/`` under ``data_dir``."""
    release = tar_of(listops_dir, "lra_release", mode="w")
    with serve({"lra_release.gz": release}) as served:
        resource = replace(LRA_RELEASE, url=served.url("lra_release.gz"))
        monkeypatch.setattr(ListOpsDataModule, "resources", (resource,))
        data = ListOpsDataModule(tmp_path / "data", download=True)
        data.prepare_data()
        data.prepare_data()  # in place now: no second request
    assert len(served.requests) == 1
    assert data.split_dir() == tmp_path / "data" / "lra_release" / "listops-1000"
    data.setup("fit")
    assert len(data.datasets["train"]) == 96


def test_jobs_started_together_download_once(tmp_path, monkeypatch):
    """Two jobs preparing the same folder at once (an array job): one downloads, the other
    waits for the lock and finds the data in place."""
    write_cifar(tmp_path / "mirror", per_batch=4)
    archive = tar_of(tmp_path / "mirror" / "cifar-10-batches-py", "cifar-10-batches-py")
    md5 = hashlib.md5(archive).hexdigest()
    errors = []

    def job() -> None:
        try:
            CIFAR10DataModule(tmp_path / "data", val_fraction=0.25).prepare_data()
        except Exception as error:  # reported below
            errors.append(error)

    with serve({"cifar.tar.gz": archive}) as served:
        resource = replace(CIFAR10, url=served.url("cifar.tar.gz"), md5=md5)
        monkeypatch.setattr(CIFAR10DataModule, "resources", (resource,))
        jobs = [threading.Thread(target=job) for _ in range(2)]
        for thread in jobs:
            thread.start()
        for thread in jobs:
            thread.join(timeout=60)
    assert not errors and len(served.requests) == 1
    assert len(list((tmp_path / "data" / ".cache").glob("cifar10-*.pt"))) == 1


def test_missing_validation_list_is_named_and_nothing_downloaded(tmp_path, no_fetch):
    root = write_speech(tmp_path / "speech_commands_v0.02", tone_clips(["yes", "no"], 3))
    (root / "validation_list.txt").unlink()
    with pytest.raises(DataNotFound, match=r"missing .*validation_list.txt\..*restore") as error:
        SpeechCommandsDataModule(tmp_path, download=True).prepare_data()
    assert error.value.partial and error.value.missing == [root / "validation_list.txt"]


def test_partly_present_cifar_is_not_replaced(tmp_path, no_fetch):
    write_cifar(tmp_path, per_batch=2)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataNotFound, match=r"data_batch_4.*nothing is downloaded"):
        CIFAR10DataModule(tmp_path, download=True).prepare_data()


# --- The cache folder -------------------------------------------------------------------------


def test_cache_dir_option_leaves_the_data_folder_untouched(listops_dir, tmp_path):
    before = sorted(p.relative_to(listops_dir) for p in listops_dir.rglob("*"))
    data = ListOpsDataModule(listops_dir, cache_dir=tmp_path / "cache")
    data.prepare_data()
    data.setup("fit")
    assert sorted(p.relative_to(listops_dir) for p in listops_dir.rglob("*")) == before
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [data.cache_path("all").name]


def test_cache_dir_environment_variable_and_precedence(listops_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PSPIKESSM_CACHE_DIR", str(tmp_path / "env"))
    assert ListOpsDataModule(listops_dir).cache_dir == tmp_path / "env"
    chosen = ListOpsDataModule(listops_dir, cache_dir=tmp_path / "option")
    assert chosen.cache_dir == tmp_path / "option"  # the option wins
    ListOpsDataModule(listops_dir).prepare_data()
    assert len(list((tmp_path / "env").glob("listops-all-*.pt"))) == 1
    assert not (listops_dir / ".cache").exists()


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


@pytest.mark.parametrize("size", [0, 100, -20])  # empty, cut at its start, cut near its end
def test_an_unreadable_cache_names_its_path(listops_dir, size):
    data = ListOpsDataModule(listops_dir)
    data.prepare_data()
    path = data.cache_path("all")
    truncate(path, size if size >= 0 else path.stat().st_size + size)
    with pytest.raises(UnreadableCache, match=rf"{re.escape(str(path))}: .*cannot be read"):
        load_cache(path)


@pytest.mark.parametrize("step", ["prepare_data", "setup"])
def test_a_truncated_cache_is_rebuilt_with_a_warning_naming_it(listops_dir, caplog, step):
    ListOpsDataModule(listops_dir).prepare_data()
    data = ListOpsDataModule(listops_dir)
    path = data.cache_path("all")
    truncate(path, path.stat().st_size // 2)
    if step == "prepare_data":  # `pspikessm prepare`, or fit's rank 0
        data.prepare_data()
    data.setup("fit")  # every process of a fit, and a fit whose prepare_data ran elsewhere
    assert len(data.datasets["train"]) == 96
    assert f"{path}: the preprocessed-data cache cannot be read" in caplog.text
    assert "Rebuilding it now" in caplog.text
    assert load_cache(path)  # whole again
    caplog.clear()
    ListOpsDataModule(listops_dir).prepare_data()
    assert "cannot be read" not in caplog.text  # built once


def test_unwritable_cache_folder_says_how_to_move_it(listops_dir):
    (listops_dir / ".cache").write_text("a file where the cache folder would go")
    with pytest.raises(OSError, match=r"cannot write .* set data.cache_dir .*PSPIKESSM_CACHE_DIR"):
        ListOpsDataModule(listops_dir).prepare_data()


# --- The split helper -------------------------------------------------------------------------


def test_seeded_split_is_the_former_val_size_and_pathfinder_splits():
    """Held-out splits of the released configs are unchanged: val_fraction 0.1 of MNIST
    (60000) and CIFAR-10 (50000) holds out what val_size 6000 / 5000 did, and Pathfinder's
    three parts are as before."""
    for count, held_out in ((60000, 6000), (50000, 5000)):
        order = torch.randperm(count, generator=torch.Generator().manual_seed(0))
        parts = seeded_split(count, 0, val=0.1)
        assert torch.equal(parts["val"], order[:held_out].sort().values)
        assert torch.equal(parts["train"], order[held_out:].sort().values)
    order = torch.randperm(199999, generator=torch.Generator().manual_seed(3))
    parts = seeded_split(199999, 3, val=0.1, test=0.1)
    assert torch.equal(parts["val"], order[:19999].sort().values)
    assert torch.equal(parts["test"], order[19999:39998].sort().values)
    assert torch.equal(parts["train"], order[39998:].sort().values)


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_fractions_outside_the_range_name_the_option(tmp_path, fraction):
    with pytest.raises(
        ValueError, match=rf"data.val_fraction must be a fraction .* got {fraction}"
    ):
        CIFAR10DataModule(tmp_path, val_fraction=fraction)


@pytest.mark.slow
def test_two_process_run_downloads_once(listops_dir, tmp_path):
    """`fit` with download=true on two DDP processes (gloo, CPU): rank 0 downloads in
    prepare_data while rank 1 waits; the local server counts one request."""
    root = Path(__file__).resolve().parents[2]
    release = tar_of(listops_dir, "lra_release", mode="w")
    with serve({"lra_release.gz": release}) as served:
        env = dict(os.environ, PYTHONPATH=f"{root / 'src'}{os.pathsep}{root / 'tests'}")
        env[URL_VARIABLE] = served.url("lra_release.gz")
        command = [
            sys.executable, "-m", "pspikessm", "fit",
            "--config", str(root / "configs" / "quickstart.yaml"),
            "--config", str(root / "configs" / "trainer" / "ddp.yaml"),
            "--data=helpers.served_tasks.ServedListOps",
            f"--data.init_args.data_dir={tmp_path / 'data'}",
            "--data.init_args.generate=null",  # the quickstart's generator: off
            "--data.init_args.download=true",
            "--data.init_args.batch_size=16",
            "--trainer.accelerator=cpu", "--trainer.devices=2",
            "--trainer.sync_batchnorm=false", "--trainer.precision=32-true",
            "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
            "--trainer.enable_model_summary=false",
            *tiny_model_args(),
        ]  # fmt: skip
        result = subprocess.run(
            command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )
    assert result.returncode == 0, result.stderr[-4000:]
    assert served.requests == [("lra_release.gz", None)]
    assert (tmp_path / "logs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt").exists()
