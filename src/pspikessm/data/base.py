"""What every task's data module shares: batch sizes, workers, seeds, padding, the data protocol."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from pspikessm.data.collate import pad_collate
from pspikessm.data.resumable import ResumableDataLoader, ResumableSampler

SPLITS = ("train", "val", "test")


class SequenceDataModule(L.LightningDataModule):
    """Base class of the task data modules.

    The data protocol: the CLI links these attributes into the model, so a data module
    (including a user's own) exposes them once it is constructed:

    - ``num_classes`` (int): number of target classes;
    - ``vocab_size`` (int): token vocabulary size for integer inputs, 0 for real inputs;
    - ``d_input`` (int): channels of real-valued inputs (ignored for tokens);
    - ``dual_input`` (bool): every example is a pair of sequences (two-document tasks).

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
        seed: seed of the train/val split and of the shuffling order (a permutation per
            epoch, a function of (seed, epoch) only: resumed runs see the same order, and W
            processes split the one-process global batches among themselves).
        pin_memory: pin host memory for faster transfers to a GPU.
    """

    num_classes: int = 0
    vocab_size: int = 0
    d_input: int = 1
    dual_input: bool = False
    #: Batches a list of dataset items into ``(inputs, lengths, targets)``.
    collate_fn = staticmethod(pad_collate)

    def __init__(
        self,
        data_dir: str | Path = "data",
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.pin_memory = pin_memory
        self.datasets: dict[str, Dataset] = {}

    def load_split(self, split: str) -> Dataset:
        """The dataset of ``split`` (one of ``train``, ``val``, ``test``); subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_split(split)")

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
                self.datasets[split] = self.load_split(split)

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
            collate_fn=self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
