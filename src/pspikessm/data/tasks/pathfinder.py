"""LRA Pathfinder (32, 64, 128, 256 pixels) and Path-X (pathfinder128, length 16384)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from PIL import Image

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.dense import DenseSequences
from pspikessm.data.download import LRA_RELEASE, release_root
from pspikessm.data.errors import missing_data
from pspikessm.data.progress import map_in_threads
from pspikessm.data.splits import check_fraction, seeded_split
from pspikessm.data.textfiles import read_lines

DIFFICULTIES = {
    "easy": "curv_baseline",
    "medium": "curv_contour_length_9",
    "hard": "curv_contour_length_14",
}
RESOLUTIONS = (32, 64, 128, 256)
# The release's one empty image (as S4 and LRA, it is skipped and counted).
KNOWN_EMPTY = {"pathfinder32/curv_baseline/imgs/0/sample_172.png"}


def read_metadata(difficulty_dir: Path) -> list[tuple[Path, int, Path, int]]:
    """``(image path, label, metadata file, line)`` for every line of ``metadata/*.npy``.

    The ``.npy`` files are plain text: ``imgs/<k> sample_<i>.png <i> <label> ...``.
    """
    files = sorted((difficulty_dir / "metadata").glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
    rows = []
    for path in files:
        for number, line in read_lines(path):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or fields[3] not in ("0", "1"):
                raise ValueError(
                    f"{path}:{number}: expected 'imgs/<k> sample_<i>.png <i> <label 0|1> ...', "
                    f"got {line!r}"
                )
            rows.append((difficulty_dir / fields[0] / fields[1], int(fields[3]), path, number))
    return rows


def read_image(path: Path, resolution: int) -> np.ndarray:
    """A grayscale PNG as (resolution²,) uint8; errors name the file."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except OSError as error:
        raise ValueError(f"{path}: unreadable image ({error})") from error
    if pixels.shape != (resolution, resolution):
        raise ValueError(f"{path}: expected {resolution}x{resolution} pixels, got {pixels.shape}")
    return pixels.reshape(-1)


class PathfinderDataModule(SequenceDataModule):
    """Pathfinder: are the two dots connected by a path? Pixel sequences in [0, 1], 2 classes.

    Reads ``pathfinder<resolution>/<difficulty>/{metadata,imgs}`` from ``data_dir`` (the LRA
    release root) or ``data_dir/lra_release``. Path-X is ``resolution=128`` (length 16384).
    The images of the chosen difficulty are split 80/10/10 into train/val/test by a
    permutation seeded with ``seed``. An empty image file (the release has one) is skipped
    and the count logged; any other unreadable image is an error. The cache is keyed by the
    settings and the metadata files (not the 200k images): delete it after editing images in
    place.

    Args:
        resolution: image side, one of 32, 64, 128, 256; sequences have resolution² steps.
        difficulty: ``easy``, ``medium``, ``hard`` (the benchmark; ``curv_contour_length_14``)
            or a folder name.
        val_fraction, test_fraction: shares of the validation and test splits.
        download: fetch the LRA release (about 7 GB, no published checksum) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 2
    resources = (LRA_RELEASE,)

    def __init__(
        self,
        data_dir: str | Path = "data/lra_release",
        resolution: int = 32,
        difficulty: str = "hard",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        download: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        if resolution not in RESOLUTIONS:
            raise ValueError(f"data.resolution must be one of {RESOLUTIONS}, got {resolution}")
        self.resolution = resolution
        self.difficulty = DIFFICULTIES.get(difficulty, difficulty)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        self.test_fraction = check_fraction("data.test_fraction", test_fraction)
        check_fraction("data.val_fraction + data.test_fraction", val_fraction + test_fraction)
        self.cache_name = f"pathfinder{resolution}-{self.difficulty}"

    def root(self) -> Path:
        return release_root(self.data_dir, f"pathfinder{self.resolution}")

    def difficulty_dir(self) -> Path:
        return self.root() / f"pathfinder{self.resolution}" / self.difficulty

    def sources(self) -> list[Path]:
        """The metadata files (stat-ing 200k images for the cache key would be slow)."""
        folder = self.difficulty_dir()
        if metadata := sorted((folder / "metadata").glob("*.npy")):
            return metadata
        raise missing_data(
            "Pathfinder",
            [folder / "metadata" / "<k>.npy"],
            f"metadata/*.npy and imgs/ in {folder} (the LRA release unpacked into "
            f"{self.data_dir}; difficulties {sorted(DIFFICULTIES.values())})",
            [LRA_RELEASE.url],
            partial=folder.exists(),
        )

    def build(self, part: str) -> dict:
        rows = read_metadata(self.difficulty_dir())
        kept, skipped = [], []
        for row in rows:
            relative = row[0].relative_to(self.root()).as_posix()
            if relative in KNOWN_EMPTY or (row[0].exists() and row[0].stat().st_size == 0):
                skipped.append(relative)
            elif not row[0].exists():
                raise FileNotFoundError(f"{row[0]} (listed in {row[2]}:{row[3]}) does not exist")
            else:
                kept.append(row)
        rank_zero_info(
            f"Pathfinder{self.resolution} {self.difficulty}: {len(kept)} images, "
            f"skipped {len(skipped)} empty image(s)" + (f": {skipped[:5]}" if skipped else "")
        )
        pixels = np.empty((len(kept), self.resolution**2), dtype=np.uint8)  # filled in place

        def load(index: int) -> None:
            pixels[index] = read_image(kept[index][0], self.resolution)

        description = f"Decoding pathfinder{self.resolution} images"
        for _ in map_in_threads(load, list(range(len(kept))), description):
            pass
        labels = torch.tensor([label for _, label, _, _ in kept], dtype=torch.int64)
        return {"images": torch.from_numpy(pixels), "labels": labels, "skipped": len(skipped)}

    def load_split(self, split: str) -> DenseSequences:
        cache = self.preprocessed()
        count = cache["labels"].numel()
        fractions = {"val": self.val_fraction, "test": self.test_fraction}
        index = seeded_split(count, self.seed, **fractions)[split]
        images = cache["images"].unsqueeze(-1)  # (N L 1), a view: the splits share it
        return DenseSequences(images, cache["labels"], scale=1 / 255, index=index)
