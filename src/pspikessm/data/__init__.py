"""Data modules: one per task, sharing :class:`SequenceDataModule`."""

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.listops import ListOpsDataModule

__all__ = ["ListOpsDataModule", "SequenceDataModule"]
