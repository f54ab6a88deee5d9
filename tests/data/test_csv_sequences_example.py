"""The example task in examples/csv_sequences/ and the forking guide's commands that run it."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.forking_guide import guide_block, guide_commands
from pspikessm.cli import cli_main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "csv_sequences"


@pytest.fixture
def example(monkeypatch):
    """The example's modules, imported from their folder as a user would (PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    import csv_sequences
    import make_toy_data

    return csv_sequences, make_toy_data


def run_guide_command(line: str, monkeypatch, extra: list[str]):
    """Run a guide command in-process: ``PYTHONPATH=`` and repository paths resolved."""
    words = shlex.split(line)
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        assert name == "PYTHONPATH", line
        monkeypatch.syspath_prepend(str(REPO / value))
    words = [str(REPO / w) if (REPO / w).is_file() else w for w in words]
    if words[0] == "pspikessm":
        return cli_main([*words[1:], *extra])
    assert words[:2] == ["python", str(EXAMPLE / "make_toy_data.py")], line
    import make_toy_data

    return make_toy_data.main(words[2:] + extra)


@pytest.mark.slow  # trains; the guide model variant stays fast
def test_guide_commands_train_the_example(tmp_path, monkeypatch, example):
    make = guide_commands("python examples/csv_sequences/make_toy_data.py")
    fit = guide_commands("PYTHONPATH=examples/csv_sequences pspikessm fit")
    assert len(make) == 1 and len(fit) == 1, "the guide's example commands changed: update me"
    monkeypatch.chdir(tmp_path)  # the commands' relative data/ and logs/ land here
    run_guide_command(make[0], monkeypatch, [])
    fast = ["--trainer.fast_dev_run=2", "--trainer.accelerator=cpu"]
    cli = run_guide_command(fit[0], monkeypatch, fast)
    assert cli.trainer.state.finished and cli.trainer.global_step == 2
    assert not list(tmp_path.rglob("*.ckpt"))  # a dry run leaves no checkpoint behind
    assert cli.datamodule.classes == ["fast", "medium", "slow"]
    assert cli.model.backbone.encoder.in_features == 2  # d_input linked from the files
    assert cli.model.backbone.decoder.out_features == 3  # num_classes linked


def test_guide_model_variant_trains_with_tagged_ssm_parameters(tmp_path, monkeypatch, example):
    _, make_toy_data = example
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_models.py").write_text(guide_block("python", "## Add a model variant"))
    monkeypatch.syspath_prepend(str(tmp_path))
    make_toy_data.write_toy_data(tmp_path / "toy", {"train": 4})
    backbone = guide_block("yaml", "## Add a model variant").split("class_path:")[1].split()[0]
    cli = cli_main(
        [
            "fit",
            f"--config={EXAMPLE / 'config.yaml'}",
            f"--model.backbone={backbone}",
            "--model.backbone.init_args.d_model=8",
            f"--data.init_args.data_dir={tmp_path / 'toy'}",
            "--trainer.fast_dev_run=1",
            "--trainer.accelerator=cpu",
        ]
    )
    assert type(cli.model.backbone).__name__ == "WidePSpikeSSM"
    assert cli.trainer.global_step == 1
    # The blocks' SSM A and B carry their own peak lr (1e-3) and no weight decay (tag_optim).
    groups = {(g["initial_lr"], g["weight_decay"]) for g in cli.trainer.optimizers[0].param_groups}
    assert (1e-3, 0.0) in groups and (cli.model.hparams.lr, 0.01) in groups


def write_csv(path: Path, rows: list[list[float]], header: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ([header] if header else []) + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_reads_csv_with_or_without_header_and_npy(tmp_path, example):
    csv_sequences, _ = example
    rows = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    write_csv(tmp_path / "a.csv", rows, header="x,y")
    write_csv(tmp_path / "b.csv", rows)
    np.save(tmp_path / "c.npy", np.array(rows))
    np.save(tmp_path / "d.npy", np.array([1.0, 2.0, 3.0]))
    for name in ("a.csv", "b.csv", "c.npy"):
        np.testing.assert_array_equal(csv_sequences.read_sequence(tmp_path / name), rows)
    assert csv_sequences.read_sequence(tmp_path / "d.npy").shape == (3, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1,2\n3,oops\n", r"bad\.csv:2: expected numbers, got '3,oops'"),
        ("x,y\n1,2\n3\n", r"bad\.csv:3: 1 columns, the first row has 2"),
        ("1,2\nnan,1\n", r"bad\.csv: contains NaN"),
        ("", r"bad\.csv: expected a \(length, channels\) array"),
        # A byte that is not UTF-8 (Latin-1 "é"): the file, the line and the byte in it.
        ("x,y\n1,2\n3,4\xe9\n", r"bad\.csv:3: not UTF-8 text \(.* at byte 3 of the line\)"),
    ],
)
def test_bad_files_name_the_file(tmp_path, example, content, message):
    csv_sequences, _ = example
    (tmp_path / "bad.csv").write_bytes(content.encode("latin-1"))
    with pytest.raises(ValueError, match=message):
        csv_sequences.read_sequence(tmp_path / "bad.csv")


