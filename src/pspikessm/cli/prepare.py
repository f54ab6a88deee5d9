"""``pspikessm prepare``: download and preprocess a task's data before training starts.

Examples::

    pspikessm prepare --config configs/lra/text.yaml
    pspikessm prepare --config configs/lra/listops.yaml --data.init_args.download=true
    PSPIKESSM_CACHE_DIR=/scratch/cache pspikessm prepare --config configs/lra/pathx.yaml

It takes the config files and ``--data`` options that ``fit`` takes (the model and trainer
sections are checked and otherwise ignored: no model, no trainer, no GPU) and runs the data
module's ``prepare_data``: download where allowed, then build every cache file training
will read. It prints where the data and the cache are, their sizes, the split sizes and the
cache key. A second run finds everything in place and returns at once. On a cluster, run it
on a login node (which has internet) before submitting the training job.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jsonargparse import ArgumentParser, Namespace
from lightning.pytorch import LightningDataModule

from pspikessm.cli.train import PSpikeSSMCLI, cli_main, reading_configuration
from pspikessm.data.base import SPLITS, SequenceDataModule
from pspikessm.data.errors import DataNotFound


def build_data_module(argv: list[str]) -> LightningDataModule:
    """The data module that the training CLI would build from ``argv``.

    The whole configuration is parsed as ``fit`` parses it, so the same files and options
    are accepted and checked; only the data module is instantiated.
    """

    class PrepareCLI(PSpikeSSMCLI):
        def instantiate_classes(self) -> None:
            parser = ArgumentParser()
            parser.add_subclass_arguments(LightningDataModule, "data", fail_untyped=False)
            instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
            with reading_configuration():
                self.datamodule = instantiate(Namespace(data=self.config.data)).data

    with _quiet():
        cli = cli_main(
            argv,
            run=False,
            cli_class=PrepareCLI,
            save_config_callback=None,
            parser_kwargs={"prog": "pspikessm prepare", "description": __doc__.split("\n")[0]},
        )
    return cli.datamodule


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence what building the CLI says about a training run that prepare does not start:
    the seed it sets and its warning about ``args`` given beside ``sys.argv``."""
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    level = seed_log.level
    seed_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            yield
    finally:
        seed_log.setLevel(level)


def tree_size(paths: list[Path]) -> int:
    """Bytes in ``paths``, folders walked."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        elif path.exists():
            total += path.stat().st_size
    return total


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def split_sizes(data: SequenceDataModule) -> str:
    """``train 96000, val 2000, test 2000`` (``absent`` for a split without data)."""
    sizes = []
    for split in SPLITS:
        try:
            sizes.append(f"{split} {len(data.load_split(split))}")  # type: ignore[arg-type]
        except DataNotFound:
            sizes.append(f"{split} absent")
    return ", ".join(sizes)


def prepare(data: LightningDataModule) -> list[str]:
    """Run ``data.prepare_data()``; the lines of the summary."""
    start = time.perf_counter()
    data.prepare_data()
    name = type(data).__name__
    if not isinstance(data, SequenceDataModule):
        return [f"{name}: ran prepare_data() ({time.perf_counter() - start:.1f} s)"]
    sources = data.sources()
    lines = [
        f"data dir   {data.data_dir.resolve()} ({len(sources)} source files or folders, "
        f"{megabytes(tree_size(sources))})",
        f"cache dir  {data.cache_dir.resolve()}",
    ]
    for part in data.cache_parts if data.caches() else ():
        path = data.cache_path(part)
        lines.append(
            f"cache      {path.name} ({megabytes(path.stat().st_size)}), key {data.cache_key(part)}"
        )
    lines.append(f"splits     {split_sizes(data)}")
    return [f"{name}: ready in {time.perf_counter() - start:.1f} s", *lines]


def main(argv: list[str]) -> None:
    """``pspikessm prepare [--config FILE ...] [--data.init_args.NAME VALUE ...]``."""
    data = build_data_module(argv)
    try:
        lines = prepare(data)
    except (OSError, ValueError) as error:  # data errors name the file: no traceback
        print(f"pspikessm prepare: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    print("\n".join(lines))
