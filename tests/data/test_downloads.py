"""Downloads (checksums, unpacking, offline errors) and the missing-files errors of each task."""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import replace

import pytest

from helpers.http_server import serve
from pspikessm.data import (
    CIFAR10DataModule,
    IMDBDataModule,
    MNISTDataModule,
    PathfinderDataModule,
    RetrievalDataModule,
    SpeechCommandsDataModule,
)
from pspikessm.data.download import CIFAR10, Resource, fetch


@pytest.fixture
def archive(tmp_path):
    """A local tarball served through a file:// URL, with its MD5."""
    source = tmp_path / "source" / "folder"
    source.mkdir(parents=True)
    (source / "file.txt").write_text("hello")
    path = tmp_path / "archive.tar.gz"
    with tarfile.open(path, "w:gz") as handle:
        handle.add(source, arcname="folder")
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_fetch_downloads_verifies_and_unpacks(tmp_path, archive):
    path, md5 = archive
    target = tmp_path / "target"
    fetch([Resource(path.as_uri(), "archive.tar.gz", md5=md5)], target)
    assert (target / "folder" / "file.txt").read_text() == "hello"


def test_fetch_rejects_a_wrong_checksum(tmp_path, archive):
    path, _ = archive
    with pytest.raises(OSError, match="md5 checksum .* does not match the published 0+"):
        fetch([Resource(path.as_uri(), "archive.tar.gz", md5="0" * 32)], tmp_path / "target")