def test_held_out_validation_and_normalisation(tmp_path, example):
    csv_sequences, make_toy_data = example
    make_toy_data.write_toy_data(tmp_path, {"train": 10, "test": 2})
    data = csv_sequences.CSVSequenceDataModule(tmp_path, val_fraction=0.2, seed=3)
    assert (data.num_classes, data.d_input, data.vocab_size) == (3, 2, 0)
    data.setup("fit")
    train, val = data.datasets["train"], data.datasets["val"]
    assert (len(train), len(val)) == (24, 6)
    # Disjoint and complete: the held-out split takes whole files out of train.
    lengths = sorted(train.lengths().tolist() + val.lengths().tolist())
    fresh = csv_sequences.CSVSequenceDataModule(tmp_path, val_fraction=0.2, seed=3, normalize=False)
    fresh.setup("fit")
    assert lengths == sorted(
        fresh.datasets["train"].lengths().tolist() + fresh.datasets["val"].lengths().tolist()
    )
    torch.testing.assert_close(train.values.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(train.values.std(0), torch.ones(2), atol=1e-4, rtol=0)
    inputs, batch_lengths, targets = next(iter(data.train_dataloader()))
    assert inputs.dtype == torch.float32 and inputs.shape[-1] == 2 and targets.max() < 3


def test_errors_name_the_folder_or_file(tmp_path, example):
    csv_sequences, _ = example
    write_csv(tmp_path / "train" / "up" / "0.csv", [[1.0, 2.0], [2.0, 3.0]])
    write_csv(tmp_path / "train" / "down" / "0.csv", [[2.0], [1.0]])
    data = csv_sequences.CSVSequenceDataModule(tmp_path, d_input=2)
    with pytest.raises(ValueError, match=r"down/0\.csv: 1 channels .* expected d_input=2"):
        data.setup("fit")
    write_csv(tmp_path / "train" / "down" / "0.csv", [[2.0, 1.0], [1.0, 0.0]])
    write_csv(tmp_path / "test" / "sideways" / "0.csv", [[2.0, 1.0]])
    data = csv_sequences.CSVSequenceDataModule(tmp_path)
    with pytest.raises(ValueError, match=r"test/sideways: unknown class 'sideways'"):
        data.setup("test")
    with pytest.raises(FileNotFoundError, match="no class folders"):
        _ = csv_sequences.CSVSequenceDataModule(tmp_path / "missing").num_classes
    given = csv_sequences.CSVSequenceDataModule(tmp_path / "missing", classes=["a"], d_input=1)
    with pytest.raises(FileNotFoundError, match="no class folders"):
        given.setup("fit")


def test_tokens_and_protocol_without_files(tmp_path, example):
    csv_sequences, _ = example
    data = csv_sequences.CSVSequenceDataModule(tmp_path / "absent", classes=["a", "b"], d_input=4)
    assert (data.num_classes, data.d_input) == (2, 4)  # the CLI can build the model already
    write_csv(tmp_path / "train" / "a" / "0.csv", [[1], [4], [0]])
    write_csv(tmp_path / "train" / "b" / "0.csv", [[2], [3]])
    write_csv(tmp_path / "train" / "b" / "1.csv", [[2], [2]])
    data = csv_sequences.CSVSequenceDataModule(tmp_path, vocab_size=5, val_fraction=0.5)
    data.setup("fit")
    sequence, _ = data.datasets["train"][0]
    assert sequence.dtype == torch.int64 and sequence.ndim == 1
    write_csv(tmp_path / "train" / "b" / "1.csv", [[2], [5]])
    data = csv_sequences.CSVSequenceDataModule(tmp_path, vocab_size=5)
    with pytest.raises(ValueError, match=r"1\.csv: with data\.vocab_size=5"):
        data.setup("fit")
