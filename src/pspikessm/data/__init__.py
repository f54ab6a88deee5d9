"""Data modules: one per task, sharing :class:`SequenceDataModule`."""

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.cifar import CIFAR10DataModule
from pspikessm.data.listops import ListOpsDataModule
from pspikessm.data.mnist import MNISTDataModule
from pspikessm.data.pathfinder import PathfinderDataModule
from pspikessm.data.retrieval import RetrievalDataModule
from pspikessm.data.speech_commands import SpeechCommandsDataModule
from pspikessm.data.text import IMDBDataModule

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
