"""Speech Commands v0.02: SC35 (all 35 words) and SC10 (ten command words), raw 16 kHz audio."""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile
import torch
import torchaudio
from lightning.pytorch.utilities import rank_zero_info

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.cache import cache_key, load_or_build
from pspikessm.data.dense import DenseSequences
from pspikessm.data.download import SPEECH_COMMANDS, fetch, missing_files_error

#: S4's class order of the 35 words.
SC35 = (
    "bed", "cat", "down", "five", "forward", "go", "house", "left", "marvin", "no", "on",
    "right", "sheila", "tree", "up", "visual", "yes", "backward", "bird", "dog", "eight",
    "follow", "four", "happy", "learn", "nine", "off", "one", "seven", "six", "stop", "three",
    "two", "wow", "zero",
)  # fmt: skip
SC10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
CLASS_SETS = {"sc35": SC35, "sc10": SC10}
SAMPLE_RATE = 16000
CLIP_LENGTH = 16000
MFCC_COEFFICIENTS = 20
SUBDIR = "speech_commands_v0.02"


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz 16-bit mono clip of at most 1 s as int16, zero-padded to 16000 samples."""
    try:
        info = soundfile.info(str(path))
        if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.subtype != "PCM_16":
            raise ValueError(
                f"{path}: expected 16 kHz mono 16-bit PCM, got {info.samplerate} Hz, "
                f"{info.channels} channel(s), {info.subtype}"
            )
        if info.frames > CLIP_LENGTH:
            raise ValueError(f"{path}: {info.frames} samples, longer than 1 s ({CLIP_LENGTH})")
        samples, _ = soundfile.read(str(path), dtype="int16")
    except soundfile.LibsndfileError as error:
        raise ValueError(f"{path}: unreadable WAV ({error})") from error
    return np.pad(samples, (0, CLIP_LENGTH - len(samples)))


def mfcc_transform() -> torchaudio.transforms.MFCC:
    """S4's features: 20 coefficients of 64 log-mels, n_fft 200 (161 frames per second)."""
    with warnings.catch_warnings():  # 64 mels over 101 FFT bins leave some filters empty
        warnings.simplefilter("ignore", UserWarning)
        return torchaudio.transforms.MFCC(
            SAMPLE_RATE, MFCC_COEFFICIENTS, log_mels=True, melkwargs={"n_fft": 200, "n_mels": 64}
        )


