"""Every task's data module on tiny files in the real layout: shapes, lengths, labels, splits."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.task_files import (
    random_mnist,
    tone_clips,
    write_aan,
    write_cifar,
    write_idx,
    write_imdb,
    write_pathfinder,
    write_speech,
)
from pspikessm.data import (
    CIFAR10DataModule,
    IMDBDataModule,
    MNISTDataModule,
    PathfinderDataModule,
    RetrievalDataModule,
    SpeechCommandsDataModule,
)
from pspikessm.data.idx import read_idx
from pspikessm.data.tasks.cifar import to_grayscale
from pspikessm.data.tasks.mnist import bitrev_permutation
from pspikessm.data.tasks.speech_commands import SC10, SC35


def splits(module):
    module.setup(None)
    return module.datasets["train"], module.datasets["val"], module.datasets["test"]


# --- MNIST ---------------------------------------------------------------------------------


def test_idx_round_trip_and_bad_magic(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array)
    assert torch.equal(read_idx(tmp_path / "a"), torch.from_numpy(array))
    (tmp_path / "b").write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "b")
    (tmp_path / "c").write_bytes((tmp_path / "a").read_bytes()[:-1])
    with pytest.raises(ValueError, match="header promises"):
        read_idx(tmp_path / "c")


def test_mnist_split_shapes_and_pixels(tmp_path):
    random_mnist(tmp_path, num_train=40, num_test=10)
    module = MNISTDataModule(tmp_path, val_fraction=0.15, download=False)
    assert (module.num_classes, module.vocab_size, module.d_input) == (10, 0, 1)
    train, val, test = splits(module)
    assert (len(train), len(val), len(test)) == (34, 6, 10)
    images = read_idx(tmp_path / "MNIST/raw/train-images-idx3-ubyte").reshape(40, 784)
    seen = {tuple((x[:, 0] * 255).round().to(torch.uint8).tolist()) for x, _ in [*train, *val]}
    assert seen == {tuple(row.tolist()) for row in images}  # disjoint and complete
    sequence, label = test[3]
    assert sequence.shape == (784, 1) and sequence.min() >= 0 and sequence.max() <= 1
    labels = read_idx(tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte")
    assert label == int(labels[3])


def test_bitrev_permutation_is_s4s():
    order = bitrev_permutation(784)
    assert order[:8].tolist() == [0, 512, 256, 768, 128, 640, 384, 64]  # 896 (7 reversed) dropped
    assert sorted(order.tolist()) == list(range(784))


def test_psmnist_applies_the_permutation(tmp_path):
    random_mnist(tmp_path, num_train=12, num_test=4)
    plain = MNISTDataModule(tmp_path, val_fraction=0.2, download=False)
    permuted = MNISTDataModule(tmp_path, val_fraction=0.2, permutation="bitrev", download=False)
    (x, _), (y, _) = splits(plain)[2][1], splits(permuted)[2][1]
    assert torch.equal(y, x[bitrev_permutation()])
    seeded = MNISTDataModule(tmp_path, val_fraction=0.2, permutation="random", permutation_seed=3)
    assert torch.equal(
        seeded.order(), MNISTDataModule(tmp_path, permutation="random", permutation_seed=3).order()
    )
    assert not torch.equal(seeded.order(), bitrev_permutation())


# --- CIFAR-10 ------------------------------------------------------------------------------


def test_cifar_grayscale_split_and_normalisation(tmp_path):
    write_cifar(tmp_path, per_batch=12)
    train, val, test = splits(CIFAR10DataModule(tmp_path, val_fraction=0.1, download=False))
    assert (len(train), len(val), len(test)) == (54, 6, 12)
    assert torch.stack([x for x, _ in train]).shape == (54, 1024, 1)
    # The authors' fixed constants (S4's), whatever the data's own statistics.
    assert (float(test.mean), float(test.std)) == (
        pytest.approx(122.6 / 255), pytest.approx(61.0 / 255),
    )  # fmt: skip
    with (tmp_path / "cifar-10-batches-py/test_batch").open("rb") as handle:
        batch = pickle.load(handle, encoding="bytes")
    for index in range(len(test)):
        rgb = batch[b"data"][index].reshape(3, 32, 32).transpose(1, 2, 0)
        gray = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32).reshape(-1)
        x, label = test[index]
        expected = (gray / 255 - 122.6 / 255) / (61.0 / 255)
        np.testing.assert_allclose(x[:, 0].numpy(), expected, rtol=0, atol=1e-5)
        assert label == batch[b"labels"][index]


@pytest.mark.slow  # all 2^24 colours
def test_cifar_gray_levels_are_pils_for_every_colour():
    """to_grayscale (integer arithmetic) against PIL's convert("L") on all 2^24 colours."""
    colours = np.arange(1 << 24, dtype=np.int64)
    rgb = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], -1).astype(np.uint8)
    pil = np.asarray(Image.fromarray(rgb.reshape(4096, 4096, 3)).convert("L")).reshape(-1)
    planes = rgb.reshape(-1, 1024, 3).transpose(0, 2, 1).reshape(-1, 3072)  # CIFAR's layout
    assert np.array_equal(to_grayscale(planes).numpy().reshape(-1), pil)


