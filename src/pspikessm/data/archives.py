"""Unpacking downloaded archives (tar in any compression, or a single gzipped file).

An archive is unpacked into a hidden staging folder beside its target and its top-level
entries are then moved into place, so an interrupted unpacking leaves no half-filled data
folder that a later run would take for the data.

Every member is checked before it is written (:func:`check_member`), on every Python: no
absolute path, no ``..``, no link that points outside the folder, no device file. Where
``tarfile.data_filter`` exists (Python >= 3.10.12, 3.11.4) it is applied as well. Some
archives (the LRA release) have no published checksum, so this check is all that stands
between a tampered download and the files around the data folder.
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


class UnsafeArchiveMember(OSError):
    """An archive member that would be written outside its folder, or is a device file."""


#: The advice for an archive that is not what was published.
REFETCH = (
    "it may have been tampered with. Delete {path} and run again to download it afresh "
    "(or replace it with the published file)"
)


#: What the data filter raises (nothing to catch where it does not exist).
_FILTER_ERROR = getattr(tarfile, "FilterError", ())


def extract(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target``.

    Raises:
        OSError: ``archive`` is neither a tar nor a gzip file, it is damaged (cut short, or
            changed after it was published), or an entry it holds already exists in
            ``target`` (nothing is overwritten).
        UnsafeArchiveMember: a member would be written outside ``target``, or is a device.
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
                raise OSError(
                    f"{archive}: not a tar or gzip archive; " + REFETCH.format(path=archive)
                )
        except _FILTER_ERROR as error:  # the data filter found what check_member missed
            raise _unsafe(archive, error.tarinfo, str(error)) from error
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
            raise OSError(
                f"{archive}: cannot unpack it ({error!r}): {_damage(error)}; "
                + REFETCH.format(path=archive)
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
    pass with a progress display in bytes read; read or extract each member when it comes.

    Raises:
        tarfile.ReadError: a damaged member header (tarfile alone would stop there silently).
    """
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
        # tarfile ends quietly at a damaged header after the first one, leaving members
        # unread: after the end of an archive there is only zero padding.
        while block := members.fileobj.read(1 << 20):
            if block.count(0) != len(block):
                raise tarfile.ReadError("data after the end of the archive: a damaged header")


def _untar(archive: Path, folder: Path) -> None:
    for members, member in tar_members(archive, f"Unpacking {archive.name}"):
        check_member(archive, member, folder)
        if hasattr(tarfile, "data_filter"):
            members.extract(member, folder, filter="data")
        else:  # Python < 3.10.12 or 3.11.4: the checks above are the filter's
            member.mode &= 0o755  # no setuid, setgid, sticky or group/other write bits
            members.extract(member, folder)


def _damage(error: BaseException) -> str:
    """What an unpacking error says about the file: cut short, or not a valid archive."""
    text = str(error).lower()
    ended = isinstance(error, EOFError) or "unexpected end" in text or "truncated" in text
    if ended:
        return (
            "the file ends early (a download cut short, or a file changed after it was published)"
        )
    return "its contents are not a valid archive: the file was changed after it was published"


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def check_member(archive: Path, member: tarfile.TarInfo, folder: Path) -> None:
    """Refuse a ``member`` of ``archive`` that unpacking into ``folder`` would write outside it:
    an absolute path, a ``..`` component, a symbolic or hard link that resolves outside (links
    already unpacked are followed), or a device or FIFO file.

    Raises:
        UnsafeArchiveMember: naming ``archive``, the member and why.
    """
    root = os.path.realpath(folder)
    name = member.name
    if os.path.isabs(name):
        raise _unsafe(archive, member, "an absolute path")
    if ".." in name.split("/"):
        raise _unsafe(archive, member, "a '..' component in its path")
    if member.isdev() or member.isfifo():
        raise _unsafe(archive, member, "a device or FIFO file")
    if not _inside(os.path.realpath(os.path.join(root, name)), root):
        raise _unsafe(archive, member, "a path through a link that leads outside the folder")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            raise _unsafe(archive, member, f"a link to the absolute path {member.linkname!r}")
        base = os.path.dirname(os.path.join(root, name)) if member.issym() else root
        if not _inside(os.path.realpath(os.path.join(base, member.linkname)), root):
            raise _unsafe(archive, member, f"a link to {member.linkname!r}, outside the folder")


def _unsafe(archive: Path, member: tarfile.TarInfo | None, why: str) -> UnsafeArchiveMember:
    name = member.name if member is not None else "?"
    return UnsafeArchiveMember(
        f"{archive}: refused member {name!r}: {why}; unpacking it would write outside the "
        "data folder or create a device. The archive is not what was published: "
        + REFETCH.format(path=archive)
    )
