"""Shared fixtures: tiny generated ListOps sets and CLI helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pspikessm.data.listops_generator import ListOpsGeneratorConfig, write_listops

# One thread: the test models are tiny, and two OpenMP threads on a busy 2-core machine wait
# on each other (a step up to 10x slower than with one thread).
torch.set_num_threads(1)

TINY_LISTOPS = ListOpsGeneratorConfig(
    num_train=96, num_val=32, num_test=32, min_length=3, max_length=40, max_depth=3, max_args=4
)


@pytest.fixture
def listops_dir(tmp_path: Path) -> Path:
    """A tiny generated ListOps set in the LRA layout (``listops-1000/basic_*.tsv``)."""
    root = tmp_path / "lra_release"
    write_listops(root / "listops-1000", TINY_LISTOPS)
    return root


def tiny_model_args(d_model: int = 16, d_state: int = 8, n_layers: int = 1) -> list[str]:
    """Command-line overrides that shrink any config's P-SpikeSSM backbone."""
    return [
        f"--model.backbone.init_args.d_model={d_model}",
        f"--model.backbone.init_args.block.d_state={d_state}",
        f"--model.backbone.init_args.n_layers={n_layers}",
    ]


def fast_trainer_args(tmp_path: Path) -> list[str]:
    """Overrides that keep a CLI run small, quiet and inside ``tmp_path``."""
    return [
        f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.enable_model_summary=false",
    ]