def test_cifar_bad_pickle_names_the_file(tmp_path):
    write_cifar(tmp_path, per_batch=2)
    (tmp_path / "cifar-10-batches-py/data_batch_3").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="data_batch_3"):
        CIFAR10DataModule(tmp_path, val_fraction=0.1).setup("fit")


# --- IMDB ----------------------------------------------------------------------------------


@pytest.mark.parametrize("tarball", [False, True])
def test_imdb_characters_vocabulary_and_splits(tmp_path, tarball):
    write_imdb(tmp_path, per_class=6, tarball=tarball)
    module = IMDBDataModule(tmp_path, max_length=40, min_freq=3, download=False)
    vocabulary = module.vocabulary
    assert module.vocab_size == len(vocabulary)
    assert "é" not in vocabulary.index  # twice in train (once per class): below min_freq
    assert {"a", "g", " "} <= set(vocabulary.tokens)
    train, val, test = splits(module)
    assert (len(train), len(val), len(test)) == (12, 12, 12)
    assert val is test or torch.equal(val.values, test.values)  # test doubles as validation
    lengths = train.lengths()
    assert int(lengths.max()) == 40  # truncated to 39 characters + <eos>
    sequence, label = train[0]  # sorted names: aclImdb/train/neg/0_2.txt
    assert label == 0 and int(sequence[-1]) == vocabulary.eos_id
    text = (tmp_path / "aclImdb/train/neg/0_2.txt").read_text() if not tarball else None
    if text is not None:
        assert vocabulary.encode(text[:5]) == sequence[:5].tolist()


def test_imdb_validation_fraction_holds_out_training_reviews(tmp_path):
    write_imdb(tmp_path, per_class=5)
    train, val, test = splits(IMDBDataModule(tmp_path, min_freq=1, val_fraction=0.2))
    assert (len(train), len(val), len(test)) == (8, 2, 10)


def test_cache_reused_and_invalidated_by_settings(tmp_path, monkeypatch):
    write_imdb(tmp_path, per_class=3)
    IMDBDataModule(tmp_path, max_length=30).prepare_data()
    first = set((tmp_path / ".cache").iterdir())
    monkeypatch.setattr(IMDBDataModule, "build", lambda *a: pytest.fail("cache not reused"))
    IMDBDataModule(tmp_path, max_length=30).prepare_data()
    monkeypatch.undo()
    IMDBDataModule(tmp_path, max_length=31).prepare_data()
    assert len(set((tmp_path / ".cache").iterdir()) - first) == 1


# --- AAN retrieval -------------------------------------------------------------------------


