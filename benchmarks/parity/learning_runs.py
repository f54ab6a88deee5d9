"""The runs of ``python -m benchmarks.parity.learning``: variants, per-step timing, one training run.

Everything is built by the CLI (``cli_main(args, run=False)``) from ``configs/quickstart.yaml``
and a variant's items, so a variant trains exactly as ``pspikessm fit`` would train it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
import yaml

from benchmarks.harness import HERE, time_interleaved
from pspikessm.cli import cli_main
from pspikessm.models.neurons import build_neuron
from pspikessm.optim import parameter_groups

ROOT = HERE.parent
BASE_CONFIG = ROOT / "configs" / "quickstart.yaml"
#: The generated set: LRA grammar, 20-200 tokens (exclusive), depth up to 6
#: (``--train-rows`` replaces ``num_train``: :func:`listops_set`).
LISTOPS = {
    "num_train": 20000,
    "num_val": 2000,
    "num_test": 100,
    "min_length": 20,
    "max_length": 200,
    "max_depth": 6,
    "max_args": 10,
    "seed": 0,
}


def listops_set(num_train: int | None = None) -> dict:
    """:data:`LISTOPS` with ``num_train`` training rows (its own when None)."""
    return LISTOPS if num_train is None else {**LISTOPS, "num_train": num_train}


#: Variant items that swap the neuron of one site in every branch after the CLI built the
#: model (:func:`swap_sites`): ``site.input=real``, ``site.output=benchmarks.parity....``.
SITES = {"site.input": "input_spikes", "site.output": "output_spikes"}


@dataclass(frozen=True)
class Variant:
    """A named model: YAML overlays (paths), ``key=value`` overrides and ``site.*=NEURON``
    swaps, in order."""

    name: str
    items: list[str]

    def site_swaps(self) -> dict[str, str]:
        """``{branch attribute: neuron}`` of the ``site.input=`` / ``site.output=`` items."""
        swaps = {}
        for item in self.items:
            key, _, neuron = item.partition("=")
            if key in SITES:
                swaps[SITES[key]] = neuron
        return swaps

    def cli_args(self) -> list[str]:
        """The items as CLI arguments after ``--config configs/quickstart.yaml``."""
        args = []
        for item in self.items:
            if item.partition("=")[0] in SITES:
                continue
            if item.endswith((".yaml", ".yml")) and "=" not in item:
                path = Path(item) if Path(item).is_absolute() else ROOT / item
                if not path.exists():
                    raise FileNotFoundError(f"variant {self.name!r}: overlay {item} not found")
                args += ["--config", str(path)]
            else:
                args.append(f"--{item.removeprefix('--')}")
        return args


def parse_variant(text: str) -> Variant:
    """``NAME=ITEM[,ITEM...]``; commas inside brackets or braces do not split."""
    name, sep, rest = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not rest:
        raise ValueError(
            f"--variant {text!r}: expected NAME=ITEM[,ITEM...] (an ITEM is an overlay .yaml or "
            "key=value), e.g. lr4=model.lr=0.004"
        )
    items, depth, current = [], 0, ""
    for char in rest:
        depth += (char in "[{") - (char in "]}")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    return Variant(name, [item.strip() for item in [*items, current] if item.strip()])


def build(
    variant: Variant,
    data_dir: Path,
    seed: int = 0,
    extra: list[str] | None = None,
    listops: dict | None = None,
):
    """The CLI (``run=False``) of ``variant`` on the benchmark's data (``listops``: the
    generator's settings, :data:`LISTOPS` by default): model, data, trainer."""
    listops = listops or LISTOPS
    args = [
        "--config",
        str(BASE_CONFIG),
        *variant.cli_args(),
        f"--seed_everything={seed}",
        f"--data.init_args.data_dir={data_dir}",
        f"--data.init_args.max_length={listops['max_length']}",
        f"--data.init_args.generate={json.dumps(listops)}",
        f"--data.init_args.seed={seed}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks=[]",
        *(extra or []),
    ]
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no "GPU available"
    with warnings.catch_warnings():  # LightningCLI: "args ... and command line arguments"
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        cli = cli_main(args, run=False)
    swap_sites(cli.model, variant.site_swaps())
    return cli


def swap_sites(model: torch.nn.Module, swaps: dict[str, str]) -> None:
    """Replace the neuron at each named site (``input_spikes``, ``output_spikes``) of every
    branch of ``model`` with a new one built from its choice (``real``, an import path, or
    YAML ``{name: ..., init_args: {...}}``), given the branch's width."""
    width = model.backbone.settings["d_model"]
    for module in list(model.modules()):
        for site, choice in swaps.items():
            if isinstance(getattr(module, site, None), torch.nn.Module):
                setattr(module, site, build_neuron(yaml.safe_load(choice), width))