def test_offline_error_names_url_and_target(tmp_path):
    url = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # nothing listens on the discard port
    with pytest.raises(
        OSError,
        match=r"could not download http://127.0.0.1:9/cifar-10-python.tar.gz to "
        r".*target/cifar-10-python.tar.gz",
    ):
        fetch([replace(CIFAR10, url=url)], tmp_path / "target")
    assert not list((tmp_path / "target").iterdir())  # no partial file left behind


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda d: MNISTDataModule(d, download=False).prepare_data(),
            "train-images-idx3-ubyte.*ossci-datasets",
        ),
        (
            lambda d: CIFAR10DataModule(d, download=False).prepare_data(),
            "data_batch_1.*cifar-10-python.tar.gz",
        ),
        (
            lambda d: IMDBDataModule(d, download=False).vocab_size,
            "aclImdb_v1.tar.gz.*aclImdb_v1.tar.gz",
        ),
        (lambda d: RetrievalDataModule(d).vocab_size, "new_aan_pairs.train.tsv.*lra_release"),
        (
            lambda d: PathfinderDataModule(d).prepare_data(),
            "pathfinder32/curv_contour_length_14.*lra_release",
        ),
        (
            lambda d: SpeechCommandsDataModule(d, download=False).prepare_data(),
            "validation_list.txt.*speech_commands_v0.02.tar.gz",
        ),
    ],
    ids=["mnist", "cifar", "imdb", "aan", "pathfinder", "speech"],
)
def test_missing_files_error_says_what_where_and_how(tmp_path, make, expected):
    with pytest.raises(FileNotFoundError, match=expected) as error:
        make(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_data_module_downloads_when_files_are_absent(tmp_path, monkeypatch):
    """IMDB with ``download=True`` and an empty ``data_dir`` fetches, verifies and reads the
    tarball (served here from a file:// URL)."""
    from helpers.task_files import write_imdb
    from pspikessm.data.download import IMDB

    write_imdb(tmp_path / "mirror", per_class=2, tarball=True)
    tarball = tmp_path / "mirror" / "aclImdb_v1.tar.gz"
    md5 = hashlib.md5(tarball.read_bytes()).hexdigest()
    resource = replace(IMDB, url=tarball.as_uri(), md5=md5)
    monkeypatch.setattr(IMDBDataModule, "resources", (resource,))
    module = IMDBDataModule(tmp_path / "data", min_freq=1, download=True)
    with pytest.raises(FileNotFoundError, match=r"pspikessm prepare.*Training cannot download it"):
        _ = module.vocab_size  # read on every process before prepare_data: never downloads
    assert not (tmp_path / "data" / "aclImdb_v1.tar.gz").exists()
    module.prepare_data()
    assert module.vocab_size > 3
    assert (tmp_path / "data" / "aclImdb_v1.tar.gz").exists()
    module.setup("fit")
    assert len(module.datasets["train"]) == 4


# --- Resumable, verified downloads from a local HTTP server ---------------------------------

PAYLOAD = bytes(range(256)) * 1200  # 300 KB


def payload_resource(served, **checksum) -> Resource:
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    return Resource(
        served.url("payload.bin"), "payload.bin", extract=False, **(checksum or {"md5": md5})
    )


def test_interrupted_download_resumes_with_a_range_request(tmp_path):
    with serve({"payload.bin": PAYLOAD}, cut_responses=1) as served:
        fetch([payload_resource(served)], tmp_path)
    assert (tmp_path / "payload.bin").read_bytes() == PAYLOAD
    half = len(PAYLOAD) // 2
    assert served.requests == [("payload.bin", None), ("payload.bin", f"bytes={half}-")]
    assert not (tmp_path / "payload.bin.part").exists()


def test_partial_file_of_an_earlier_run_is_continued(tmp_path):
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD[:1000])
    with serve({"payload.bin": PAYLOAD}) as served:
        fetch([payload_resource(served, sha256=hashlib.sha256(PAYLOAD).hexdigest())], tmp_path)
    assert served.requests == [("payload.bin", "bytes=1000-")]
    assert (tmp_path / "payload.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize(("kept", "requests"), [(len(PAYLOAD), 1), (len(PAYLOAD) + 5, 2)])
def test_a_part_as_long_as_the_file_is_verified_and_a_longer_one_replaced(tmp_path, kept, requests):
    (tmp_path / "payload.bin.part").write_bytes((PAYLOAD + b"extra")[:kept])
    with serve({"payload.bin": PAYLOAD}) as served:
        fetch([payload_resource(served)], tmp_path)
    assert len(served.requests) == requests  # 416 "nothing after byte N", then from 0
    assert (tmp_path / "payload.bin").read_bytes() == PAYLOAD


def test_server_without_range_support_starts_over(tmp_path):
    (tmp_path / "payload.bin.part").write_bytes(b"stale bytes")
    with serve({"payload.bin": PAYLOAD}, ignore_range=True) as served:
        fetch([payload_resource(served)], tmp_path)
    assert (tmp_path / "payload.bin").read_bytes() == PAYLOAD  # not appended to the stale part


def test_corrupt_download_is_refused_and_deleted(tmp_path):
    with (
        serve({"payload.bin": PAYLOAD}, corrupt=True) as served,
        pytest.raises(OSError, match=r"payload.bin: the download's md5 checksum .* it was deleted"),
    ):
        fetch([payload_resource(served)], tmp_path)
    assert not any(p.name.startswith("payload.bin") for p in tmp_path.iterdir())


def test_download_interrupted_every_time_keeps_the_part_for_the_next_run(tmp_path):
    with (
        serve({"payload.bin": PAYLOAD}, cut_responses=100) as served,
        pytest.raises(OSError, match=r"interrupted 4 times.*payload.bin.part: run again to resume"),
    ):
        fetch([payload_resource(served)], tmp_path)
    assert not (tmp_path / "payload.bin").exists()
    kept = (tmp_path / "payload.bin.part").read_bytes()
    assert 0 < len(kept) < len(PAYLOAD) and PAYLOAD.startswith(kept)


def test_a_file_the_user_placed_with_a_wrong_checksum_is_kept(tmp_path):
    (tmp_path / "payload.bin").write_bytes(b"my own copy")
    with (
        serve({"payload.bin": PAYLOAD}) as served,
        pytest.raises(
            OSError, match=r"payload.bin: md5 checksum .* tampered with. Delete .*payload.bin"
        ),
    ):
        fetch([payload_resource(served)], tmp_path)
    assert served.requests == [] and (tmp_path / "payload.bin").read_bytes() == b"my own copy"


def test_unpacking_that_fails_leaves_no_half_filled_folder(tmp_path, archive):
    path, _ = archive
    truncated = path.read_bytes()[:-40]  # the gzip stream ends early
    md5 = hashlib.md5(truncated).hexdigest()
    with serve({"archive.tar.gz": truncated}) as served:
        resource = Resource(served.url("archive.tar.gz"), "archive.tar.gz", md5=md5)
        with pytest.raises(OSError, match=r"archive.tar.gz: cannot unpack it .* ends early"):
            fetch([resource], tmp_path / "t")
    assert sorted(p.name for p in (tmp_path / "t").iterdir() if not p.name.startswith(".")) == [
        "archive.tar.gz"
    ]
    assert not any(p.name.endswith(".unpacking") for p in (tmp_path / "t").iterdir())
