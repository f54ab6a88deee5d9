"""Unpacking downloaded archives (tar in any compression, or a single gzipped file).

An archive is unpacked into a hidden staging folder beside its target and its top-level
entries are then moved into place, so an interrupted unpacking leaves no half-filled data
folder that a later run would take for the data.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from pspikessm.data.progress import progress

log = logging.getLogger(__name__)


def extract(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target``.

    Raises:
        OSError: ``archive`` is neither a tar nor a gzip file, or an entry it holds already
            exists in ``target`` (nothing is overwritten).
    """
    staging = Path(tempfile.mkdtemp(dir=target, prefix=f".{archive.name}.", suffix=".unpacking"))
    try:
        try:
            if tarfile.is_tarfile(archive):
                _untar(archive, staging)
            elif archive.suffix == ".gz":
                with gzip.open(archive, "rb") as source, (staging / archive.stem).open("wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
            else:
                raise OSError(f"{archive}: not a tar or gzip archive")
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise OSError(
                f"{archive}: cannot unpack it ({error!r}); it may be truncated: delete it and "
                "run again to download it afresh"
            ) from error
        entries = sorted(staging.iterdir())
        if clashes := [target / entry.name for entry in entries if (target / entry.name).exists()]:
            raise OSError(
                f"unpacking {archive} would overwrite {', '.join(map(str, clashes))}; move "
                "them away and run again"
            )
        for entry in entries:
            os.replace(entry, target / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def tar_members(
    archive: Path, description: str
) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """``(archive, member)`` for each member of a tar file (any compression), in one streaming
    pass with a progress display in bytes read; read or extract each member when it comes."""
    with (
        archive.open("rb") as raw,
        progress(description, archive.stat().st_size, "bytes") as advance,
        tarfile.open(fileobj=raw, mode="r|*") as members,
    ):
        position = 0
        for member in members:
            yield members, member
            advance(raw.tell() - position)
            position = raw.tell()


def _untar(archive: Path, folder: Path) -> None:
    for members, member in tar_members(archive, f"Unpacking {archive.name}"):
        # The "data" filter refuses absolute paths and links out of the target folder.
        if hasattr(tarfile, "data_filter"):
            members.extract(member, folder, filter="data")
        else:  # Python < 3.10.12
            members.extract(member, folder)
