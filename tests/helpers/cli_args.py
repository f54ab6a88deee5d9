"""Command-line overrides that keep a CLI run tiny, quiet and inside a test's folder."""

from __future__ import annotations

from pathlib import Path

from pspikessm.data.listops_generator import ListOpsGeneratorConfig

#: A ListOps set small enough for a fit in seconds: 96/32/32 examples of 3-40 tokens.
TINY_LISTOPS = ListOpsGeneratorConfig(
    num_train=96, num_val=32, num_test=32, min_length=3, max_length=40, max_depth=3, max_args=4
)


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


def toy_quickstart_args(
    listops_dir: Path, tmp_path: Path, max_epochs: int = 1, total_steps: int | None = None
) -> list[str]:
    """``fit`` of the quickstart config on ``listops_dir`` (:data:`TINY_LISTOPS`), toy-sized:
    6 training steps and 4 validation batches per epoch, no callbacks, no progress bar;
    ``total_steps`` None leaves the schedule to the trainer's estimate."""
    config = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    schedule = [] if total_steps is None else [f"--model.total_steps={total_steps}"]
    return [
        "fit",
        "--config", str(config),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.generate=null",
        "--data.init_args.batch_size=16",
        "--data.init_args.eval_batch_size=8",
        "--model.warmup_steps=2",
        *schedule,
        f"--trainer.max_epochs={max_epochs}",
        "--trainer.callbacks=[]",
        "--trainer.enable_progress_bar=false",
        *fast_trainer_args(tmp_path),
        *tiny_model_args(),
    ]  # fmt: skip
