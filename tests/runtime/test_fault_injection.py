"""A run killed again and again (SIGTERM, SIGKILL; in a step, in data loading, in validation,
in a checkpoint write) and resumed each time ends exactly where an uninterrupted run ends.

Every attempt is ``pspikessm fit ... --ckpt_path last`` (the console entry point, ``main``) in
a fresh interpreter, as a requeued SLURM job runs it (:mod:`helpers.cli_process`);
``fault_injection.InjectFault`` sends the signal (see there for the points).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.cli_args import tiny_model_args
from helpers.cli_process import run_cli
from pspikessm.runtime.callbacks import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]

#: (signal, point, global step) of each attempt, its exit status and the step of the
#: last.ckpt it leaves. 6 training steps per epoch, validation at the end of each epoch.
ATTEMPTS = [
    ("SIGTERM", "train", 3, PREEMPTED_EXIT_CODE, 4),  # the step finishes, then it stops
    ("SIGKILL", "save", 6, -9, 4),  # dies writing last.ckpt: the old one stays
    ("SIGTERM", "save", 6, PREEMPTED_EXIT_CODE, 7),  # the write completes; stops after step 7
    ("SIGTERM", "val", 12, PREEMPTED_EXIT_CODE, 12),  # stops in validation; it runs again
    ("SIGKILL", "train", 13, -9, 12),
    ("SIGTERM", "load", 15, PREEMPTED_EXIT_CODE, 16),
    (None, None, None, 0, 18),  # runs to the end
]


def run_args(listops_dir: Path, logs: Path) -> list[str]:
    return [
        "fit",
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.generate=null",
        "--data.init_args.batch_size=16",
        "--data.init_args.eval_batch_size=8",
        "--model.warmup_steps=2",
        "--model.total_steps=18",
        "--trainer.max_epochs=3",
        "--trainer.callbacks=[]",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=1",
        "--trainer.accelerator=cpu",
        f"--trainer.logger.init_args.save_dir={logs}",
        "--trainer.logger.init_args.version=run",  # as scripts/slurm.sbatch does
        *tiny_model_args(),
    ]  # fmt: skip


def attempt(argv: list[str], fault: str | None) -> int:
    """``pspikessm <argv>`` in a fresh interpreter (output discarded); its exit status."""
    return run_cli(argv, fault, timeout=300)


def logged(run_dir: Path) -> dict[tuple[str, int], float]:
    """Every train/ and val/ scalar of the run folder by (tag, step); a later attempt's value
    of a step replaces an earlier one's (a resumed run repeats the steps after its checkpoint)."""
    values: dict[tuple[str, int], float] = {}
    files = sorted(run_dir.glob("events.out.tfevents.*"), key=lambda p: int(p.name.split(".")[3]))
    for events in files:
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        for tag in accumulator.Tags()["scalars"]:
            if tag.startswith(("train/", "val/")):
                values.update({(tag, e.step): e.value for e in accumulator.Scalars(tag)})
    return values


@pytest.mark.slow
def test_killed_and_resumed_run_ends_like_an_uninterrupted_one(listops_dir, tmp_path):
    argv = run_args(listops_dir, tmp_path / "logs")
    run = tmp_path / "logs" / "quickstart" / "run"
    last = run / "checkpoints" / "last.ckpt"
    for number, (signal_name, point, step, status, saved_step) in enumerate(ATTEMPTS, 1):
        if signal_name is None:
            result = attempt([*argv, "--ckpt_path", "last"], None)
        else:
            extra = [
                "--ckpt_path",
                "last",
                "--trainer.callbacks+=helpers.fault_injection.InjectFault",
            ]
            result = attempt([*argv, *extra], f"{signal_name}:{point}:{step}")
        where = f"attempt {number} ({signal_name} {point} {step})"
        assert result == status, where
        # Never an unloadable last.ckpt, and it holds the newest resumable state.
        assert torch.load(last, weights_only=True)["global_step"] == saved_step, where
    assert sorted(p.name for p in last.parent.iterdir() if p.name.startswith(".")) == []
    # Each attempt that started training recorded its configuration, none overwritten.
    records = {p.name for p in run.glob("config*.yaml")}
    assert records == {"config.yaml"} | {f"config-attempt{n}.yaml" for n in range(2, 8)}

    # The uninterrupted run is started as the attempts are (a fresh interpreter): bit-identity
    # is between runs started alike.
    assert attempt(run_args(listops_dir, tmp_path / "whole"), None) == 0
    whole_last = tmp_path / "whole" / "quickstart" / "run" / "checkpoints" / "last.ckpt"
    expected = torch.load(whole_last, weights_only=True)
    actual = torch.load(last, weights_only=True)
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(actual["state_dict"][name], tensor), name
    for a, b in zip(actual["optimizer_states"][0]["state"].values(),
                    expected["optimizer_states"][0]["state"].values(), strict=True):  # fmt: skip
        assert all(torch.equal(a[k], b[k]) for k in b), "optimiser moments"
    assert torch.equal(actual["rng_state"]["torch"], expected["rng_state"]["torch"])
    reference = logged(tmp_path / "whole" / "quickstart" / "run")
    assert {tag for tag, _ in reference} >= {"val/acc", "val/acc_best", "train/loss_epoch"}
    assert logged(run) == reference
