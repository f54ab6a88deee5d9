"""Speech Commands v0.02: SC35 (all 35 words) and SC10 (ten command words), raw 16 kHz audio."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile
import torch
import torchaudio
from lightning.pytorch.utilities import rank_zero_info

from pspikessm.data.base import SPLITS, SequenceDataModule
from pspikessm.data.dense import DenseSequences
from pspikessm.data.download import SPEECH_COMMANDS
from pspikessm.data.errors import missing_data
from pspikessm.data.progress import map_in_threads
from pspikessm.data.splits import stratified_split
from pspikessm.data.textfiles import read_lines

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
SPLIT_RULES = ("official", "authors")


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz 16-bit mono clip of at most 1 s as int16, zero-padded to 16000 samples."""
    try:
        info = soundfile.info(str(path))
        if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.subtype != "PCM_16":
            raise ValueError(
                f"{path}: expected 16 kHz mono 16-bit PCM, got {info.samplerate} Hz, "
                f"{info.channels} channel(s), {info.subtype}"
            )
        if info.frames == 0:
            raise ValueError(f"{path}: a WAV with no samples (an empty clip)")
        if info.frames > CLIP_LENGTH:
            raise ValueError(f"{path}: {info.frames} samples, longer than 1 s ({CLIP_LENGTH})")
        samples, _ = soundfile.read(str(path), dtype="int16")
    except soundfile.LibsndfileError as error:
        raise ValueError(f"{path}: unreadable WAV ({error})") from error
    return np.pad(samples, (0, CLIP_LENGTH - len(samples)))


def _frames(path: Path) -> int:
    """The number of samples of a WAV file (from its header)."""
    try:
        return soundfile.info(str(path)).frames
    except soundfile.LibsndfileError as error:
        raise ValueError(f"{path}: unreadable WAV ({error})") from error


def mfcc_transform() -> torchaudio.transforms.MFCC:
    """S4's features: 20 coefficients of 64 log-mels, n_fft 200 (161 frames per second)."""
    with warnings.catch_warnings():  # 64 mels over 101 FFT bins leave some filters empty
        warnings.simplefilter("ignore", UserWarning)
        return torchaudio.transforms.MFCC(
            SAMPLE_RATE, MFCC_COEFFICIENTS, log_mels=True, melkwargs={"n_fft": 200, "n_mels": 64}
        )


def _has_layout(folder: Path) -> bool:
    """Whether ``folder`` holds any part of the v0.02 layout (a list file or a word folder)."""
    names = ("validation_list.txt", "testing_list.txt", *SC35)
    return any((folder / name).exists() for name in names)


def features(waves: torch.Tensor, mfcc: bool) -> torch.Tensor:
    """(N, L) int16 clips → (N, L, 1) int16 waveforms, or (N, T, 20) float32 MFCCs."""
    if not mfcc:
        return waves.unsqueeze(-1)
    if not len(waves):
        return torch.zeros(0, 0, MFCC_COEFFICIENTS)
    transform = mfcc_transform()
    # In chunks: the spectrograms of the whole set at once would not fit in memory.
    return torch.cat([transform(c.float() / 32768).transpose(1, 2) for c in waves.split(1024)])


