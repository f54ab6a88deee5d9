"""Data modules: one per task, sharing :class:`SequenceDataModule`.

The classes are imported on first use (PEP 562), so that light tools in this package (the
ListOps generator) start without importing torch and Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Exported name → the module defining it.
_MODULES = {
    "CIFAR10DataModule": "pspikessm.data.cifar",
    "IMDBDataModule": "pspikessm.data.text",
    "ListOpsDataModule": "pspikessm.data.listops",
    "MNISTDataModule": "pspikessm.data.mnist",
    "PathfinderDataModule": "pspikessm.data.pathfinder",
    "RetrievalDataModule": "pspikessm.data.retrieval",
    "SequenceDataModule": "pspikessm.data.base",
    "SpeechCommandsDataModule": "pspikessm.data.speech_commands",
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
    from pspikessm.data.cifar import CIFAR10DataModule
    from pspikessm.data.listops import ListOpsDataModule
    from pspikessm.data.mnist import MNISTDataModule
    from pspikessm.data.pathfinder import PathfinderDataModule
    from pspikessm.data.retrieval import RetrievalDataModule
    from pspikessm.data.speech_commands import SpeechCommandsDataModule
    from pspikessm.data.text import IMDBDataModule