def test_aan_pairs_batch_format(tmp_path):
    write_aan(tmp_path, rows=12)
    module = RetrievalDataModule(tmp_path, max_length=20)
    assert module.dual_input and module.num_classes == 2
    assert set(module.vocabulary.tokens[3:]) == {" ", "a", "b", "c", "x", "y", "z"}
    train, val, test = splits(module)
    assert (len(train), len(val), len(test)) == (12, 12, 12)
    module.batch_size = 4
    inputs, lengths, targets = next(iter(module.train_dataloader()))
    assert inputs.shape[:2] == (4, 2) and inputs.dtype == torch.int64
    assert lengths.shape == (4, 2) and targets.shape == (4,)
    assert int(lengths.max()) <= 20 and inputs.shape[2] == int(lengths.max())
    (first, second), label = train[1]  # row 1: label 1, identical documents
    assert label == 1 and torch.equal(first, second) and len(first) == 9  # "abc " + <eos>
    (first, second), label = train[0]
    assert label == 0 and not torch.equal(first, second)


@pytest.mark.parametrize(
    ("line", "message"),
    [("2\ta\tb\tx\ty", "label must be 0 or 1"), ("1\ta\tb\tx", "expected 5 tab-separated")],
)
def test_aan_bad_rows_name_file_and_line(tmp_path, line, message):
    write_aan(tmp_path, rows=2)
    path = tmp_path / "tsv_data/new_aan_pairs.eval.tsv"
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(ValueError, match=rf"new_aan_pairs.eval.tsv:3: {message}"):
        RetrievalDataModule(tmp_path).prepare_data()


# --- Pathfinder ----------------------------------------------------------------------------


def test_pathfinder_split_pixels_and_empty_image(tmp_path, monkeypatch):
    write_pathfinder(tmp_path, resolution=32, count=20)
    logged = []
    monkeypatch.setattr("pspikessm.data.tasks.pathfinder.rank_zero_info", logged.append)
    module = PathfinderDataModule(tmp_path, resolution=32)
    train, val, test = splits(module)
    assert any("20 images, skipped 1 empty image" in line for line in logged)
    assert module.preprocessed()["skipped"] == 1
    assert (len(train), len(val), len(test)) == (16, 2, 2)
    x, label = train[0]
    assert x.shape == (1024, 1) and x.min() >= 0 and x.max() <= 1
    every = [*train, *val, *test]
    assert all((float(x.mean()) > 0.5) == bool(y) for x, y in every)  # bright ⇔ connected
    again = PathfinderDataModule(tmp_path, resolution=32, seed=0)
    assert torch.equal(splits(again)[1].index, val.index)  # the same seeded split


def test_pathfinder_difficulty_and_bad_images(tmp_path):
    write_pathfinder(tmp_path, resolution=32, difficulty="curv_baseline", count=4)
    with pytest.raises(FileNotFoundError, match="curv_contour_length_14"):
        PathfinderDataModule(tmp_path).prepare_data()
    assert (
        len(
            splits(
                PathfinderDataModule(
                    tmp_path, difficulty="easy", val_fraction=0.25, test_fraction=0.25
                )
            )[0]
        )
        == 2
    )
    # The cache is keyed by the metadata files only (stat-ing 200k images per run is slow).
    shutil.rmtree(tmp_path / ".cache")
    bad = tmp_path / "pathfinder32/curv_baseline/imgs/0/sample_1.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="sample_1.png: unreadable"):
        PathfinderDataModule(tmp_path, difficulty="easy").prepare_data()
    Image.new("L", (16, 16)).save(bad)
    with pytest.raises(ValueError, match="expected 32x32"):
        PathfinderDataModule(tmp_path, difficulty="easy").prepare_data()


# --- Speech Commands -----------------------------------------------------------------------


@pytest.fixture
def speech_dir(tmp_path):
    return write_speech(tmp_path / "speech_commands_v0.02", tone_clips(["yes", "no", "bed"], 4))


