"""Evaluation modes of the stochastic network (sample / expected / mc) and checkpoint checks."""

from __future__ import annotations

from pathlib import Path

import lightning
import pytest
import torch

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[1]


def backbone(d_model: int = 16, n_layers: int = 2, **block) -> PSpikeSSM:
    settings = BlockSettings(**{"d_state": 8, "kernel": "diag", "second_branch": False, **block})
    return PSpikeSSM(
        num_classes=4, vocab_size=10, d_model=d_model, n_layers=n_layers, block=settings
    )


def classifier(eval_mode: str = "sample", mc_samples: int = 1, **size) -> SequenceClassifier:
    torch.manual_seed(0)
    model = SequenceClassifier(
        backbone(**size), num_classes=4, eval_mode=eval_mode, mc_samples=mc_samples
    )
    model.eval()
    model._apply_eval_mode()
    return model


@torch.no_grad()
def probabilities(model: SequenceClassifier, inputs: torch.Tensor, batch_idx: int = 0):
    return model.evaluate(inputs, None, batch_idx).exp()


INPUTS = torch.randint(0, 10, (8, 30), generator=torch.Generator().manual_seed(3))


def test_mc_with_one_pass_equals_sample() -> None:
    sample = probabilities(classifier("sample"), INPUTS)
    mc = probabilities(classifier("mc", mc_samples=1), INPUTS)
    torch.testing.assert_close(mc, sample, atol=1e-6, rtol=0)


def test_sample_is_seeded_per_batch_and_leaves_the_global_rng_alone() -> None:
    model = classifier("sample")
    before = torch.get_rng_state()
    first, again = probabilities(model, INPUTS, 5), probabilities(model, INPUTS, 5)
    assert torch.equal(torch.get_rng_state(), before)
    torch.testing.assert_close(first, again, atol=0, rtol=0)
    assert not torch.equal(first, probabilities(model, INPUTS, 6))  # new batch, new draw


def test_expected_is_deterministic_without_a_seed() -> None:
    model = classifier("expected")
    model.hparams.eval_seed = None
    torch.testing.assert_close(probabilities(model, INPUTS, 0), probabilities(model, INPUTS, 1))


def test_mc_average_converges_toward_expected() -> None:
    """The MC average converges (at rate 1/√K) to E[softmax(f(spikes))]; ``expected`` is the
    mean-field softmax(f(E[spikes])), a different quantity in a nonlinear network, so the
    distance falls with K until it reaches that gap (here about 7e-4 mean absolute error in
    probability at K = 64, against 1.7e-3 for one pass). Stated tolerance: below 2e-3 and
    below 0.6 times the single-pass error, each averaged over batch seeds."""
    inputs, tiny = INPUTS[:4, :16], {"d_model": 8, "n_layers": 1}
    expected = probabilities(classifier("expected", **tiny), inputs)

    def error(passes: int, seeds: range) -> float:
        model = classifier("mc", mc_samples=passes, **tiny)
        gaps = [(probabilities(model, inputs, b) - expected).abs().mean() for b in seeds]
        return float(sum(gaps) / len(gaps))

    one, many = error(1, range(4)), error(64, range(2))
    assert many < 2e-3
    assert many < 0.6 * one


def test_unknown_eval_mode_is_named() -> None:
    with pytest.raises(ValueError, match=r"eval_mode='vote'.*\('sample', 'expected', 'mc'\)"):
        SequenceClassifier(backbone(), eval_mode="vote")


@pytest.mark.slow  # a fit; the modes themselves are checked fast
def test_mode_is_logged_with_the_validation_metrics(listops_dir: Path, tmp_path: Path) -> None:
    cli = cli_main(
        [
            "validate",
            "--config",
            str(ROOT / "configs/lra/listops.yaml"),
            f"--data.init_args.data_dir={listops_dir}",
            "--data.init_args.max_length=64",
            "--data.init_args.num_workers=0",
            "--model.eval_mode=mc",
            "--model.mc_samples=3",
            "--trainer.limit_val_batches=1",
            *tiny_model_args(),
            *fast_trainer_args(tmp_path),
        ]
    )
    metrics = cli.trainer.callback_metrics
    assert metrics["val/eval_passes"] == 3
    assert 0.0 <= metrics["val/acc"] <= 1.0


def save_checkpoint(model: SequenceClassifier, path: Path) -> Path:
    """A checkpoint as the Trainer writes it (state dict, hyper-parameters, model hook)."""
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"kernel": "dplr"}, "block.kernel: checkpoint 'diag', model 'dplr'"),
        ({"d_model": 8}, "d_model: checkpoint 16, model 8"),
    ],
)
def test_checkpoint_of_another_architecture_is_refused(tmp_path, change, named) -> None:
    path = save_checkpoint(classifier(), tmp_path / "model.ckpt")
    with pytest.raises(ValueError, match=named):
        SequenceClassifier.load_from_checkpoint(path, backbone=backbone(**change))
    # Settings that only shape training may differ.
    reloaded = SequenceClassifier.load_from_checkpoint(path, backbone=backbone(dropout=0.3))
    assert reloaded.backbone.settings["block"]["kernel"] == "diag"
