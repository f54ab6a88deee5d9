"""Fetching public data sets: download once, verify the published checksum, unpack.

Every task data module calls :func:`fetch` from ``prepare_data`` (rank 0 only) when its files
are missing and ``download`` is on, and :func:`missing_files_error` otherwise, so a user always
learns what was expected where and how to get it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info


@dataclass(frozen=True)
class Resource:
    """One public file.

    Attributes:
        url: where it is published.
        filename: name of the downloaded file.
        md5: published MD5 checksum (or None where none is published).
        sha256: published SHA-256 checksum (or None).
        extract: unpack the file (tar, tar.gz or plain .gz) into the target folder.
    """

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    extract: bool = True


MNIST_RESOURCES = tuple(
    Resource(f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}.gz", f"{name}.gz", md5)
    for name, md5 in (
        ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
    )
)
CIFAR10 = Resource(
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
IMDB = Resource(
    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    "aclImdb_v1.tar.gz",
    md5="7c2ac02c03563afcf9b574c7e56c153a",
    extract=False,  # read straight from the tarball: unpacked it is 100k small files
)
SPEECH_COMMANDS = Resource(
    "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    "speech_commands_v0.02.tar.gz",
    sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
)
# No checksum is published for the LRA release (about 7 GB; a tar archive despite the name).
LRA_RELEASE = Resource(
    "https://storage.googleapis.com/long-range-arena/lra_release.gz", "lra_release.tar"
)


def release_root(data_dir: Path, marker: str) -> Path:
    """The LRA release folder: ``data_dir`` itself, or the ``lra_release/`` the archive
    unpacks into under it, whichever holds ``marker`` (e.g. ``tsv_data``)."""
    nested = data_dir / "lra_release"
    if not (data_dir / marker).exists() and (nested / marker).exists():
        return nested
    return data_dir


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, resource: Resource) -> None:
    """Raise if ``path`` does not match the published checksum of ``resource``."""
    for algorithm, expected in (("md5", resource.md5), ("sha256", resource.sha256)):
        if expected is not None and (actual := file_digest(path, algorithm)) != expected:
            raise OSError(
                f"{path}: {algorithm} checksum {actual} does not match the published {expected} "
                f"of {resource.url}; delete the file and download again"
            )


def _download(resource: Resource, path: Path) -> None:
    """Download to a temporary file, then rename: an interrupted download leaves nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rank_zero_info(f"Downloading {resource.url} to {path}")
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(resource.url) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        os.replace(tmp, path)
    except (urllib.error.URLError, OSError) as error:
        raise OSError(
            f"could not download {resource.url} to {path} ({error}). Without internet, download "
            f"it elsewhere and place it at {path} (or unpack it into {path.parent})."
        ) from error
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _extract(path: Path, target: Path) -> None:
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            # The "data" filter refuses absolute paths and links out of the target folder.
            if hasattr(tarfile, "data_filter"):
                archive.extractall(target, filter="data")
            else:  # Python < 3.10.12
                archive.extractall(target)
    elif path.suffix == ".gz":
        import gzip

        with gzip.open(path, "rb") as source, (target / path.stem).open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    else:
        raise OSError(f"{path}: not a tar or gzip archive")


def fetch(resources: Iterable[Resource], target: Path) -> None:
    """Download (unless present), verify and unpack each resource into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for resource in resources:
        path = target / resource.filename
        if not path.exists():
            _download(resource, path)
        verify(path, resource)
        if resource.extract:
            rank_zero_info(f"Unpacking {path} into {target}")
            _extract(path, target)


def missing_files_error(
    task: str, missing: Iterable[Path], expected: str, resources: Iterable[Resource] = ()
) -> FileNotFoundError:
    """The error for absent data: what is missing, the expected layout, where to get it."""
    urls = [resource.url for resource in resources]
    where = (
        f" Download {', '.join(urls)} and unpack into data.data_dir, or set data.download=true."
        if urls
        else ""
    )
    return FileNotFoundError(
        f"{task} data not found: missing "
        + ", ".join(str(path) for path in missing)
        + f". Expected {expected}.{where}"
    )
