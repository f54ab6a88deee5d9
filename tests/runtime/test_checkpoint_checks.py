"""Checkpoints a command uses must be readable, trusted and finite (issue 31, items 1, 9, 10,
12): ``weights_only: false`` counts only on the command line, never from a config file; a
checkpoint with non-finite weights is refused by every command, naming its first bad tensor;
the non-finite stop names only a checkpoint it checked as good; a truncated or empty
checkpoint is named, with the others to continue from."""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers.cli_args import TINY_LISTOPS, toy_quickstart_args
from pspikessm.cli import cli_main
from pspikessm.data.listops_generator import write_listops
from pspikessm.runtime.callbacks import NonFiniteLossStop
from pspikessm.runtime.checkpoint_checks import (
    UnusableCheckpoint,
    command_line_weights_only,
    read_checkpoint,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[list[str], Path]:
    """A one-step toy run: (the ``fit`` command line, its run folder)."""
    root = tmp_path_factory.mktemp("trained")
    data = root / "lra_release"
    write_listops(data / "listops-1000", TINY_LISTOPS)
    args = toy_quickstart_args(data, root)
    cli_main([*args, "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"])
    return args, root / "logs" / "quickstart" / "version_0"


def evaluate(command: str, fit_args: list[str], ckpt_path: Path, *more: str):
    """``pspikessm <command>`` of the run's options on ``ckpt_path``."""
    return cli_main([command, *fit_args[1:], "--ckpt_path", str(ckpt_path), *more])


# --- 1. weights_only: false from this command line only --------------------------------------


class CreatesMarker:
    """An object whose unpickling creates a folder: what a malicious checkpoint would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (str(self.path),)


def test_weights_only_false_in_a_config_file_unpickles_nothing(trained, tmp_path, caplog):
    args, run = trained
    marker = tmp_path / "code-ran"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["payload"] = CreatesMarker(marker)
    planted = tmp_path / "planted.ckpt"
    torch.save(checkpoint, planted)
    # The recorded config of a shared run folder, edited by someone else.
    recorded = (run / "config.yaml").read_text()
    assert "\nweights_only: null\n" in recorded
    edited = tmp_path / "config.yaml"
    edited.write_text(recorded.replace("\nweights_only: null\n", "\nweights_only: false\n"))

    with (
        caplog.at_level(logging.WARNING, logger="pspikessm"),
        pytest.raises(UnusableCheckpoint, match=rf"{planted}: refused: .*`--weights_only false`"),
    ):
        cli_main(["test", "--config", str(edited), "--ckpt_path", str(planted)])
    assert not marker.exists()
    assert "weights_only: false in a config file is ignored" in caplog.text

    # This command line's --weights_only false unpickles it, with a warning naming the risk.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pspikessm"):
        tested = cli_main(
            ["test", "--config", str(edited), "--ckpt_path", str(planted), "--weights_only=false"]
        )
    assert marker.is_dir()
    assert f"the checkpoint {planted} will be unpickled" in caplog.text
    assert "arbitrary code execution" in caplog.text
    # ... and it is never written into a record.
    record = (Path(tested.trainer.log_dir) / "config.yaml").read_text()
    assert "\nweights_only: null\n" in record


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["test", "--config", "c.yaml"], (False, None)),
        (["test", "--weights_only", "false", "--config", "c.yaml"], (True, False)),
        (["test", "--weights_only=False", "--weights_only=true"], (True, True)),
        (["test", "--weights_only", "null"], (True, None)),
    ],
)
def test_the_command_line_value_of_weights_only_wins_over_any_file(argv, expected):
    assert command_line_weights_only(argv) == expected


# --- 9, 10. Non-finite weights: refused by every command, never called good -----------------


def poisoned_copy(source: Path, folder: Path) -> tuple[Path, str]:
    """A copy of ``source`` with one NaN in its second weight: (path, that tensor's name)."""
    checkpoint = torch.load(source, weights_only=True)
    name = list(checkpoint["state_dict"])[1]
    checkpoint["state_dict"][name].view(-1)[0] = float("nan")
    path = folder / "checkpoints" / "nan.ckpt"
    path.parent.mkdir(parents=True)
    torch.save(checkpoint, path)
    return path, name


@pytest.mark.parametrize("command", ["validate", "test", "predict", "fit"])
def test_a_checkpoint_with_nan_weights_is_refused_naming_file_and_tensor(
    trained, tmp_path, command
):
    args, run = trained
    poisoned, name = poisoned_copy(run / "checkpoints" / "last.ckpt", tmp_path)
    with pytest.raises(UnusableCheckpoint, match=r"non-finite weights") as refused:
        evaluate(command, args, poisoned)
    assert str(refused.value).startswith(f"{poisoned}: non-finite weights: {name} holds a NaN")
    # Not the non-finite-loss stop, which would call that same file good and blame the lr.
    assert "Last good checkpoint" not in str(refused.value)
    assert "model.lr" not in str(refused.value)


def test_the_last_good_checkpoint_is_one_checked_finite(trained, tmp_path):
    _, run = trained
    good = run / "checkpoints" / "last.ckpt"
    poisoned, _ = poisoned_copy(good, tmp_path)

    def stopped_trainer(last_saved: Path, resumed_from: Path) -> SimpleNamespace:
        return SimpleNamespace(
            checkpoint_callback=SimpleNamespace(last_model_path=str(last_saved)),
            ckpt_path=str(resumed_from),
            lightning_module=torch.nn.Module(),
        )

    assert NonFiniteLossStop.good_checkpoint(stopped_trainer(poisoned, good)) == str(good)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")  # unreadable: not good either
    assert NonFiniteLossStop.good_checkpoint(stopped_trainer(empty, good)) == str(good)
    named = NonFiniteLossStop.good_checkpoint(stopped_trainer(poisoned, poisoned))
    assert named.startswith("none")


# --- 12. A truncated or empty checkpoint: named, with what to do -----------------------------


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_truncated_or_empty_last_checkpoint_is_named_with_the_others(trained, tmp_path, damage):
    args, run = trained
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    whole = (run / "checkpoints" / "last.ckpt").read_bytes()
    last = folder / "last.ckpt"
    last.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else b"")
    if damage == "truncated":
        other = folder / "best-epoch000-step1.ckpt"
        shutil.copy(run / "checkpoints" / "last.ckpt", other)
        advice = rf"Delete {last} and continue from another checkpoint .*: {other} \(newest first\)"
    else:
        advice = rf"Delete {last} .*holds no other"
    with pytest.raises(UnusableCheckpoint, match=rf"{last} cannot be read .*truncated") as failed:
        evaluate("test", args, last)
    assert failed.match(advice)


@pytest.mark.parametrize(
    "error", [OSError(errno.EINVAL, "Invalid argument"), EOFError("Ran out of input")]
)
def test_read_errors_of_a_cut_short_file_are_named(tmp_path, error):
    path = tmp_path / "last.ckpt"

    def load():
        raise error

    with pytest.raises(UnusableCheckpoint, match=rf"{path} cannot be read .*Delete {path}"):
        read_checkpoint(path, load)
    with pytest.raises(FileNotFoundError):  # the file's place: the error says so itself
        read_checkpoint(path, lambda: torch.load(path, weights_only=True))
