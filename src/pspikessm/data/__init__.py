"""Data modules: one per task in ``tasks/``, sharing :class:`SequenceDataModule` and the
components at this level (download, archives, cache, collate, splits, vocabulary, ...).

Components here import nothing above ``pspikessm.data``: no model, no CLI. The classes are
imported on first use (PEP 562), so that light tools in this package (the ListOps generator)
start without importing torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Exported name → the module defining it.
_MODULES = {
    "CIFAR10DataModule": "pspikessm.data.tasks.cifar",
    "IMDBDataModule": "pspikessm.data.tasks.imdb",
    "ListOpsDataModule": "pspikessm.data.tasks.listops",
    "MNISTDataModule": "pspikessm.data.tasks.mnist",
    "PathfinderDataModule": "pspikessm.data.tasks.pathfinder",
    "RetrievalDataModule": "pspikessm.data.tasks.retrieval",
    "SequenceDataModule": "pspikessm.data.base",
    "SpeechCommandsDataModule": "pspikessm.data.tasks.speech_commands",
}

__all__ = [
    "CIFAR10DataModule",
    "IMDBDataModule",
    "ListOpsDataModule",
    "MNISTDataModule",
    "PathfinderDataModule",
    "RetrievalDataModule",
    "SequenceDataModule",
    "SpeechCommandsDataModule",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)


def __dir__() -> list[str]:
    return [*globals(), *__all__]


if TYPE_CHECKING:
    from pspikessm.data.base import SequenceDataModule
    from pspikessm.data.tasks.cifar import CIFAR10DataModule
    from pspikessm.data.tasks.imdb import IMDBDataModule
    from pspikessm.data.tasks.listops import ListOpsDataModule
    from pspikessm.data.tasks.mnist import MNISTDataModule
    from pspikessm.data.tasks.pathfinder import PathfinderDataModule
    from pspikessm.data.tasks.retrieval import RetrievalDataModule
    from pspikessm.data.tasks.speech_commands import SpeechCommandsDataModule