class SpeechCommandsDataModule(SequenceDataModule):
    """Keyword spotting on Speech Commands v0.02.

    Reads the v0.02 layout (one folder per word, ``validation_list.txt``,
    ``testing_list.txt``; every other clip is training data) from ``data_dir``,
    ``data_dir/speech_commands_v0.02`` or torchaudio's ``data_dir/SpeechCommands/
    speech_commands_v0.02``. Clips are zero-padded to 16000 samples. Inputs are the raw
    waveform (16000, 1) or, with ``mfcc``, S4's MFCC features (161, 20); either way
    normalised per channel with the training split's mean and standard deviation.

    A word folder outside the 35 words is an error; so is a clip with another rate, width or
    channel count, or an unreadable one (the error names the file).

    Args:
        classes: ``sc35`` (all 35 words, S4's order) or ``sc10`` (yes, no, up, down, left,
            right, on, off, stop, go; the other words are left out).
        mfcc: MFCC features instead of the raw waveform.
        half_rate_eval: validate and test on every second sample (8 kHz, length 8000), the
            zero-shot resolution change of S4 (raw waveform only).
        download: fetch ``speech_commands_v0.02.tar.gz`` (SHA-256-verified) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    vocab_size = 0

    def __init__(
        self,
        data_dir: str | Path = "data",
        classes: Literal["sc35", "sc10"] = "sc10",
        mfcc: bool = False,
        half_rate_eval: bool = False,
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        if classes not in CLASS_SETS:
            raise ValueError(f"data.classes must be one of {sorted(CLASS_SETS)}, got {classes!r}")
        if mfcc and half_rate_eval:
            raise ValueError("data.half_rate_eval applies to the raw waveform; set data.mfcc=false")
        self.classes = classes
        self.words = CLASS_SETS[classes]
        self.mfcc = mfcc
        self.half_rate_eval = half_rate_eval
        self.download = download
        self.num_classes = len(self.words)
        self.d_input = MFCC_COEFFICIENTS if mfcc else 1
        self._clips: dict[str, list[tuple[Path, int]]] | None = None
        self._splits: dict[str, dict] = {}  # loaded caches (the SC35 train split is 2.7 GB)

    def root(self) -> Path:
        for folder in (
            self.data_dir,
            self.data_dir / SUBDIR,
            self.data_dir / "SpeechCommands" / SUBDIR,
        ):
            if (folder / "validation_list.txt").exists():
                return folder
        return self.data_dir / SUBDIR

    def prepare_data(self) -> None:
        if self.download and not (self.root() / "validation_list.txt").exists():
            fetch([SPEECH_COMMANDS], self.data_dir / SUBDIR)
        for split in ("train", "val", "test"):
            self.preprocessed(split)

    def clips(self) -> dict[str, list[tuple[Path, int]]]:
        """``split -> [(wav path, class index)]`` of this class set, sorted by path."""
        if self._clips is None:
            self._clips = self._scan()
        return self._clips

    def _scan(self) -> dict[str, list[tuple[Path, int]]]:
        root = self.root()
        lists = {
            split: root / f"{name}_list.txt"
            for split, name in (("val", "validation"), ("test", "testing"))
        }
        missing = [path for path in lists.values() if not path.exists()]
        if missing:
            raise missing_files_error(
                "Speech Commands",
                missing,
                f"the v0.02 layout (<word>/*.wav, validation_list.txt, testing_list.txt) in "
                f"{self.data_dir} or {self.data_dir / SUBDIR}",
                [SPEECH_COMMANDS],
            )
        assigned = {}
        for split, path in lists.items():
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if entry := line.strip():
                    if entry.split("/")[0] not in SC35:
                        raise ValueError(
                            f"{path}:{number}: {entry!r} is not a clip of the 35 words"
                        )
                    assigned[entry] = split
        splits: dict[str, list[tuple[Path, int]]] = {"train": [], "val": [], "test": []}
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] not in "._"):
            if folder.name not in SC35:
                raise ValueError(
                    f"{folder}: the word {folder.name!r} is not one of the 35 words {SC35}"
                )
            if folder.name not in self.words:
                continue
            for wav in sorted(folder.glob("*.wav")):
                split = assigned.get(f"{folder.name}/{wav.name}", "train")
                splits[split].append((wav, self.words.index(folder.name)))
        return splits

    def preprocessed(self, split: str) -> dict:
        """The features, labels and normalisation statistics of ``split``, cached."""
        if split not in self._splits:
            self._splits[split] = self._load(split)
        return self._splits[split]

    def _load(self, split: str) -> dict:
        root = self.root()
        clips = self.clips()
        if not clips["train"]:
            raise missing_files_error(
                "Speech Commands",
                [root / "<word>" / "*.wav"],
                f"training clips of {self.words} in {root}",
                [SPEECH_COMMANDS],
            )
        sources = [
            root / "validation_list.txt",
            root / "testing_list.txt",
            *sorted({p.parent for p, _ in clips["train"]}),
        ]
        half = self.half_rate_eval and split != "train"
        settings = {
            "task": "speech",
            "classes": self.classes,
            "mfcc": self.mfcc,
            "half": half,
            "files": len(clips[split]),
            "v": 1,
        }
        name = f"speech-{split}-{cache_key(settings, sources)}.pt"
        return load_or_build(root / ".cache" / name, lambda: self._build(clips[split], half))

    def _build(self, clips: list[tuple[Path, int]], half_rate: bool) -> dict:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            waves = list(pool.map(read_wav, [path for path, _ in clips]))
        values = (
            torch.from_numpy(np.stack(waves))
            if waves
            else torch.zeros(0, CLIP_LENGTH, dtype=torch.int16)
        )
        if half_rate:
            values = values[:, ::2]
        if self.mfcc:
            transform = mfcc_transform()
            features = (
                torch.cat(  # in chunks: the whole set's spectrograms would not fit
                    [
                        transform(chunk.float() / 32768).transpose(1, 2)
                        for chunk in values.split(1024)
                    ]
                )
                if len(values)
                else torch.zeros(0, 0, MFCC_COEFFICIENTS)
            )  # (N T 20)
        else:
            features = values.unsqueeze(-1)  # (N L 1) int16
        scaled = features.float() / (1 if self.mfcc else 32768)
        rank_zero_info(
            f"Speech Commands {self.classes}: {len(clips)} clips, features {tuple(features.shape)}"
        )
        return {
            "values": features.contiguous(),
            "labels": torch.tensor([label for _, label in clips], dtype=torch.int64),
            "mean": scaled.mean(dim=(0, 1)),
            "std": scaled.std(dim=(0, 1)).clamp_min(1e-8),
        }

    def load_split(self, split: str) -> DenseSequences:
        train = self.preprocessed("train")
        data = train if split == "train" else self.preprocessed(split)
        scale = 1.0 if self.mfcc else 1 / 32768
        return DenseSequences(data["values"], data["labels"], scale, train["mean"], train["std"])
