"""Switches that help the spiking model learn: the expectation warm-up, several spike samples
per step (antithetic or not), and the initial values and learning rate of the affines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.models.spike_sampler import SpikeSampler
from pspikessm.module import SequenceClassifier
from pspikessm.optim import parameter_groups
from pspikessm.spike_training import sampled_loss

ROOT = Path(__file__).resolve().parents[1]


def backbone(**block) -> PSpikeSSM:
    settings = BlockSettings(**{"d_state": 8, "kernel": "diag", "second_branch": False, **block})
    return PSpikeSSM(num_classes=4, vocab_size=10, d_model=16, n_layers=2, block=settings)


def batch(size: int = 6, length: int = 25) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randint(0, 10, (size, length), generator=generator)
    lengths = torch.randint(length // 2, length + 1, (size,), generator=generator)
    return inputs, lengths, torch.randint(0, 4, (size,), generator=generator)


def test_sampling_blends_the_spike_with_its_probability() -> None:
    x = torch.tensor([-0.3, 0.2, 0.6, 0.9, 1.4], requires_grad=True)
    uniforms = torch.tensor([0.5, 0.1, 0.7, 0.2, 0.3])
    sampler = SpikeSampler()
    spikes = torch.tensor([0.0, 1.0, 0.0, 1.0, 1.0])
    for sampling in (0.0, 0.25, 1.0):
        sampler.sampling = sampling
        out = sampler(x, None, uniforms)
        p = x.detach().clamp(0, 1)
        torch.testing.assert_close(out, p + sampling * (spikes - p))
        (grad,) = torch.autograd.grad(out.sum(), x)  # the spike's surrogate at every α
        assert grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_leak_passes_gradient_where_the_clamp_saturates() -> None:
    x = torch.tensor([[-0.3, 0.2, 0.6, 1.4, 2.0]], requires_grad=True)
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    for leak, slope in ((0.0, [0.0, 1.0, 1.0, 0.0, 0.0]), (0.25, [0.25, 1.0, 1.0, 0.25, 0.0])):
        spikes = SpikeSampler(leak=leak)(x, mask)
        (grad,) = torch.autograd.grad(spikes.sum(), x)
        assert grad.tolist() == [slope]  # padding (mask 0) never passes gradient
        assert spikes[0, 0] == 0 and spikes[0, 3] == 1  # the forward is the paper's
    with pytest.raises(ValueError, match="leak must lie in"):
        SpikeSampler(leak=1.5)


def test_warmup_gives_probabilities_at_step_0_and_spikes_after_it(
    listops_dir: Path, tmp_path: Path
) -> None:
    cli = cli_main(
        [
            "--config",
            str(ROOT / "configs" / "quickstart.yaml"),
            f"--data.init_args.data_dir={listops_dir}",
            "--data.init_args.batch_size=16",
            "--model.spike_warmup_steps=4",
            "--trainer.max_steps=6",
            "--trainer.val_check_interval=2",
            "--trainer.limit_val_batches=1",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.callbacks=[]",
            "--trainer.enable_progress_bar=false",
            *tiny_model_args(),
            *fast_trainer_args(tmp_path),
        ],
        run=False,
    )
    module = cli.model
    seen: list[tuple[int, bool, torch.Tensor, torch.Tensor]] = []

    def record(sampler, args, out) -> None:
        probability = args[0].detach().clamp(0, 1) * args[1]
        seen.append((module.trainer.global_step, module.training, probability, out.detach()))

    for sampler in module.backbone.modules():
        if isinstance(sampler, SpikeSampler):
            sampler.register_forward_hook(record)
    cli.trainer.fit(module, cli.datamodule)

    def outputs(step: int, training: bool = True) -> list[tuple[torch.Tensor, torch.Tensor]]:
        found = [(p, out) for s, train, p, out in seen if s == step and train == training]
        assert found, (step, training)
        return found

    def binary(out: torch.Tensor, atol: float = 0.0) -> bool:
        rounded = out.round()
        return bool(((out - rounded).abs() <= atol).all() and (rounded * (1 - rounded) == 0).all())

    for p, out in outputs(0):  # α = 0: the firing probabilities themselves
        assert torch.equal(out, p) and not binary(out)
    for p, out in outputs(2):  # α = 1/2: halfway between the probability and a spike
        assert binary(2 * out - p, atol=1e-6) and not binary(out)
    for step in (4, 5):  # after the warm-up: spikes
        assert all(binary(out) for _, out in outputs(step))
    assert all(binary(out) for _, out in outputs(2, training=False))  # evaluation samples


def test_k_samples_average_k_gradients() -> None:
    torch.manual_seed(0)
    model = backbone()
    data = batch()
    torch.manual_seed(5)
    loss, _ = sampled_loss(model, data, samples=3)
    loss.backward()
    averaged = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(5)  # the same three draws, one pass and one backward at a time
    separate = [torch.zeros_like(p) for p in model.parameters()]
    for _ in range(3):
        loss_k, _ = sampled_loss(model, data, samples=1)
        grads = torch.autograd.grad(loss_k, list(model.parameters()))
        separate = [total + g / 3 for total, g in zip(separate, grads, strict=True)]
    for mine, theirs in zip(averaged, separate, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-7)
    torch.manual_seed(5)
    (single,) = torch.autograd.grad(sampled_loss(model, data)[0], [model.encoder.weight])
    assert not torch.allclose(single, averaged[0])  # three samples are not one


def test_antithetic_pairs_use_one_minus_u() -> None:
    torch.manual_seed(0)
    model = backbone(share_uniforms=False)
    calls: list[tuple[torch.Tensor, ...]] = []  # (drive, mask, uniforms, spikes) per call
    for sampler in model.modules():
        if isinstance(sampler, SpikeSampler):
            sampler.register_forward_hook(
                lambda m, args, out: calls.append((args[0].detach(), *args[1:], out.detach()))
            )
    classifier = SequenceClassifier(model, num_classes=4, train_samples=4, antithetic=True)
    classifier.training_step(batch(), 0)
    sites = 4  # 2 blocks × (input, output)
    assert len(calls) == 4 * sites
    for pair in range(2):
        first = calls[2 * pair * sites : (2 * pair + 1) * sites]
        second = calls[(2 * pair + 1) * sites : (2 * pair + 2) * sites]
        for (_, _, u, _), (x, mask, u_anti, spikes) in zip(first, second, strict=True):
            torch.testing.assert_close(u_anti, 1 - u, rtol=0, atol=0)
            assert torch.equal(spikes, (u_anti < x.clamp(0, 1)).float() * mask)
    assert not torch.equal(calls[0][2], calls[2 * sites][2])  # a new pair draws new uniforms


@pytest.mark.parametrize(
    "options, message",
    [
        ({"train_samples": 0}, "model.train_samples must be >= 1"),
        ({"train_samples": 3, "antithetic": True}, "must be even"),
    ],
)
def test_sampling_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SequenceClassifier(backbone(), num_classes=4, **options)


def test_affine_init_and_learning_rate() -> None:
    torch.manual_seed(0)
    model = backbone(drive_init=(0.25, 0.3), output_init=(0.5, 0.125), affine_lr=0.02)
    x = torch.randn(3, 16, 7)
    block = model.blocks[0]
    torch.testing.assert_close(block.fuse.drives(x)[0], 0.25 * block.fuse.pre_norm(x) + 0.3)
    affine = block.branches[0].output_affine
    assert affine.scale.unique().tolist() == [0.5] and affine.shift.unique().tolist() == [0.125]
    groups = parameter_groups(model, lr=1e-3, weight_decay=0.01)
    fast = [g for g in groups if g["lr"] == 0.02]
    expected = {
        id(p)
        for m in model.modules()
        if type(m).__name__ == "ChannelAffine"
        for p in m.parameters()
    }
    assert len(fast) == 1 and {id(p) for p in fast[0]["params"]} == expected
    assert len(expected) == 2 * 2 * 2  # 2 blocks × (drive, output) × (a, b)
    paper = backbone()
    assert paper.blocks[0].fuse.affines[0].scale.unique().tolist() == [1.0]
