"""The training loader's place in the epoch survives a checkpoint; workers ignore preemption."""

from __future__ import annotations

import signal

import pytest
import torch
from torch.utils.data import Dataset

from pspikessm.data.resumable import ResumableDataLoader, ResumableSampler


class Numbers(Dataset):
    def __len__(self) -> int:
        return 20

    def __getitem__(self, index: int) -> int:
        return index


def loader(num_workers: int = 0, batch_size: int = 4, replicas: int = 1) -> ResumableDataLoader:
    sampler = ResumableSampler(Numbers(), num_replicas=replicas, rank=0, shuffle=True, seed=3)
    return ResumableDataLoader(
        Numbers(), batch_size=batch_size, sampler=sampler, num_workers=num_workers
    )


def epoch(data: ResumableDataLoader, number: int) -> list[int]:
    data.sampler.set_epoch(number)
    return torch.cat(list(data)).tolist()


def test_a_resumed_loader_continues_the_epoch_where_the_state_was_taken():
    whole = epoch(loader(), 1)
    first = loader()
    first.sampler.set_epoch(1)
    batches = iter(first)
    seen = [next(batches) for _ in range(2)]
    state = first.state_dict()
    assert state == {"epoch": 1, "batches_done": 2, "batch_size": 4}

    resumed = loader()
    resumed.load_state_dict(state)
    rest = epoch(resumed, 1)  # Lightning sets the epoch after iter(), before the first batch
    assert torch.cat(seen).tolist() + rest == whole
    assert resumed.state_dict() == {"epoch": 2, "batches_done": 0, "batch_size": 4}  # complete
    assert epoch(resumed, 2) == epoch(loader(), 2)  # and the next one is whole again


def test_the_position_applies_to_its_own_epoch_only():
    resumed = loader()
    resumed.load_state_dict({"epoch": 1, "batches_done": 3})
    assert epoch(resumed, 2) == epoch(loader(), 2)  # e.g. the saved epoch had ended


def test_another_batch_size_part_way_into_an_epoch_is_refused_naming_both():
    first = loader()
    first.sampler.set_epoch(1)
    batches = iter(first)
    next(batches), next(batches)
    state = first.state_dict()  # 2 batches of 4 examples trained
    with pytest.raises(ValueError, match=r"after 2 batches of data\.batch_size=4; this run has "
                       r"data\.batch_size=8\..*--data\.init_args\.batch_size 4"):  # fmt: skip
        loader(batch_size=8).load_state_dict(state)
    # The same global batch over 2 processes (4 = 2 x 2) is the same place: accepted.
    loader(batch_size=2, replicas=2).load_state_dict(state)


def test_a_new_batch_size_starts_at_an_epoch_boundary():
    first = loader()
    first.sampler.set_epoch(1)
    list(first)  # the whole epoch
    resumed = loader(batch_size=8)
    resumed.load_state_dict(first.state_dict())  # {"epoch": 2, "batches_done": 0, ...}
    assert epoch(resumed, 2) == epoch(loader(batch_size=8), 2)
    # A checkpoint from before the batch size was saved resumes as it did.
    loader(batch_size=8).load_state_dict({"epoch": 1, "batches_done": 2})


def test_the_epoch_set_after_iter_decides_the_order_with_workers():
    data = loader(num_workers=1)
    batches = iter(data)  # Lightning's order on resume: iter(), set_epoch(), next()
    data.sampler.set_epoch(5)
    assert torch.cat(list(batches)).tolist() == epoch(loader(), 5)


class SignalMask(Dataset):
    """Each item: whether SIGUSR1 is blocked (and SIGTERM is not) where it is loaded."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> bool:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        return signal.SIGUSR1 in blocked and signal.SIGTERM not in blocked


def test_workers_leave_the_preemption_warning_to_the_main_process():
    sampler = ResumableSampler(SignalMask(), num_replicas=1, rank=0, shuffle=False)
    data = ResumableDataLoader(SignalMask(), batch_size=2, sampler=sampler, num_workers=1)
    assert next(iter(data)).tolist() == [True, True]
    # ... while the main process still receives it; the DataLoader can stop workers (SIGTERM).
    assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
