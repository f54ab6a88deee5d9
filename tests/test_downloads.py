"""Downloads (checksums, unpacking, offline errors) and the missing-files errors of each task."""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import replace

import pytest

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
    import pspikessm.data.text as text
    from task_files import write_imdb

    write_imdb(tmp_path / "mirror", per_class=2, tarball=True)
    tarball = tmp_path / "mirror" / "aclImdb_v1.tar.gz"
    md5 = hashlib.md5(tarball.read_bytes()).hexdigest()
    monkeypatch.setattr(text, "IMDB", replace(text.IMDB, url=tarball.as_uri(), md5=md5))
    module = IMDBDataModule(tmp_path / "data", min_freq=1, download=True)
    assert module.vocab_size > 3
    assert (tmp_path / "data" / "aclImdb_v1.tar.gz").exists()
    module.setup("fit")
    assert len(module.datasets["train"]) == 4
