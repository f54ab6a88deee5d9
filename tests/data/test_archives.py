"""Unpacking archives that are not what was published (issue 31, items 2 and 16): members that
would escape the data folder are refused with or without ``tarfile.data_filter`` (Python
before 3.10.12 and 3.11.4 has none), and a damaged or tampered archive gets the advice to
download it afresh."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from pspikessm.data.archives import UnsafeArchiveMember, extract
from pspikessm.data.download import Resource, fetch


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
    return info


def write_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as handle:
        for info in members:
            data = b"x" if info.isreg() else None
            info.size = len(data) if data else 0
            handle.addfile(info, io.BytesIO(data) if data else None)
    return path


@pytest.fixture(params=["with data_filter", "without data_filter"])
def data_filter(request, monkeypatch) -> str:
    """Run with the tarfile of this Python, and as on a Python without the data filter."""
    if request.param == "without data_filter":
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    return request.param


MALICIOUS = {
    "dotdot": [member("../../escaped.txt")],
    "absolute": [member("{tmp_path}/a/absolute.txt")],
    "symlink out": [member("data/out", tarfile.SYMTYPE, "../../..")],
    "absolute symlink": [member("data/passwd", tarfile.SYMTYPE, "/etc/passwd")],
    "hard link out": [member("data/hard", tarfile.LNKTYPE, "../outside.txt")],
    "through a link": [
        member("data/up", tarfile.SYMTYPE, ".."),  # inside: the folder itself
        member("data/upper", tarfile.SYMTYPE, "up/.."),  # ... but the folder's parent
    ],
    "device": [member("data/null", tarfile.CHRTYPE)],
}


@pytest.mark.parametrize("case", MALICIOUS)
def test_members_escaping_the_folder_are_refused_naming_archive_and_member(
    tmp_path, data_filter, case
):
    members = [copy.copy(info) for info in MALICIOUS[case]]
    for info in members:
        info.name = info.name.format(tmp_path=tmp_path)
    archive = write_tar(tmp_path / "archive.tar", members)
    target = tmp_path / "a" / "b" / "target"
    target.mkdir(parents=True)
    bad = members[-1].name
    with pytest.raises(UnsafeArchiveMember) as refused:
        extract(archive, target)
    message = str(refused.value)
    assert message.startswith(f"{archive}: refused member {bad!r}: ")
    assert f"tampered with. Delete {archive}" in message
    assert list(target.iterdir()) == []  # the staging folder is gone, nothing moved in
    assert sorted(p.name for p in (tmp_path / "a").rglob("*")) == ["b", "target"]


def test_links_inside_the_folder_are_unpacked(tmp_path, data_filter):
    archive = write_tar(
        tmp_path / "archive.tar",
        [
            member("data/file.txt"),
            member("data/alias.txt", tarfile.SYMTYPE, "file.txt"),
            member("data/sub/up", tarfile.SYMTYPE, ".."),
            member("data/copy.txt", tarfile.LNKTYPE, "data/file.txt"),
        ],
    )
    extract(archive, tmp_path)
    assert (tmp_path / "data" / "alias.txt").read_bytes() == b"x"
    assert (tmp_path / "data" / "sub" / "up" / "copy.txt").read_bytes() == b"x"


# --- 16. Damaged or tampered: delete and download afresh ---------------------------------------


def test_a_corrupt_archive_is_refused_as_possibly_tampered(tmp_path):
    files = [member(f"data/file{i}.txt") for i in range(50)]
    whole = write_tar(tmp_path / "whole.tar", files).read_bytes()
    data = bytearray(gzip.compress(whole))
    data[len(data) // 2 : len(data) // 2 + 8] = b"tampered"
    archive = tmp_path / "lra_release.tar.gz"
    archive.write_bytes(bytes(data))
    (tmp_path / "whole.tar").unlink()
    with pytest.raises(OSError, match="may have been tampered with") as refused:
        extract(archive, tmp_path)
    message = str(refused.value)
    assert "it may be truncated" not in message
    assert message.startswith(f"{archive}: ")
    assert f"it may have been tampered with. Delete {archive} and run again" in message


def test_an_archive_with_a_wrong_published_checksum_is_refused_as_possibly_tampered(tmp_path):
    archive = write_tar(tmp_path / "archive.tar", [member("data/file.txt")])
    published = hashlib.md5(b"the published archive").hexdigest()
    resource = Resource(archive.as_uri(), "archive.tar", md5=published)
    target = tmp_path / "target"
    target.mkdir()
    (target / "archive.tar").write_bytes(archive.read_bytes())  # changed after publication
    with pytest.raises(OSError, match="may have been tampered with") as refused:
        fetch([resource], target)
    message = str(refused.value)
    assert message.startswith(f"{target / 'archive.tar'}: md5 checksum ")
    assert f"tampered with. Delete {target / 'archive.tar'} and run again" in message
    assert not (target / "data").exists()
