"""What every task's data module shares: finding, fetching and caching its data, batch
sizes, workers, seeds, padding, and the data protocol."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from pspikessm.data.cache import (
    UnreadableCache,
    cache_key,
    load_cache,
    resolve_cache_dir,
    write_cache,
)
from pspikessm.data.collate import pad_collate
from pspikessm.data.download import Resource, fetch, folder_lock
from pspikessm.data.errors import DataNotFound, require_at_least, require_folder
from pspikessm.data.resumable import ResumableDataLoader, ResumableSampler

SPLITS = ("train", "val", "test")

log = logging.getLogger(__name__)


class SequenceDataModule(L.LightningDataModule):
    """Base class of the task data modules.

    The data protocol: the CLI links these attributes into the model, so a data module
    (including a user's own) exposes them once it is constructed:

    - ``num_classes`` (int): number of target classes;
    - ``vocab_size`` (int): token vocabulary size for integer inputs, 0 for real inputs;
    - ``d_input`` (int): channels of real-valued inputs (ignored for tokens);
    - ``dual_input`` (bool): every example is a pair of sequences (two-document tasks).

    The skeleton; a task implements the steps it needs (``load_split`` always):

    1. :meth:`sources`: the files under ``data_dir`` that the preprocessing reads, or a
       :class:`~pspikessm.data.errors.DataNotFound` naming what is missing.
    2. :meth:`prepare_data` (rank 0 of each node, and ``pspikessm prepare``): if the data is
       absent and ``download`` is on, fetch the task's ``resources`` (the only place anything
       is downloaded); then build each cache file that is not on disk (or cannot be read).
    3. :meth:`build`: read the sources and preprocess, returning tensors. The result is
       cached in ``cache_dir`` under ``<cache_name>-<part>-<key>.pt``, the key a hash of
       :meth:`settings` and the sources' sizes and times, and read back memory-mapped once per
       process by :meth:`preprocessed`.
    4. :meth:`load_split`: the dataset of a split, from :meth:`preprocessed`.

    Batches are ``(inputs, lengths, targets)``: inputs (B, L) int64 tokens or (B, L, C)
    floats, padded to the longest sequence of the batch; lengths (B,); targets (B,). Pair
    tasks (``dual_input``) give inputs (B, 2, L) and lengths (B, 2) (see ``collate_fn``).

    Args:
        data_dir: folder holding the task's files.
        batch_size: global batch size: with W processes (``devices * num_nodes``) each
            loads ``batch_size / W`` examples per step, so the optimisation does not depend on
            W; a size W does not divide is an error at setup.
        eval_batch_size: global batch size for validation and test (default: batch_size).
        num_workers: DataLoader worker processes per training process.
        seed: seed of the held-out splits and of the shuffling order (a permutation per
            epoch, a function of (seed, epoch) only: resumed runs see the same order, and W
            processes split the one-process global batches among themselves).
        pin_memory: pin host memory for faster transfers to a GPU.
        drop_last: leave out the last training batch of an epoch when it is smaller than
            ``batch_size`` (the authors' loaders do; the task configs set it). Validation and
            test always use every example.
        download: fetch the task's public files (``resources``) when they are absent
            (ignored by a task that has none).
        cache_dir: folder of the preprocessed-data cache; default ``$PSPIKESSM_CACHE_DIR``
            if set, else ``data_dir/.cache``.
        length_buckets: pad each batch up to the smallest of these lengths that holds it
            (:func:`~pspikessm.data.collate.bucket_length`), for a compiled model's static
            shapes; None: to the batch's longest sequence.
    """

    num_classes: int = 0
    vocab_size: int = 0
    d_input: int = 1
    dual_input: bool = False
    #: Batches a list of dataset items into ``(inputs, lengths, targets)``.
    collate_fn = staticmethod(pad_collate)
    #: Public files that ``prepare_data`` fetches into :meth:`download_dir`.
    resources: tuple[Resource, ...] = ()
    #: Separately cached parts of the preprocessed data (a split then loads only its own).
    cache_parts: tuple[str, ...] = ("all",)
    #: Prefix of the cache files; raise ``cache_version`` when :meth:`build` changes.
    cache_name: str = "data"
    cache_version: int = 1

    def __init__(
        self,
        data_dir: str | Path = "data",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool = False,
        drop_last: bool = False,
        download: bool = False,
        cache_dir: str | Path | None = None,
        length_buckets: list[int] | None = None,
    ) -> None:
        super().__init__()
        # Every task's __init__ arguments (collected up the subclass chain; under the CLI its
        # `data:` config): logged beside the model's in TensorBoard's HPARAMS tab.
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        require_folder("data_dir", self.data_dir)
        require_at_least("batch_size", batch_size)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.download = download
        self.cache_dir = resolve_cache_dir(self.data_dir, cache_dir)
        self.length_buckets = sorted(length_buckets) if length_buckets else None
        self.datasets: dict[str, Dataset] = {}
        self._preprocessed: dict[str, dict[str, Any]] = {}

    # --- The steps a task implements ---------------------------------------------------

    def sources(self) -> list[Path]:
        """The files (or folders) :meth:`build` reads; raises ``DataNotFound`` if absent."""
        return []

    def settings(self) -> dict[str, Any]:
        """The settings :meth:`build` depends on (they key the cache)."""
        return {}

    def build(self, part: str) -> dict[str, Any]:
        """The preprocessed ``part`` (one of ``cache_parts``): tensors read from the sources."""
        raise NotImplementedError(f"{type(self).__name__} caches nothing: it has no build()")

    def load_split(self, split: str) -> Dataset:
        """The dataset of ``split`` (one of ``train``, ``val``, ``test``); subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_split(split)")

    def download_dir(self) -> Path:
        """Where ``resources`` are downloaded and unpacked."""
        return self.data_dir

    def can_acquire(self) -> bool:
        """Whether :meth:`acquire` may run when the data is absent."""
        return self.download and bool(self.resources)

    def regenerates(self) -> bool:
        """Whether :meth:`acquire` writes the data itself (a generated set): a partial set, left
        by an interrupted generation, is then written again instead of being an error."""
        return False

    def acquire(self) -> None:
        """Get the absent data (rank 0 only, from ``prepare_data``): download the resources."""
        fetch(self.resources, self.download_dir())

    # --- The skeleton --------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Fetch the data if it is absent and allowed, then build every missing cache file."""
        if self._to_acquire():
            with folder_lock(self.download_dir()):
                if self._to_acquire():  # a job holding the lock before may have fetched it
                    self.acquire()
        if self.caches():
            for part in self.cache_parts:
                self._cached(part)  # built if absent, rebuilt if unreadable

    def _to_acquire(self) -> bool:
        try:
            self.sources()
        except DataNotFound as absent:
            if not self.can_acquire() or (absent.partial and not self.regenerates()):
                raise
            return True
        return False

    def caches(self) -> bool:
        """Whether this task caches a preprocessing (it implements :meth:`build`)."""
        return type(self).build is not SequenceDataModule.build

    def cache_key(self, part: str) -> str:
        """The key of ``part``'s cache: a hash of the settings and the sources' sizes and times."""
        settings = {"task": self.cache_name, "v": self.cache_version, "part": part}
        return cache_key({**settings, **self.settings()}, self.sources())

    def cache_path(self, part: str) -> Path:
        """The cache file of ``part`` for the current settings and sources."""
        return self.cache_dir / f"{self.cache_name}-{part}-{self.cache_key(part)}.pt"

    def preprocessed(self, part: str = "all") -> dict[str, Any]:
        """The cached ``part``, built here if ``prepare_data`` has not (loaded once)."""
        if part not in self._preprocessed:
            self._preprocessed[part] = self._cached(part)
        return self._preprocessed[part]

    def _cached(self, part: str) -> dict[str, Any]:
        """``part`` from its cache file (memory-mapped), built first when there is none.

        A cache file that cannot be read (truncated) is built again, with a warning naming it:
        every run would otherwise fail on it until someone deleted it.
        """
        path = self.cache_path(part)
        if path.exists():
            try:
                return load_cache(path)
            except UnreadableCache as error:
                log.warning("%s. Rebuilding it now.", error)
        write_cache(path, self.build(part))
        return load_cache(path)

    # --- Splits and loaders --------------------------------------------------------------

    @property
    def world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    @property
    def rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def per_process(self, global_batch_size: int) -> int:
        """The batch size of one process; the global size must divide evenly."""
        if global_batch_size % self.world_size:
            raise ValueError(
                f"data.batch_size={global_batch_size} is the global batch size and must be "
                f"divisible by the number of processes ({self.world_size})"
            )
        return global_batch_size // self.world_size

    def setup(self, stage: str | None = None) -> None:
        needed = {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: SPLITS,
        }[stage]
        self.per_process(self.batch_size)  # fail here, before any process starts to train
        self.per_process(self.eval_batch_size)
        for split in needed:
            if split not in self.datasets:
                dataset = self.load_split(split)
                if len(dataset) == 0:  # type: ignore[arg-type]
                    raise ValueError(
                        f"{type(self).__name__}: the {split} split read from {self.data_dir} "
                        "holds no example (an empty file, or a held-out fraction too small "
                        "for the data?)"
                    )
                self.datasets[split] = dataset

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        # Our own DistributedSampler (also for one process): Lightning calls set_epoch on it,
        # so the order is a function of (seed, epoch), and it leaves it in place under DDP.
        # Evaluation sets whose size W does not divide get padded by repeating examples.
        # Resumable: a run resumed mid-epoch continues that epoch's order (data/resumable.py).
        sampler = ResumableSampler(
            self.datasets[split],
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=shuffle,
            seed=self.seed,
        )
        # A generator of its own keeps DataLoader's worker seeding off torch's global
        # generator, which carries the spike stream.
        generator = torch.Generator().manual_seed(self.seed + self.rank)
        return ResumableDataLoader(
            self.datasets[split],
            batch_size=self.per_process(batch_size),
            sampler=sampler,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            collate_fn=self.collate_fn
            if self.length_buckets is None
            else functools.partial(self.collate_fn, length_buckets=self.length_buckets),
            drop_last=self.drop_last and split == "train",
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    #: The split ``predict`` reads (``pspikessm predict`` says so and names it in its file).
    predict_split = "test"

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