class SpeechCommandsDataModule(SequenceDataModule):
    """Keyword spotting on Speech Commands v0.02.

    Reads the v0.02 layout (one folder per word, ``validation_list.txt``,
    ``testing_list.txt``; with the ``official`` split every other clip is training data) from
    ``data_dir``,
    ``data_dir/speech_commands_v0.02`` or torchaudio's ``data_dir/SpeechCommands/
    speech_commands_v0.02``. Clips are zero-padded to 16000 samples. Inputs are the raw
    waveform (16000, 1) or, with ``mfcc``, S4's MFCC features (161, 20); either way
    normalised per channel with the training split's mean and standard deviation. Each split
    is cached in a file of its own (the SC35 training split is 2.7 GB).

    A word folder outside the 35 words is an error; so is a clip with another rate, width or
    channel count, an empty or unreadable one (the error names the file), and a missing list
    file when the word folders are there (nothing is downloaded then).

    Args:
        classes: ``sc35`` (all 35 words, S4's order) or ``sc10`` (yes, no, up, down, left,
            right, on, off, stop, go; the other words are left out).
        mfcc: MFCC features instead of the raw waveform.
        half_rate_eval: validate and test on every second sample (8 kHz, length 8000), the
            zero-shot resolution change of S4 (raw waveform only).
        split: ``official``: the dataset's validation and testing lists; ``authors``: the
            P-SpikeSSM code's (``src/dataloaders/datasets/sc.py``): clips shorter than 16000
            samples are dropped, the rest split at random, stratified by word, 70/15/15
            (:func:`~pspikessm.data.splits.stratified_split`, seeded with ``seed``; the
            examples differ from theirs, the sizes per split agree).
        download: fetch ``speech_commands_v0.02.tar.gz`` (SHA-256-verified) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    resources = (SPEECH_COMMANDS,)
    cache_parts = SPLITS
    cache_name = "speech"

    def __init__(
        self,
        data_dir: str | Path = "data",
        classes: Literal["sc35", "sc10"] = "sc10",
        mfcc: bool = False,
        half_rate_eval: bool = False,
        split: Literal["official", "authors"] = "official",
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        if classes not in CLASS_SETS:
            raise ValueError(f"data.classes must be one of {sorted(CLASS_SETS)}, got {classes!r}")
        if mfcc and half_rate_eval:
            raise ValueError("data.half_rate_eval applies to the raw waveform; set data.mfcc=false")
        if split not in SPLIT_RULES:
            raise ValueError(f"data.split must be one of {SPLIT_RULES}, got {split!r}")
        self.split = split
        self.classes = classes
        self.words = CLASS_SETS[classes]
        self.mfcc = mfcc
        self.half_rate_eval = half_rate_eval
        self.num_classes = len(self.words)
        self.d_input = MFCC_COEFFICIENTS if mfcc else 1
        self._clips: dict[str, list[tuple[Path, int]]] | None = None

    def download_dir(self) -> Path:
        return self.data_dir / SUBDIR

    def root(self) -> Path:
        """The folder of the layout: the first candidate holding a list file or a word folder."""
        for folder in (
            self.data_dir,
            self.download_dir(),
            self.data_dir / "SpeechCommands" / SUBDIR,
        ):
            if _has_layout(folder):
                return folder
        return self.download_dir()

    def list_files(self) -> dict[str, Path]:
        root = self.root()
        return {"val": root / "validation_list.txt", "test": root / "testing_list.txt"}

    def sources(self) -> list[Path]:
        """The two list files and the word folders of the training clips."""
        root, lists = self.root(), list(self.list_files().values())
        if self.split == "authors":  # their split ignores the lists
            lists = []
        if missing := [path for path in lists if not path.exists()]:
            raise missing_data(
                "Speech Commands",
                missing,
                f"the v0.02 layout (<word>/*.wav, validation_list.txt, testing_list.txt) in "
                f"{self.data_dir} or {self.download_dir()}",
                [SPEECH_COMMANDS.url],
                partial=_has_layout(root),
            )
        if not self.clips()["train"]:
            raise missing_data(
                "Speech Commands",
                [root / "<word>" / "*.wav"],
                f"training clips of {self.words} in {root}",
                partial=True,
            )
        return [*lists, *sorted({path.parent for path, _ in self.clips()["train"]})]

    def clips(self) -> dict[str, list[tuple[Path, int]]]:
        """``split -> [(wav path, class index)]`` of this class set, sorted by path."""
        if self._clips is None:
            self._clips = self._scan() if self.split == "official" else self._scan_authors()
        return self._clips

    def _word_clips(self) -> list[tuple[Path, int]]:
        """Every clip of this class set: ``(wav path, class index)``, sorted by path."""
        root, clips = self.root(), []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name[0] not in "._"):
            if folder.name not in SC35:
                raise ValueError(
                    f"{folder}: the word {folder.name!r} is not one of the 35 words {SC35}"
                )
            if folder.name in self.words:
                index = self.words.index(folder.name)
                clips += [(wav, index) for wav in sorted(folder.glob("*.wav"))]
        return clips

    def _scan_authors(self) -> dict[str, list[tuple[Path, int]]]:
        """The authors' split: full-length clips only, stratified 70/15/15 at random."""
        clips = [
            (path, label) for path, label in self._word_clips() if _frames(path) == CLIP_LENGTH
        ]
        labels = torch.tensor([label for _, label in clips], dtype=torch.int64)
        parts = stratified_split(labels, self.seed) if clips else {}
        return {split: [clips[i] for i in parts.get(split, [])] for split in SPLITS}

    def _scan(self) -> dict[str, list[tuple[Path, int]]]:
        assigned = {}
        for split, path in self.list_files().items():
            for number, line in read_lines(path):
                if entry := line.strip():
                    if entry.split("/")[0] not in SC35:
                        raise ValueError(
                            f"{path}:{number}: {entry!r} is not a clip of the 35 words"
                        )
                    assigned[entry] = split
        splits: dict[str, list[tuple[Path, int]]] = {split: [] for split in SPLITS}
        for wav, label in self._word_clips():
            splits[assigned.get(f"{wav.parent.name}/{wav.name}", "train")].append((wav, label))
        return splits

    def settings(self) -> dict:
        settings = {"classes": self.classes, "mfcc": self.mfcc, "half": self.half_rate_eval}
        if self.split == "authors":  # the key of an official-split cache stays as it was
            settings.update(split=self.split, seed=self.seed)
        return settings

    def build(self, part: str) -> dict:
        clips = self.clips()[part]
        if not clips:
            raise ValueError(f"{self.root()}: no {part} clips of the words {self.words}")
        paths = [path for path, _ in clips]
        waves = list(map_in_threads(read_wav, paths, f"Reading Speech Commands {part} clips"))
        values = torch.from_numpy(np.stack(waves))  # (N 16000) int16
        if self.half_rate_eval and part != "train":
            values = values[:, ::2]
        values = features(values, self.mfcc)
        scaled = values.float() / (1 if self.mfcc else 32768)
        rank_zero_info(
            f"Speech Commands {self.classes} {part}: {len(clips)} clips, features "
            f"{tuple(values.shape)}"
        )
        return {
            "values": values.contiguous(),
            "labels": torch.tensor([label for _, label in clips], dtype=torch.int64),
            "mean": scaled.mean(dim=(0, 1)),
            "std": scaled.std(dim=(0, 1)).clamp_min(1e-8),
        }

    def load_split(self, split: str) -> DenseSequences:
        train = self.preprocessed("train")
        data = self.preprocessed(split)
        scale = 1.0 if self.mfcc else 1 / 32768
        return DenseSequences(data["values"], data["labels"], scale, train["mean"], train["std"])
