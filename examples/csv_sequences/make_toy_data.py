"""Write a toy data set in the layout of ``csv_sequences.py``: noisy 2-channel oscillations.

Three classes (``slow``, ``medium``, ``fast``) differ in frequency; lengths vary from 40 to
120 steps; files are CSV with a header row. There is no ``val/`` folder, so the data module
holds out part of ``train/``.

    python examples/csv_sequences/make_toy_data.py --out data/toy-csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

#: Class name → cycles per 100 steps.
FREQUENCIES = {"slow": 2.0, "medium": 5.0, "fast": 10.0}


def write_toy_data(out: Path, per_class: dict[str, int] | None = None, seed: int = 0) -> Path:
    """Write ``out/{train,test}/<class>/<index>.csv``; returns ``out``.

    Args:
        out: destination folder (created).
        per_class: files per class of each split (default: train 60, test 20).
        seed: seed of lengths, phases and noise.
    """
    per_class = per_class or {"train": 60, "test": 20}
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for class_name, frequency in FREQUENCIES.items():
            folder = out / split / class_name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                steps = np.arange(rng.integers(40, 121))
                phase = rng.uniform(0, 2 * np.pi)
                angle = 2 * np.pi * frequency * steps / 100 + phase
                signal = np.stack([np.sin(angle), np.cos(angle)], axis=1)  # (L, 2)
                signal += 0.3 * rng.standard_normal(signal.shape)
                np.savetxt(
                    folder / f"{index:04d}.csv", signal, delimiter=",", header="x,y", comments=""
                )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/toy-csv"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"wrote {write_toy_data(args.out, seed=args.seed)}")


if __name__ == "__main__":
    main()
