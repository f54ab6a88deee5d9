"""The command line end to end: configs, fit, checkpoints, resume, and config errors."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.cli_args import TINY_LISTOPS, fast_trainer_args, tiny_model_args
from pspikessm.cli import TOOLS, cli_main, main
from pspikessm.data.listops_generator import write_listops
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[2]


def listops_args(tmp_path: Path, listops_dir: Path) -> list[str]:
    return [
        "--config",
        str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.batch_size=16",
        *tiny_model_args(),
        *fast_trainer_args(tmp_path),
    ]


def test_fit_fast_dev_run_on_generated_listops(tmp_path: Path, listops_dir: Path) -> None:
    cli = cli_main(["fit", *listops_args(tmp_path, listops_dir), "--trainer.fast_dev_run=2"])
    model = cli.model
    # What the data decides is linked into the model.
    assert model.hparams.num_classes == 10
    assert model.backbone.encoder.num_embeddings == cli.datamodule.vocab_size
    assert model.backbone.decoder.out_features == 10
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_fit_writes_logs_config_checkpoints_and_resumes(tmp_path: Path, listops_dir: Path) -> None:
    args = [
        *listops_args(tmp_path, listops_dir),
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
    ]
    first = cli_main(["fit", *args, "--trainer.max_epochs=1"])
    run = Path(first.trainer.log_dir)
    assert run == tmp_path / "logs" / "quickstart" / "version_0"
    assert (run / "config.yaml").exists()
    assert list(run.glob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    for key in ("train/loss", "val/loss", "val/acc", "val/acc_best"):
        assert key in first.trainer.callback_metrics, key

    resumed = cli_main(["fit", *args, "--trainer.max_epochs=2", "--ckpt_path=last"])
    # The same run folder continues: one more epoch on top of the first one's steps.
    assert Path(resumed.trainer.log_dir) == run
    assert resumed.trainer.current_epoch == 2
    assert resumed.trainer.global_step == 2 * first.trainer.global_step


@pytest.mark.slow  # ckpt_path_last[test] keeps `test` fast
def test_test_subcommand_and_checkpoint_reload(tmp_path: Path, listops_dir: Path) -> None:
    args = listops_args(tmp_path, listops_dir)
    fit = cli_main(["fit", *args, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"])
    checkpoint = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    test = cli_main(["test", *args, f"--ckpt_path={checkpoint}"])
    assert 0.0 <= float(test.trainer.callback_metrics["test/acc"]) <= 1.0
    # The checkpoint alone rebuilds the model, backbone included.
    reloaded = SequenceClassifier.load_from_checkpoint(checkpoint)
    torch.testing.assert_close(reloaded.backbone.decoder.weight, fit.model.backbone.decoder.weight)


def test_unknown_config_key_is_an_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "configs" / "quickstart.yaml").read_text() + "\nmodle:\n  lr: 0.1\n")
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(bad)])
    assert "modle" in capsys.readouterr().err


def test_the_cli_checks_the_block_choices(capsys) -> None:
    """``norm``, ``mixer`` and ``init`` are Literal types: the parser refuses another value,
    naming the key and the choices, before anything is built (one of them here: a parse takes
    seconds; tests/models/test_settings.py checks all three for Python callers)."""
    option, value = "norm", "btach"
    config = ROOT / "configs" / "quickstart.yaml"
    with pytest.raises(SystemExit):
        cli_main(
            ["fit", f"--config={config}", f"--model.backbone.init_args.block.{option}={value}"]
        )
    error = capsys.readouterr().err
    assert f'Parser key "{option}"' in error and "typing.Literal[" in error and value in error


@pytest.mark.parametrize(
    ("command", "option", "message"),
    [
        ("fit", "--data.init_args.max_length=0", "data.max_length=0: expected an integer >= 2"),
        pytest.param(
            "test",
            "--model.backbone.init_args.block.d_state=0",
            "block.d_state=0: expected",
            marks=pytest.mark.slow,  # a CLI parse each: the model's check, in the slow tier
        ),
        ("prepare", "--data.init_args.max_length=1", "data.max_length=1: expected an integer"),
    ],
)
def test_a_config_error_is_one_message_without_traceback(
    tmp_path, listops_dir, capsys, monkeypatch, command, option, message
) -> None:
    monkeypatch.delenv("PSPIKESSM_DEBUG", raising=False)
    with pytest.raises(SystemExit) as stop:
        main([command, *listops_args(tmp_path, listops_dir), option])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"pspikessm {command}: error: {message}")
    assert "Traceback" not in error and "Union subtypes" not in error
    assert "PSPIKESSM_DEBUG=1" in error  # how to see the traceback


@pytest.mark.slow
def test_the_command_prints_a_config_error_in_two_lines(tmp_path, listops_dir) -> None:
    """``pspikessm fit --config configs/quickstart.yaml --data.init_args.max_length 0``, as
    typed: the message and how to see the traceback, nothing else but Lightning's seed line."""
    command = [
        sys.executable, "-m", "pspikessm", "fit", *listops_args(tmp_path, listops_dir),
        "--data.init_args.max_length", "0",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PSPIKESSM_DEBUG"}
    env["PYTHONPATH"] = str(ROOT / "src")
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("Seed set")]
    assert lines == [
        "pspikessm fit: error: data.max_length=0: expected an integer >= 2",
        "(the traceback: set PSPIKESSM_DEBUG=1)",
    ]
    env["PSPIKESSM_DEBUG"] = "1"
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().endswith(
        "ValueError: data.max_length=0: expected an integer >= 2"
    )


