"""Bad data files stop a run with an error naming the file, instead of training on nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from helpers.cli_args import fast_trainer_args, tiny_model_args
from helpers.task_files import tone_clips, write_aan, write_speech
from pspikessm.cli import cli_main
from pspikessm.data import RetrievalDataModule, SpeechCommandsDataModule

ROOT = Path(__file__).resolve().parents[2]


def quickstart_fit(data_dir: Path, tmp_path: Path) -> list[str]:
    return [
        "fit",
        f"--config={ROOT / 'configs' / 'quickstart.yaml'}",
        f"--data.init_args.data_dir={data_dir}",
        "--data.init_args.generate=null",
        "--trainer.fast_dev_run=1",
        *tiny_model_args(),
        *fast_trainer_args(tmp_path),
    ]


@pytest.mark.parametrize(
    ("split", "content", "message"),
    [
        (
            "train",
            "",
            r"basic_train.tsv: no ListOps rows \(the file is empty or holds only a header",
        ),
        ("train", "Source\tTarget\n", r"basic_train.tsv: no ListOps rows"),
        ("val", "Source\tTarget\n", r"basic_val.tsv: no ListOps rows"),
        ("test", "Source\tTarget\n\xff\xfe\x00binary", r"basic_test.tsv:2: not UTF-8 text"),
    ],
    ids=["empty-train", "header-only-train", "header-only-val", "binary-test"],
)
def test_listops_file_without_rows_stops_fit(listops_dir, tmp_path, split, content, message):
    path = listops_dir / "listops-1000" / f"basic_{split}.tsv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ValueError, match=message):
        cli_main(quickstart_fit(listops_dir, tmp_path))


def test_binary_aan_file_names_file_and_line(tmp_path):
    write_aan(tmp_path, rows=3)
    path = tmp_path / "tsv_data" / "new_aan_pairs.train.tsv"
    path.write_bytes(path.read_bytes() + b"1\ta\tb\t\x89PNG\r\n\x1a\n\tx\n")
    with pytest.raises(ValueError, match=r"new_aan_pairs.train.tsv:4: not UTF-8 text"):
        _ = RetrievalDataModule(tmp_path).vocab_size


def test_empty_wav_names_the_file(tmp_path):
    root = write_speech(tmp_path, tone_clips(["yes", "no"], 3))
    soundfile.write(root / "no" / "0000_nohash_0.wav", np.zeros(0, np.float32), 16000, "PCM_16")
    with pytest.raises(ValueError, match=r"no/0000_nohash_0.wav: a WAV with no samples"):
        SpeechCommandsDataModule(root).setup("fit")


@pytest.mark.slow
def test_process_exits_non_zero_naming_the_file(listops_dir, tmp_path):
    """The same through a real process: exit status 1 and the file in the message."""
    (listops_dir / "listops-1000" / "basic_val.tsv").write_text("Source\tTarget\n")
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}")
    result = subprocess.run(
        [sys.executable, "-m", "pspikessm", *quickstart_fit(listops_dir, tmp_path)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 1
    assert "basic_val.tsv: no ListOps rows" in result.stderr
