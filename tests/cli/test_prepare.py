"""``pspikessm prepare``: every task's data fetched and cached before training, once."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import replace

import pytest

import pspikessm.data.base as base
from helpers.cli_args import TINY_LISTOPS, fast_trainer_args, tiny_model_args
from helpers.http_server import serve
from helpers.task_configs import CONFIGS, TASKS
from helpers.task_files import write_imdb
from pspikessm.cli import cli_main, main
from pspikessm.data import IMDBDataModule
from pspikessm.data.download import IMDB
from pspikessm.data.listops_generator import write_listops

#: config → (writer of its tiny data set, overrides): every task config, ListOps included.
ALL_TASKS = {
    **TASKS,
    "lra/listops.yaml": (lambda d: write_listops(d / "listops-1000", TINY_LISTOPS), []),
    "quickstart.yaml": (lambda d: None, []),  # generates its own data
}


def prepare(args: list[str], capsys) -> str:
    main(["prepare", *args])
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "config",
    [  # A CLI parse per task: the quickstart's in the fast tier, every task in the slow one.
        pytest.param(c, marks=[] if c == "quickstart.yaml" else [pytest.mark.slow])
        for c in sorted(ALL_TASKS)
    ],
)
def test_prepare_every_task_once(tmp_path, capsys, monkeypatch, config):
    write, extra = ALL_TASKS[config]
    data_dir = tmp_path / "data"
    write(data_dir)
    args = [f"--config={CONFIGS / config}", f"--data.init_args.data_dir={data_dir}", *extra]
    first = prepare(args, capsys)
    assert re.search(r"ready in [\d.]+ s", first)
    assert f"data dir   {data_dir.resolve()}" in first
    assert f"cache dir  {(data_dir / '.cache').resolve()}" in first
    keys = re.findall(r"cache      \S+-([0-9a-f]{16})\.pt \([\d.]+ MB\), key ([0-9a-f]{16})", first)
    assert keys and all(a == b for a, b in keys)
    sizes = re.search(r"splits     train (\d+), val (\d+), test (\d+)", first)
    assert sizes and all(int(n) > 0 for n in sizes.groups())
    # The second run finds everything in place: nothing is built again.
    caches = sorted((data_dir / ".cache").iterdir())
    monkeypatch.setattr(base, "write_cache", lambda *a: pytest.fail("built again"))
    second = prepare(args, capsys)
    assert second.splitlines()[1:] == first.splitlines()[1:]
    assert sorted((data_dir / ".cache").iterdir()) == caches


def test_fit_after_prepare_does_not_touch_the_network(tmp_path, capsys, monkeypatch):
    """IMDB's vocabulary comes from the data: prepare downloads it (one request, counted by
    the local server), then fit reads the cache and asks the server nothing."""
    write_imdb(tmp_path / "mirror", per_class=3, tarball=True)
    tarball = (tmp_path / "mirror" / "aclImdb_v1.tar.gz").read_bytes()
    data_dir = tmp_path / "data"
    options = [
        f"--config={CONFIGS / 'lra/text.yaml'}",
        f"--data.init_args.data_dir={data_dir}",
        "--data.init_args.min_freq=1",
        "--data.init_args.download=true",
        "--data.init_args.num_workers=0",
    ]
    with serve({"aclImdb_v1.tar.gz": tarball}) as served:
        url, md5 = served.url("aclImdb_v1.tar.gz"), hashlib.md5(tarball).hexdigest()
        monkeypatch.setattr(IMDBDataModule, "resources", (replace(IMDB, url=url, md5=md5),))
        output = prepare(options, capsys)
        assert "splits     train 6, val 6, test 6" in output
        assert len(served.requests) == 1
        fit = cli_main(
            [
                "fit", *options, "--data.init_args.batch_size=4", "--trainer.fast_dev_run=1",
                *tiny_model_args(d_model=8, d_state=4), *fast_trainer_args(tmp_path),
            ]
        )  # fmt: skip
        assert fit.trainer.state.finished
        assert len(served.requests) == 1


def test_prepare_ignores_the_model_and_trainer_sections(listops_dir, capsys, recwarn):
    """A full run's options work as they are; on this CPU-only machine a trainer built from
    the GPU preset would fail, so nothing builds one; nothing is said about a training run."""
    seed_messages: list[logging.LogRecord] = []
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    handler = logging.Handler()
    handler.emit = seed_messages.append  # type: ignore[method-assign]
    seed_log.addHandler(handler)
    output = prepare(
        [
            f"--config={CONFIGS / 'lra/listops.yaml'}",
            f"--config={CONFIGS / 'trainer/multinode.yaml'}",
            "--trainer.devices=8",
            "--model.backbone.init_args.d_model=512",
            f"--data.init_args.data_dir={listops_dir}",
            "--data.init_args.download=false",  # the LRA tasks take `download`
        ],
        capsys,
    )
    assert "splits     train 96, val 32, test 32" in output
    seed_log.removeHandler(handler)
    assert not seed_messages  # "Seed set to 0"
    assert not [w for w in recwarn if "LightningCLI's args" in str(w.message)]


@pytest.mark.parametrize(
    ("split", "content", "message"),
    [
        ("train", "", "basic_train.tsv: no ListOps rows"),
        ("val", "Source\tTarget\n", "basic_val.tsv: no ListOps rows"),
        ("train", "Source\tTarget\n( [MAX 1 \xff ] )\t1\n", "basic_train.tsv:2: not UTF-8 text"),
    ],
)
def test_bad_file_exits_1_naming_it(listops_dir, capsys, split, content, message):
    (listops_dir / "listops-1000" / f"basic_{split}.tsv").write_bytes(content.encode("latin-1"))
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "prepare",
                f"--config={CONFIGS / 'lra/listops.yaml'}",
                f"--data.data_dir={listops_dir}",
            ]
        )
    assert exit_.value.code == 1
    assert message in capsys.readouterr().err


def test_missing_data_exits_1_with_what_where_and_how(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(
            ["prepare", f"--config={CONFIGS / 'lra/retrieval.yaml'}", f"--data.data_dir={tmp_path}"]
        )
    error = capsys.readouterr().err
    assert exit_.value.code == 1
    assert "new_aan_pairs.train.tsv" in error and "lra_release.gz" in error
    assert "data.download=true" in error


def test_a_truncated_cache_is_rebuilt_naming_it(listops_dir, capsys, caplog):
    options = [f"--config={CONFIGS / 'lra/listops.yaml'}", f"--data.data_dir={listops_dir}"]
    prepare(options, capsys)
    (cache,) = (listops_dir / ".cache").glob("listops-all-*.pt")
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    with caplog.at_level(logging.WARNING):
        output = prepare(options, capsys)
    assert "splits     train 96, val 32, test 32" in output
    assert f"{cache}: the preprocessed-data cache cannot be read" in caplog.text
    assert "Rebuilding it now" in caplog.text