def test_help_lists_the_tools(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out.split("Tools: ", 1)[1].split(" (", 1)[0]
    assert listed.split(", ") == list(TOOLS) and {"make-listops", "prepare", "energy"} <= set(TOOLS)


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_each_tool_has_a_main_and_help(tool, capsys) -> None:
    """A tool is a module with ``main(argv)``; ``pspikessm TOOL --help`` prints its usage."""
    assert callable(importlib.import_module(TOOLS[tool]).main)
    with pytest.raises(SystemExit) as stop:
        main([tool, "--help"])
    assert stop.value.code == 0 and "usage:" in capsys.readouterr().out.lower()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, list[str], Path]:
    """One short fit shared by the tests below (they only read it): (tmp, args, last.ckpt)."""
    tmp_path = tmp_path_factory.mktemp("fitted")
    listops_dir = tmp_path / "lra_release"
    write_listops(listops_dir / "listops-1000", TINY_LISTOPS)
    args = [*listops_args(tmp_path, listops_dir), "--trainer.limit_val_batches=1"]
    cli_main(["fit", *args, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"])
    return (
        tmp_path,
        args,
        tmp_path / "logs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt",
    )


@pytest.mark.parametrize(
    "subcommand",
    [
        pytest.param("validate", marks=pytest.mark.slow),
        "test",
        pytest.param("predict", marks=pytest.mark.slow),
    ],
)
def test_ckpt_path_last_loads_the_newest_runs_last_checkpoint(fitted, subcommand) -> None:
    _, args, last = fitted
    cli = cli_main([subcommand, *args, "--ckpt_path=last"])
    assert cli.trainer.ckpt_path == str(last)
    saved = torch.load(last, weights_only=True)["state_dict"]
    for name, tensor in cli.model.state_dict().items():  # the trained weights, not new ones
        assert torch.equal(tensor, saved[name]), name


def test_energy_takes_ckpt_path_last(fitted, capsys) -> None:
    _, args, _ = fitted
    main(["energy", *args, "--ckpt_path", "last", "--split", "val"])
    assert "non-spiking / spiking energy" in capsys.readouterr().out


def test_ckpt_path_last_without_a_run_names_where_it_looked(tmp_path, listops_dir) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"logs/quickstart/version_\*/checkpoints/last\.ckpt"
    ):
        cli_main(["test", *listops_args(tmp_path, listops_dir), "--ckpt_path=last"])


@pytest.mark.parametrize(
    "command",
    [
        *(pytest.param(c, marks=pytest.mark.slow) for c in ("validate", "predict", "energy")),
        "test",
        "fit",
    ],
)
def test_a_checkpoint_of_another_architecture_is_refused_by_every_command(fitted, command):
    _, args, last = fitted
    other = [*args, "--model.backbone.init_args.d_model=32", f"--ckpt_path={last}"]
    run = (
        (lambda: main(["energy", *other]))
        if command == "energy"
        else (lambda: cli_main([command, *other]))
    )
    with pytest.raises(ValueError, match=r"d_model: checkpoint 16, model 32"):
        run()


def test_an_error_in_a_linked_value_arrives_unwrapped(tmp_path, listops_dir) -> None:
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 1") as raised:
        cli_main(
            [
                *listops_args(tmp_path, listops_dir),
                "--data=pspikessm.data.SequenceDataModule",  # the base class: no classes
                f"--data.data_dir={listops_dir}",
            ],
            run=False,
        )
    assert "compute_fn" not in str(raised.value)


@pytest.mark.slow
def test_a_normal_run_prints_no_warnings(tmp_path, listops_dir) -> None:
    args = [
        *listops_args(tmp_path, listops_dir),
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1",
        "--trainer.log_every_n_steps=1",
    ]
    commands = [
        ["fit", *args],
        ["fit", *args, "--trainer.max_epochs=2", "--ckpt_path=last"],  # a resume
        ["test", *args, "--ckpt_path=last"],
    ]
    # The console entry point on sys.argv, three commands in one interpreter (one import).
    script = (
        "import sys\nfrom pspikessm.cli import main\n"
        f"for argv in {commands!r}:\n    sys.argv = ['pspikessm', *argv]\n    main()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    # Python and Lightning warnings print "<file>.py:<line>: <message>".
    assert [line for line in output.splitlines() if re.search(r"\.py:\d+: ", line)] == []
    assert "Tip" not in output and "args parameter" not in output
    assert "test/acc" in output  # the three commands ran
