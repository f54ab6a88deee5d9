"""ListOps: the LRA reader, the vocabulary, the cache and the errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pspikessm.data.listops_generator import ListOpsGeneratorConfig
from pspikessm.data.tasks.listops import ListOpsDataModule, tokenize


def test_generated_rows_load_in_the_data_module(listops_dir: Path) -> None:
    data = ListOpsDataModule(data_dir=listops_dir, batch_size=8, max_length=64)
    data.prepare_data()
    data.setup("fit")
    assert data.vocab_size == 3 + 10 + 4 + 1  # pad/unk/eos, digits, operators, X
    assert data.vocabulary.tokens[:3] == ["<pad>", "<unk>", "<eos>"]
    train = data.datasets["train"]
    assert len(train) == 96 and len(data.datasets["val"]) == 32
    source, target = (
        (listops_dir / "listops-1000" / "basic_train.tsv").read_text().splitlines()[1].split("\t")
    )
    tokens, label = train[0]
    assert label == int(target)
    assert tokens.tolist() == [*data.vocabulary.encode(tokenize(source)), data.vocabulary.eos_id]
    inputs, lengths, targets = next(iter(data.train_dataloader()))
    assert inputs.dtype == torch.int64 and inputs.shape == (8, int(lengths.max()))
    assert targets.shape == (8,)
    for row, length in zip(inputs, lengths, strict=True):
        assert row[length - 1] == data.vocabulary.eos_id and torch.all(row[length:] == 0)


def test_vocabulary_and_tensors_are_cached(listops_dir: Path) -> None:
    first = ListOpsDataModule(data_dir=listops_dir, max_length=64)
    first.prepare_data()
    caches = list((listops_dir / ".cache").glob("listops-*.pt"))
    assert len(caches) == 1
    # A changed setting is a different cache, never the stale one.
    ListOpsDataModule(data_dir=listops_dir, max_length=32).prepare_data()
    assert len(list((listops_dir / ".cache").glob("listops-*.pt"))) == 2
    # The cache alone serves a later run (the TSV files are no longer read).
    second = ListOpsDataModule(data_dir=listops_dir, max_length=64)
    second.preprocessed()
    assert second.vocabulary.tokens == first.vocabulary.tokens


def test_long_sequences_are_truncated_and_counted(tmp_path: Path, caplog) -> None:
    (tmp_path / "basic_train.tsv").write_text("Source\tTarget\n( [MAX 1 2 3 4 5 6 7 8 ] )\t8\n")
    for split in ("val", "test"):
        (tmp_path / f"basic_{split}.tsv").write_text("Source\tTarget\n( [MIN 1 2 ] )\t1\n")
    data = ListOpsDataModule(data_dir=tmp_path, max_length=5)
    with caplog.at_level("INFO", logger="pspikessm"):
        data.setup("fit")
    tokens, _ = data.datasets["train"][0]
    assert len(tokens) == 5 and tokens[-1] == data.vocabulary.eos_id
    assert "truncated 1 of 1 sequences to max_length=5" in caplog.text


def test_missing_directory_names_files_url_and_generator(tmp_path: Path) -> None:
    data = ListOpsDataModule(data_dir=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError) as error:
        data.prepare_data()
    message = str(error.value)
    assert "basic_train.tsv" in message
    assert "https://storage.googleapis.com/long-range-arena/lra_release.gz" in message
    assert "pspikessm make-listops" in message


@pytest.mark.parametrize(
    "row,problem",
    [
        ("( [MAX 1 2 ] )\t2\textra", "expected 2 tab-separated columns"),
        ("( [MAX 1 2 ] )\t12", "Target must be an integer 0-9, got '12'"),
        ("( [MAX 1 2 ] )\tseven", "Target must be an integer 0-9"),
        (" ( ) \t3", "empty Source"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    good = "( [MIN 1 2 ] )\t1"
    for split in ("train", "val", "test"):
        lines = ["Source\tTarget", good, row if split == "val" else good]
        (tmp_path / f"basic_{split}.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"basic_val.tsv:3: {problem}"):
        ListOpsDataModule(data_dir=tmp_path).prepare_data()


def test_generation_when_files_are_absent(tmp_path: Path) -> None:
    config = ListOpsGeneratorConfig(
        num_train=20, num_val=5, num_test=5, min_length=3, max_length=20, max_depth=2
    )
    data = ListOpsDataModule(data_dir=tmp_path / "generated", generate=config)
    assert data.vocab_size == 18  # the grammar's: the CLI's link reads it before any file
    assert not (tmp_path / "generated").exists()
    data.prepare_data()  # generation happens here, on rank 0 only
    assert (tmp_path / "generated" / "basic_train.tsv").exists()
    data.setup("fit")
    assert len(data.datasets["train"]) == 20