def test_speech_commands_sc10_and_sc35(speech_dir):
    sc10 = SpeechCommandsDataModule(speech_dir.parent, classes="sc10", download=False)
    assert (sc10.num_classes, sc10.d_input, sc10.vocab_size) == (10, 1, 0)
    train, val, test = splits(sc10)
    assert (len(train), len(val), len(test)) == (4, 2, 2)  # "bed" is not an SC10 word
    assert sorted(set(train.targets.tolist())) == [SC10.index("yes"), SC10.index("no")]
    x, _ = train[0]
    assert x.shape == (16000, 1)
    stacked = torch.stack([x for x, _ in train])
    assert abs(float(stacked.mean())) < 1e-4 and abs(float(stacked.std()) - 1) < 1e-2
    sc35 = SpeechCommandsDataModule(speech_dir, classes="sc35")
    assert sc35.num_classes == 35
    train, val, test = splits(sc35)
    assert (len(train), len(val), len(test)) == (6, 3, 3)
    assert SC35.index("bed") in train.targets.tolist()


def test_speech_commands_mfcc_and_half_rate(speech_dir):
    mfcc = SpeechCommandsDataModule(speech_dir, mfcc=True)
    assert mfcc.d_input == 20
    assert splits(mfcc)[0][0][0].shape == (161, 20)
    half = SpeechCommandsDataModule(speech_dir, half_rate_eval=True)
    train, val, test = splits(half)
    assert train[0][0].shape == (16000, 1) and val[0][0].shape == test[0][0].shape == (8000, 1)


@pytest.mark.parametrize(
    ("rate", "subtype", "message"),
    [(8000, "PCM_16", "8000 Hz"), (16000, "PCM_U8", "PCM_U8"), (None, None, "unreadable WAV")],
)
def test_speech_commands_bad_wav_names_the_file(speech_dir, rate, subtype, message):
    import soundfile

    path = speech_dir / "yes/0000_nohash_0.wav"
    if rate is None:
        path.write_bytes(b"RIFF garbage")
    else:
        soundfile.write(path, np.zeros(100, np.float32), rate, subtype=subtype)
    with pytest.raises(ValueError, match=rf"0000_nohash_0.wav.*{message}|{message}.*0000_nohash_0"):
        SpeechCommandsDataModule(speech_dir).setup("fit")


def test_speech_commands_unknown_word_is_an_error(speech_dir):
    (speech_dir / "banana").mkdir()
    with pytest.raises(ValueError, match="'banana' is not one of the 35 words"):
        SpeechCommandsDataModule(speech_dir).setup("fit")


def test_lra_tasks_find_the_unpacked_release_folder(tmp_path):
    """``data_dir`` may be the release itself or the folder the archive was unpacked into."""
    write_aan(tmp_path / "lra_release", rows=2)
    write_pathfinder(tmp_path / "lra_release", resolution=32, count=4)
    assert len(splits(RetrievalDataModule(tmp_path))[0]) == 2
    assert (
        len(splits(PathfinderDataModule(tmp_path, val_fraction=0.25, test_fraction=0.25))[0]) == 2
    )


def test_mnist_label_outside_the_classes_is_an_error(tmp_path):
    random_mnist(tmp_path, num_train=4, num_test=2)
    write_idx(tmp_path / "MNIST/raw/t10k-labels-idx1-ubyte", np.array([3, 10]))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: label 10 outside 0-9"):
        MNISTDataModule(tmp_path, val_fraction=0.25).prepare_data()


def test_speech_commands_list_entry_outside_the_words_is_an_error(speech_dir):
    with (speech_dir / "testing_list.txt").open("a") as handle:
        handle.write("banana/0000_nohash_0.wav\n")
    with pytest.raises(ValueError, match=r"testing_list.txt:\d+: 'banana/0000_nohash_0.wav'"):
        SpeechCommandsDataModule(speech_dir).setup("fit")
    with pytest.raises(ValueError, match="half_rate_eval applies to the raw waveform"):
        SpeechCommandsDataModule(speech_dir, mfcc=True, half_rate_eval=True)
