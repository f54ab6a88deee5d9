"""Fetching public data sets: resumable download, published checksum, unpacking.

A data module fetches in ``prepare_data`` only (rank 0 of each node; see
:meth:`pspikessm.data.base.SequenceDataModule.prepare_data`). A download goes to
``<file>.part``; an interrupted one is continued with an HTTP range request (where the server
supports it), and the file takes its final name only once its size and published checksum
are verified. A corrupt download is deleted, never taken for data.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pspikessm.data.archives import REFETCH, extract
from pspikessm.data.progress import progress

log = logging.getLogger(__name__)

#: Seconds without data before a connection counts as interrupted (and is resumed).
TIMEOUT = 60
#: Connections per download: the first, then resumptions after interruptions.
ATTEMPTS = 4


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


def checksum_mismatch(path: Path, resource: Resource) -> str | None:
    """What is wrong with ``path``'s checksum, or None if it matches (or none is published)."""
    for algorithm, expected in (("md5", resource.md5), ("sha256", resource.sha256)):
        if expected is not None and (actual := file_digest(path, algorithm)) != expected:
            return f"{algorithm} checksum {actual} does not match the published {expected}"
    return None


def partial_path(path: Path) -> Path:
    """Where the download of ``path`` accumulates until it is verified."""
    return path.with_name(path.name + ".part")


def download(resource: Resource, path: Path) -> None:
    """Download ``resource`` to ``path``, resuming ``path.part`` if an earlier run left one.

    Raises:
        OSError: offline or refused (naming the URL and ``path``), interrupted more than
            ``ATTEMPTS`` times (the partial file is kept for the next run), or a checksum
            mismatch (the download is deleted).
    """
    part = partial_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info(f"Downloading {resource.url} to {path}")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _transfer(resource.url, part)
            break
        except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
            done = part.stat().st_size if part.exists() else 0
            if attempt == ATTEMPTS:
                raise OSError(
                    f"the download of {resource.url} was interrupted {ATTEMPTS} times ({error!r}); "
                    f"{done} bytes are kept in {part}: run again to resume"
                ) from error
            log.info(f"Download interrupted after {done} bytes ({error!r}); resuming")
    if problem := checksum_mismatch(part, resource):
        part.unlink()
        raise OSError(
            f"{resource.url}: the download's {problem}; it was deleted, run again to download "
            "it afresh (if it fails again, the server's copy differs from the published one: it "
            "may have been tampered with)"
        )
    os.replace(part, path)


def _transfer(url: str, part: Path) -> None:
    """One connection: append to ``part`` from where it ends (HTTP Range), or start over."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing after offset: complete, or not this file
            if error.headers.get("Content-Range", "") == f"bytes */{offset}":
                return
            part.unlink()
            raise http.client.HTTPException(f"{part} does not match {url}; starting over") from None
        raise _unreachable(url, part, error) from error
    except (urllib.error.URLError, OSError) as error:
        raise _unreachable(url, part, error) from error
    with response:
        if offset and not _continues_at(response, offset):
            offset = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with (
            part.open("ab" if offset else "wb") as out,
            progress(f"Downloading {part.name[: -len('.part')]}", total, "bytes") as advance,
        ):
            advance(offset)
            while block := response.read(1 << 20):
                out.write(block)
                advance(len(block))
    if total is not None and part.stat().st_size != total:
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def _continues_at(response: http.client.HTTPResponse, offset: int) -> bool:
    """Whether ``response`` is the part of the file that starts at byte ``offset``."""
    content_range = response.headers.get("Content-Range", "")
    return response.status == 206 and content_range.startswith(f"bytes {offset}-")


def _unreachable(url: str, part: Path, error: Exception) -> OSError:
    path = part.with_name(part.name[: -len(".part")])
    return OSError(
        f"could not download {url} to {path} ({error}). Without internet, download it "
        f"elsewhere and place it at {path} (or unpack it into {path.parent})."
    )


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (a ``.pspikessm.lock`` file in it) while fetching,
    so that jobs started together (an array job, several nodes) download once, in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with (folder / ".pspikessm.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as error:  # a file system without locks
            log.info(f"Cannot lock {folder} ({error}); fetching without a lock")
        yield


def fetch(resources: Iterable[Resource], target: Path) -> None:
    """Download (unless present), verify and unpack each resource into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for resource in resources:
        path = target / resource.filename
        if not path.exists():
            download(resource, path)
        elif problem := checksum_mismatch(path, resource):  # a file the user put there
            raise OSError(
                f"{path}: {problem} of {resource.url}: it is not the published file; "
                + REFETCH.format(path=path)
            )
        if resource.extract:
            extract(path, target)