def step_times(
    variants: list[Variant], data_dir: Path, repeats: int, listops: dict | None = None
) -> dict[str, float]:
    """CPU seconds of one training step (forward, backward, clipping, AdamW) of each variant,
    median over ``repeats`` round-robin rounds on the same 4 training batches."""
    steps = {}
    for variant in variants:
        cli = build(variant, data_dir, listops=listops)
        cli.datamodule.prepare_data()  # generates the set on first use
        cli.datamodule.setup("fit")
        loader = iter(cli.datamodule.train_dataloader())
        batches = [next(loader) for _ in range(4)]
        steps[variant.name] = _training_step(cli.model, batches)
    with warnings.catch_warnings():  # training_step's self.log without a trainer
        warnings.simplefilter("ignore")
        times = time_interleaved(steps, torch.device("cpu"), repeats, warmup=2)
    return {name: statistics.median(t["cpu"]) for name, t in times.items()}


def _training_step(module: L.LightningModule, batches: list) -> Callable[[], None]:
    hp = module.hparams
    optimizer = torch.optim.AdamW(parameter_groups(module, hp.lr, hp.weight_decay), lr=hp.lr)
    module.train()
    count = iter(range(10**9))

    def step() -> None:
        i = next(count)
        loss = module.training_step(batches[i % len(batches)], i)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


class Recorder(L.Callback):
    """Training CPU and wall time (steps only, no validation) and every validation result:
    val/acc and val/loss, the mean training loss since the previous validation, and every
    ``sparsity/...`` scalar of the firing-rate monitor (per spike site: rate, silent fraction,
    drive statistics, gradient RMS)."""

    def __init__(self) -> None:
        self.evals: list[dict] = []
        self.cpu = self.wall = 0.0
        self._start = (0.0, 0.0)
        self._losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._start = (time.process_time(), time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.cpu += time.process_time() - self._start[0]
        self.wall += time.perf_counter() - self._start[1]
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss))

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        rate = metrics.get("sparsity/val/rate")
        losses, self._losses = self._losses, []
        self.evals.append(
            {
                "step": trainer.global_step,
                "train_cpu_s": self.cpu,
                "train_wall_s": self.wall,
                "val_acc": float(metrics["val/acc"]),
                "val_loss": float(metrics["val/loss"]),
                "train_loss": statistics.fmean(losses) if losses else math.nan,
                "firing_rate": math.nan if rate is None else float(rate),
                "sparsity": {
                    tag: float(value)
                    for tag, value in metrics.items()
                    if tag.startswith("sparsity/") and tag != "sparsity/val/rate"
                },
            }
        )


def train_run(
    variant: Variant,
    seed: int,
    steps: int,
    data_dir: Path,
    runs_dir: Path,
    eval_every: int,
    listops: dict | None = None,
) -> dict:
    """Train ``variant`` for ``steps`` steps (schedule over them) from ``seed``, validating
    every ``eval_every`` steps and at the end, then once more on firing probabilities
    (``val_acc_expected``); returns the record of the run (``best_val_acc``: the best of the
    validations, spikes sampled)."""
    begun = time.perf_counter()
    torch.set_num_threads(1)
    monitor = {
        "class_path": "pspikessm.callbacks.FiringRateMonitor",
        "init_args": {"histograms": False, "images": False, "gradients": True},
    }
    cli = build(
        variant,
        data_dir,
        seed,
        listops=listops,
        extra=[
            f"--trainer.max_steps={steps}",
            "--trainer.max_epochs=-1",
            f"--model.total_steps={steps}",
            f"--trainer.val_check_interval={eval_every}",
            "--trainer.check_val_every_n_epoch=null",
            "--trainer.num_sanity_val_steps=0",
            f"--trainer.callbacks=[{json.dumps(monitor)}]",
            f"--trainer.logger.init_args.save_dir={runs_dir}",
            f"--trainer.logger.init_args.name={variant.name}-seed{seed}-steps{steps}",
            "--checkpoint.save_top_k=0",
            "--checkpoint.save_last=false",
        ],
    )
    recorder = Recorder()
    cli.trainer.callbacks.append(recorder)
    cli.trainer.fit(cli.model, cli.datamodule)
    if not recorder.evals or recorder.evals[-1]["step"] != steps:
        cli.trainer.validate(cli.model, cli.datamodule, verbose=False)
    last = recorder.evals[-1]
    # Diagnostic: the same weights evaluated on firing probabilities instead of spikes.
    cli.model.hparams.eval_mode = "expected"
    cli.trainer.validate(cli.model, cli.datamodule, verbose=False)
    expected = recorder.evals.pop()["val_acc"]
    return {
        "variant": variant.name,
        "items": variant.items,
        "seed": seed,
        "steps": steps,
        "val_acc": last["val_acc"],
        "best_val_acc": max(e["val_acc"] for e in recorder.evals),
        "firing_rate": last["firing_rate"],
        "silent_max": max(
            (
                v
                for k, v in last["sparsity"].items()
                if k.startswith("sparsity/val/") and k.endswith("/silent")
            ),
            default=math.nan,
        ),
        "val_acc_expected": expected,
        "train_cpu_s": recorder.cpu,
        "train_wall_s": recorder.wall,
        "run_wall_s": time.perf_counter() - begun,
        "evals": recorder.evals,
    }
