"""The authors' data path where it decides what is reproduced: drop_last for training in every
task config (evaluation over every example), and their Speech Commands split (full-length
clips only, stratified 70/15/15) with their batch, weight decay and patience. The Image
constants and PIL's gray levels are pinned in test_task_data.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from helpers.task_configs import CONFIGS, TASK_CONFIGS
from helpers.task_files import full_and_short_clips, write_speech
from pspikessm.cli.train import TASK_DEFAULTS
from pspikessm.data import ListOpsDataModule, SpeechCommandsDataModule
from pspikessm.data.splits import proportional_counts, stratified_split
from pspikessm.data.tasks.speech_commands import SC10


def data_args(config: Path) -> dict:
    return yaml.safe_load(config.read_text())["data"]["init_args"]


def test_every_task_config_drops_the_last_partial_training_batch():
    """The CLI's default, which no task config sets back (resolved per config:
    tests/cli/test_task_configs.py)."""
    assert TASK_DEFAULTS["data"]["init_args"]["drop_last"] is True
    for config in TASK_CONFIGS:
        assert data_args(config).get("drop_last", True) is True, config


def test_the_quickstart_keeps_every_training_example():
    assert data_args(CONFIGS / "quickstart.yaml")["drop_last"] is False


def test_drop_last_drops_in_training_only(listops_dir):
    module = ListOpsDataModule(listops_dir, batch_size=40, drop_last=True)
    module.setup("fit")
    module.setup("test")
    assert len(module.datasets["train"]) == 96  # conftest.TINY_LISTOPS
    assert [len(b[2]) for b in module.train_dataloader()] == [40, 40]  # 16 left out
    assert [len(b[2]) for b in module.val_dataloader()] == [32]  # every example
    assert [len(b[2]) for b in module.test_dataloader()] == [32]
    keeping = ListOpsDataModule(listops_dir, batch_size=40)
    keeping.setup("fit")
    assert [len(b[2]) for b in keeping.train_dataloader()] == [40, 40, 16]


# --- Speech Commands: the authors' split ------------------------------------------------------


@pytest.fixture
def speech_dir(tmp_path):
    """20 full-length 'yes' clips, 10 'no', 5 'bed' (not SC10), each word with 2 short clips
    (the lists name the last of each word's clips: short ones)."""
    clips = full_and_short_clips({"yes": 20, "no": 10, "bed": 5}, short=2)
    return write_speech(tmp_path / "speech_commands_v0.02", clips)


def split_of(module) -> dict[str, list[tuple[Path, int]]]:
    module.setup(None)
    return module.clips()


def test_the_authors_split_keeps_full_clips_stratified_70_15_15(speech_dir):
    parts = split_of(SpeechCommandsDataModule(speech_dir, split="authors", seed=3))
    # 30 full SC10 clips: floor(0.7 * 30) = 21 train, floor(9 / 2) = 4 val, 5 test.
    assert {name: len(clips) for name, clips in parts.items()} == {
        "train": 21, "val": 4, "test": 5,
    }  # fmt: skip
    per_word = {
        name: [sum(label == SC10.index(w) for _, label in clips) for w in ("yes", "no")]
        for name, clips in parts.items()
    }
    assert per_word == {"train": [14, 7], "val": [3, 1], "test": [3, 2]}
    paths = [path for clips in parts.values() for path, _ in clips]
    assert len(set(paths)) == 30 and all(path.parent.name in ("yes", "no") for path in paths)
    lengths = {p.name: len(p.read_bytes()) for p in paths}
    assert len(set(lengths.values())) == 1  # all 16000-sample WAVs: no short clip
    # The data sets agree with the split, 16000 steps each.
    module = SpeechCommandsDataModule(speech_dir, split="authors", seed=3)
    module.setup(None)
    assert [len(module.datasets[s]) for s in ("train", "val", "test")] == [21, 4, 5]
    assert module.datasets["train"][0][0].shape == (16000, 1)


def test_the_authors_split_is_seeded(speech_dir):
    def train_of(seed):
        return sorted(
            split_of(SpeechCommandsDataModule(speech_dir, split="authors", seed=seed))["train"]
        )

    assert train_of(3) == train_of(3) and train_of(3) != train_of(4)


def test_the_official_split_is_unchanged(speech_dir):
    parts = split_of(SpeechCommandsDataModule(speech_dir))  # lists name 1 val, 1 test per word
    assert {name: len(clips) for name, clips in parts.items()} == {
        "train": 30, "val": 2, "test": 2,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"data.split must be one of \('official', 'authors'\)"):
        SpeechCommandsDataModule(speech_dir, split="random")


def test_the_split_has_scikit_learns_sizes_on_the_full_data_set():
    """34,975 full-length SC10 clips (the count sc.py asserts): train_test_split(train_size=0.7)
    then (train_size=0.5) of the rest gives 24,482 / 5,246 / 5,247."""
    labels = torch.randint(0, 10, (34975,), generator=torch.Generator().manual_seed(0))
    parts = stratified_split(labels, seed=0)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [24482, 5246, 5247]
    together = torch.cat(list(parts.values()))
    assert torch.equal(together.sort().values, torch.arange(34975))
    for c in range(10):  # each word within one example of its share
        share = (labels == c).sum().item() * 24482 / 34975
        assert abs((labels[parts["train"]] == c).sum().item() - share) < 1


def test_proportional_counts_sum_to_the_total():
    assert proportional_counts([20, 10], 21) == [14, 7]
    assert proportional_counts([6, 3], 4) == [3, 1]
    assert proportional_counts([1, 1, 1], 2) == [1, 1, 0]  # ties: the lower class index
    assert proportional_counts([0, 0], 0) == [0, 0]


def test_the_sc10_authors_config_is_theirs():
    config = yaml.safe_load((CONFIGS / "speech" / "sc10_authors.yaml").read_text())
    data, model = config["data"]["init_args"], config["model"]
    assert (data["split"], data["batch_size"]) == ("authors", 32)
    assert (model["weight_decay"], model["scheduler"]) == (0.0, "plateau")
    # Their drop_last and plateau factor and patience are the defaults, left unwritten: the
    # next test holds the resolved config to their values.
    # Everything else as sc10.yaml.
    official = yaml.safe_load((CONFIGS / "speech" / "sc10.yaml").read_text())
    assert config["model"]["backbone"] == official["model"]["backbone"]
    assert data_args(CONFIGS / "speech" / "sc10.yaml").get("split", "official") == "official"


def test_the_reproduction_table_of_the_authors_sc10_is_the_config(capsys):
    """docs/reproduction.md's Speech Commands table, cell by cell, against the resolved config
    (as test_reproduction.py holds the LRA and psMNIST tables)."""
    from helpers.reproduction_tables import expectations, lookup, resolved, sections

    config = resolved("configs/speech/sc10_authors.yaml", capsys)
    rows = sections()["Speech Commands SC10 (the authors' data path)"]
    checked = [(key, expected) for row in rows for key, expected in expectations(row)]
    assert len(checked) >= 9
    for key, expected in checked:
        assert lookup(config, key) == expected, key
