"""Writers of tiny data sets in each task's real on-disk layout (see datasets.md)."""

from __future__ import annotations

import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image

IMDB_WORDS = {0: "awful bad boring dull ", 1: "great good superb fine "}


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an idx file (the format :mod:`pspikessm.data.idx` reads)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def write_imdb(root: Path, per_class: int = 6, tarball: bool = False) -> Path:
    """``root/aclImdb/{train,test}/{neg,pos}/<i>_<stars>.txt`` (or the tarball of it)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, name in enumerate(("neg", "pos")):
            folder = root / "aclImdb" / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                words = IMDB_WORDS[label].split()
                text = " ".join(rng.choice(words, size=5 + 3 * i)) + (" é" if i == 0 else "")
                (folder / f"{i}_{7 if label else 2}.txt").write_text(text, encoding="utf-8")
    if tarball:
        with tarfile.open(root / "aclImdb_v1.tar.gz", "w:gz") as archive:
            archive.add(root / "aclImdb", arcname="aclImdb")
        import shutil

        shutil.rmtree(root / "aclImdb")
    return root


def write_aan(root: Path, rows: int = 12) -> Path:
    """``root/tsv_data/new_aan_pairs.{train,eval,test}.tsv``: label, id1, id2, text1, text2."""
    folder = root / "tsv_data"
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "eval", "test"):
        lines = []
        for i in range(rows):
            label = i % 2
            text1 = "abc " * (i + 1)
            text2 = text1 if label else "xyz " * (i + 2)
            lines.append(f"{float(label)}\tid{i}a\tid{i}b\t{text1}\t{text2}")
        (folder / f"new_aan_pairs.{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


def write_cifar(root: Path, per_batch: int = 12) -> Path:
    """``root/cifar-10-batches-py/{data_batch_1..5,test_batch}`` pickles (uint8 N×3072)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = [int(x) for x in rng.integers(0, 10, per_batch)]
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with (folder / name).open("wb") as handle:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, handle)
    return root


def write_pathfinder(
    root: Path, resolution: int = 32, difficulty: str = "curv_contour_length_14", count: int = 20
) -> Path:
    """``root/pathfinder<r>/<difficulty>/{metadata/<k>.npy, imgs/<k>/sample_<i>.png}``.

    Label 1 images are bright, label 0 dark, so a model can tell them apart. Two metadata
    files; the last listed image of the second one is an empty (0-byte) file.
    """
    base = root / f"pathfinder{resolution}" / difficulty
    (base / "metadata").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(2):
        (base / "imgs" / str(k)).mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(count // 2):
            label = i % 2
            pixels = rng.integers(0, 100, (resolution, resolution)) + 150 * label
            Image.fromarray(pixels.astype(np.uint8), mode="L").save(
                base / "imgs" / str(k) / f"sample_{i}.png"
            )
            lines.append(f"imgs/{k} sample_{i}.png {i} {label} 0 0")
        if k == 1:
            (base / "imgs" / "1" / "sample_empty.png").write_bytes(b"")
            lines.append("imgs/1 sample_empty.png 99 1 0 0")
        (base / "metadata" / f"{k}.npy").write_text("\n".join(lines) + "\n")
    return root


def write_mnist(root: Path, train: tuple, test: tuple) -> Path:
    """``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` from (images, labels)."""
    raw = root / "MNIST" / "raw"
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def random_mnist(root: Path, num_train: int = 40, num_test: int = 10) -> Path:
    rng = np.random.default_rng(0)
    make = lambda n: (rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n))  # noqa: E731
    return write_mnist(root, make(num_train), make(num_test))


def write_speech(
    root: Path, words: dict[str, list[np.ndarray]], val: int = 1, test: int = 1
) -> Path:
    """The v0.02 layout: ``root/<word>/<i>_nohash_0.wav`` (16 kHz int16), the last ``val`` +
    ``test`` clips of each word listed in ``validation_list.txt`` / ``testing_list.txt``."""
    val_lines, test_lines = [], []
    for word, clips in words.items():
        (root / word).mkdir(parents=True, exist_ok=True)
        for i, clip in enumerate(clips):
            name = f"{word}/{i:04d}_nohash_0.wav"
            soundfile.write(root / name, clip, 16000, subtype="PCM_16")
            if i >= len(clips) - val - test:
                (val_lines if i < len(clips) - test else test_lines).append(name)
    (root / "_background_noise_").mkdir(exist_ok=True)
    (root / "validation_list.txt").write_text("\n".join(val_lines) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test_lines) + "\n")
    return root


def tone_clips(words: list[str], per_word: int = 4) -> dict[str, list[np.ndarray]]:
    """A different pure tone per word, clips of varied lengths (<= 1 s)."""
    clips = {}
    for w, word in enumerate(words):
        t = np.arange(16000) / 16000
        clips[word] = [
            (0.3 * np.sin(2 * np.pi * (200 + 100 * w) * t[: 8000 + 2000 * i])).astype(np.float32)
            for i in range(per_word)
        ]
    return clips


def full_and_short_clips(full: dict[str, int], short: int = 1) -> dict[str, list[np.ndarray]]:
    """For each word, ``full[word]`` one-second tones (16000 samples) and then ``short``
    shorter ones (12000 samples): the authors' Speech Commands split keeps only the first."""
    t = np.arange(16000) / 16000
    clips = {}
    for w, (word, count) in enumerate(full.items()):
        tone = (0.3 * np.sin(2 * np.pi * (200 + 100 * w) * t)).astype(np.float32)
        clips[word] = [tone * (1 - 0.01 * i) for i in range(count)] + [tone[:12000]] * short
    return clips
