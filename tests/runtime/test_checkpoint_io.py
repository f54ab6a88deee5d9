"""Checkpoint files are replaced atomically: a write that dies leaves the previous file whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pspikessm.runtime.checkpoint_io import AtomicCheckpointIO, atomic_write, use_atomic_checkpoints


def test_the_temporary_file_is_written_in_the_destination_folder(tmp_path, monkeypatch):
    target = tmp_path / "checkpoints" / "last.ckpt"
    seen: list[list[str]] = []
    fsync = os.fsync

    def record_then_fsync(descriptor: int) -> None:  # the data is written, not yet renamed
        seen.append(sorted(p.name for p in target.parent.iterdir()))
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", record_then_fsync)
    AtomicCheckpointIO().save_checkpoint({"step": torch.tensor(3)}, target)
    temporary = [name for name in seen[0] if name != "last.ckpt"]
    assert len(temporary) == 1 and temporary[0].startswith(".last.ckpt.")
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    assert torch.load(target, weights_only=True)["step"] == 3


@pytest.mark.parametrize("dies_in", ["write", "rename"])
def test_a_write_that_dies_leaves_the_previous_checkpoint(tmp_path, monkeypatch, dies_in):
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, target)

    class Killed(BaseException):  # like a signal: not an Exception
        pass

    if dies_in == "write":

        def half_then_die(obj, file, *args, **kwargs):
            file.write(b"\x80\x02 half a pickle")
            raise Killed

        monkeypatch.setattr(torch, "save", half_then_die)
    else:
        monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(Killed()))
    with pytest.raises(Killed):
        io.save_checkpoint({"step": 2}, target)
    monkeypatch.undo()
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary left


def test_a_temporary_file_left_by_a_kill_is_removed_at_the_next_write(tmp_path):
    target = tmp_path / "last.ckpt"
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"truncated")
    (tmp_path / ".other.ckpt.x.tmp").write_bytes(b"someone else's")
    atomic_write(target, lambda file: file.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ckpt.x.tmp", "last.ckpt"]
    assert target.read_bytes() == b"new"


def test_the_trainer_default_writer_is_replaced_but_not_a_chosen_one(tmp_path: Path):
    trainer = Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu")
    assert type(trainer.strategy.checkpoint_io) is TorchCheckpointIO
    use_atomic_checkpoints(trainer)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)

    class MyIO(TorchCheckpointIO):
        pass

    trainer = Trainer(default_root_dir=tmp_path, logger=False, plugins=[MyIO()])
    use_atomic_checkpoints(trainer)
    assert type(trainer.strategy.checkpoint_io) is MyIO
