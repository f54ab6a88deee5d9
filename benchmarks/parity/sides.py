"""What ``parity.py`` and ``parity_diagnostics.py`` share: the data, both models, one training loop.

Data: a generated ListOps set (LRA grammar, lengths 20-200, depth up to 6) in the LRA layout,
tokenised by this project's ``ListOpsDataModule``; the authors' side gets the same sequences
in the authors' token ids (their vocabulary order, see :func:`authors_vocabulary`). Batches:
32 training examples drawn by a generator seeded with the run's seed (an epoch is a random
permutation, the last incomplete batch dropped, as their loader does), padded with ``<pad>``
to the batch's longest sequence (both pipelines do that).

Models: the authors' from their checkout (:mod:`authors_model`), this project's from its YAML
config through the CLI (``cli_main(..., run=False)``), so the harness follows the config, not
the code. Both train in the same plain loop: forward, cross-entropy, backward, AdamW step,
scheduler step (what both Lightning loops do with a per-step schedule and no clipping).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.authors import SPECIALS, authors_optimizer, authors_vocabulary, build_authors_model
from benchmarks.harness import ROOT
from pspikessm.cli import cli_main
from pspikessm.data.collate import pad_collate
from pspikessm.data.listops_generator import ListOpsGeneratorConfig, write_listops
from pspikessm.data.tasks.listops import ListOpsDataModule

OURS_CONFIG = "configs/lra/listops.yaml"
GENERATED = ListOpsGeneratorConfig(
    num_train=32000, num_val=2000, num_test=2000, min_length=20, max_length=200, max_depth=6
)


@dataclasses.dataclass
class Schedule:
    """The short schedule both sides train with (AdamW; SSM rates come from each model)."""

    steps: int = 1000
    warmup: int = 100
    lr: float = 8e-4
    weight_decay: float = 0.01
    batch: int = 32


class ParityData:
    """The generated ListOps set, in this project's ids and in the authors' ids."""

    def __init__(self, data_dir: Path) -> None:
        if not all((data_dir / f"basic_{s}.tsv").exists() for s in ("train", "val", "test")):
            write_listops(data_dir, GENERATED)
        module = ListOpsDataModule(data_dir=data_dir, max_length=2048)
        self.train, self.val = module.load_split("train"), module.load_split("val")
        self.tokens = module.vocabulary.tokens  # this project's id → token
        counts = torch.bincount(self.train.values.long(), minlength=len(self.tokens))
        theirs = authors_vocabulary(
            {t: int(c) for t, c in zip(self.tokens, counts, strict=True) if c > 0}
        )
        self.authors_tokens = theirs
        self.to_authors = torch.tensor([theirs.index(t) for t in self.tokens])  # (V)

    def checks(self) -> dict[str, object]:
        """How the two token pipelines compare (the authors': src/dataloaders/lra.py)."""
        return {
            "data_vocab_size_ours": len(self.tokens),
            "data_vocab_size_authors": len(self.authors_tokens),
            "data_same_token_ids": self.tokens == self.authors_tokens,
            "data_specials_same_ids": all(
                self.tokens.index(s) == self.authors_tokens.index(s) for s in SPECIALS
            ),
            "data_pad_id": self.tokens.index("<pad>"),
            "data_eos_last_in_every_sequence": bool(
                (self.train.values[self.train.offsets[1:] - 1] == self.tokens.index("<eos>")).all()
            ),
            "data_longest_sequence": int(self.train.lengths().max()),
            "data_majority_class_val_acc": float(
                torch.bincount(self.val.targets).max() / len(self.val)
            ),
        }

    def plan(self, seed: int, steps: int, batch: int) -> list[torch.Tensor]:
        """Example indices of every step: seeded permutations, incomplete batches dropped."""
        generator = torch.Generator().manual_seed(seed)
        per_epoch = len(self.train) // batch
        order: list[torch.Tensor] = []
        while len(order) < steps:
            order += list(torch.randperm(len(self.train), generator=generator).split(batch))[
                :per_epoch
            ]
        return order[:steps]

    @staticmethod
    def collate(dataset, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inputs (B, L_max) int64, lengths (B,), targets (B,)), this project's ids."""
        return pad_collate([dataset[int(i)] for i in indices])


@dataclasses.dataclass
class Side:
    """One model under training: its forward in this project's ids, parameters, optimiser."""

    name: str
    model: nn.Module
    forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (tokens, lengths) → logits
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device = torch.device("cpu")
    extra: dict = dataclasses.field(default_factory=dict)

    def batch(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """``batch`` on this side's device."""
        return tuple(t.to(self.device) for t in batch)


def authors_side(
    data: ParityData,
    authors,
    seed: int,
    schedule: Schedule,
    backbone: dict | None = None,
    grouping: dict | None = None,
    retag: Callable[[nn.Module], None] | None = None,
    device: str = "cpu",
    **layer,
) -> Side:
    """The authors' model and optimiser, seeded with ``seed``; ``layer`` and ``backbone``
    override their settings (:func:`authors_model.build_authors_model`), ``grouping`` the
    options of their optimiser hooks, ``retag`` changes ``_optim`` tags before the groups."""
    torch.manual_seed(seed)
    model = build_authors_model(authors, len(data.authors_tokens), backbone, **layer)
    model.to(device)
    if retag is not None:
        retag(model)
    optimizer, scheduler = authors_optimizer(
        authors,
        model,
        schedule.lr,
        schedule.weight_decay,
        schedule.warmup,
        schedule.steps,
        grouping,
    )
    to_authors = data.to_authors.to(device)

    def forward(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return model(to_authors[tokens], lengths)

    return Side("authors", model, forward, optimizer, scheduler, torch.device(device))


def ours_cli(data_dir: Path, seed: int, schedule: Schedule, configs=(), args=()):
    """This project's CLI objects (model, data, trainer) for the ListOps config + overlays."""
    argv = ["--config", str(ROOT / OURS_CONFIG)]
    for config in configs:
        argv += ["--config", str(config)]
    argv += [
        f"--data.init_args.data_dir={data_dir}",
        f"--data.init_args.batch_size={schedule.batch}",
        f"--model.lr={schedule.lr}",
        f"--model.weight_decay={schedule.weight_decay}",
        f"--model.warmup_steps={schedule.warmup}",
        f"--model.total_steps={schedule.steps}",
        f"--seed_everything={seed}",
        "--trainer.logger=false",
        *args,
    ]
    with mock.patch.object(sys, "argv", sys.argv[:1]):  # the CLI reads only ``argv``
        return cli_main(argv, run=False)


def ours_side(
    data_dir: Path, seed: int, schedule: Schedule, configs=(), args=(), device: str = "cpu"
) -> Side:
    """This project's model with ``configure_optimizers``' groups and schedule."""
    cli = ours_cli(data_dir, seed, schedule, configs, args)
    module = cli.model.to(device)
    configured = module.configure_optimizers()
    scheduler = configured["lr_scheduler"]["scheduler"]
    optimizer = configured["optimizer"]
    return Side("ours", module, module, optimizer, scheduler, torch.device(device), {"cli": cli})


def accuracy(
    side: Side, data: ParityData, eval_seed: int = 1234, batch: int = 64
) -> tuple[float, float]:
    """Validation accuracy (the fraction of correct predictions, as LRA, the paper and the
    authors' ``accuracy`` report it) and the macro average of the per-class recalls
    (torchmetrics' ``MulticlassAccuracy`` default), in evaluation mode, spikes sampled from a
    seeded, forked RNG."""
    side.model.eval()
    predicted = []
    devices = [side.device] if side.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(eval_seed)
        for start in range(0, len(data.val), batch):
            inputs, lengths, _ = data.collate(
                data.val, range(start, min(start + batch, len(data.val)))
            )
            inputs, lengths = side.batch((inputs, lengths))
            predicted.append(side.forward(inputs, lengths).argmax(-1).cpu())
    side.model.train()
    hits = torch.cat(predicted) == data.val.targets  # (N)
    recalls = [hits[data.val.targets == c].float().mean() for c in data.val.targets.unique()]
    return float(hits.float().mean()), float(torch.stack(recalls).mean())


def train_step(side: Side, batch) -> float:
    """One optimisation step on ``batch``; returns the loss."""
    inputs, lengths, targets = side.batch(batch)
    loss = F.cross_entropy(side.forward(inputs, lengths), targets)
    side.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    side.optimizer.step()
    side.scheduler.step()
    return float(loss.detach())


def train_curve(
    side: Side,
    data: ParityData,
    seed: int,
    schedule: Schedule,
    eval_at: Callable[[int], bool],
    on_record: Callable[[dict], None] | None = None,
) -> dict[str, list[float]]:
    """Train ``schedule.steps`` steps; at every step where ``eval_at(step)`` and at the last,
    record the validation accuracy and the mean training loss since the last record, and
    hand the curve so far to ``on_record``."""
    curve: dict[str, list[float]] = {
        "step": [],
        "val_acc": [],
        "val_macro_acc": [],
        "train_loss": [],
        "seconds": [],
    }
    side.model.train()
    losses: list[float] = []
    seconds = 0.0  # training only, evaluation excluded
    for step, indices in enumerate(data.plan(seed, schedule.steps, schedule.batch), start=1):
        begin = time.perf_counter()
        losses.append(train_step(side, data.collate(data.train, indices)))
        seconds += time.perf_counter() - begin
        if eval_at(step) or step == schedule.steps:
            curve["step"].append(step)
            acc, macro = accuracy(side, data)
            curve["val_acc"].append(acc)
            curve["val_macro_acc"].append(macro)
            curve["train_loss"].append(sum(losses) / len(losses))
            curve["seconds"].append(seconds)
            losses = []
            print(
                f"{side.name} seed {seed} step {step}: val_acc {acc:.4f} (macro {macro:.4f}) "
                f"({seconds:.0f} s training)",
                file=sys.stderr,
                flush=True,
            )
            if on_record is not None:
                on_record(curve)
    return curve
