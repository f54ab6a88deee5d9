"""Reader of the idx format of the MNIST files (the tests' writer: ``tests/helpers/task_files.py``).

torchvision's MNIST reads these files from ``MNIST/raw/``, but torchvision is not a dependency
(its wheels pin one torch version), and the format is small: a 4-byte magic
``0x00 0x00 <dtype code> <number of dims>``, one big-endian int32 per dimension, then the
values in C order. MNIST uses dtype code 0x08 (uint8).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> torch.Tensor:
    """The array stored in an idx file (optionally gzipped), e.g. (N, 28, 28) uint8 images."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path}: not an idx file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}i", data[4:header])
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{path}: header promises shape {shape} ({expected} bytes of data), "
            f"file holds {len(data) - header}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True))
