"""The backbone: padding never changes the logits; SSM parameters get their own optimiser group."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.optim import parameter_groups, periodic_cosine_lambda, warmup_cosine_lambda


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("norm,prenorm", [("batch", False), ("layer", True)])
def test_pooling_ignores_padding(bidirectional: bool, norm: str, prenorm: bool) -> None:
    torch.manual_seed(0)
    block = BlockSettings(d_state=8, two_sided=bidirectional, norm=norm, prenorm=prenorm)
    model = PSpikeSSM(num_classes=5, vocab_size=12, d_model=16, n_layers=2, block=block)
    model = model.double().eval()
    for module in model.modules():  # probabilities instead of samples: deterministic
        if hasattr(module, "sample_in_eval"):
            module.sample_in_eval = False
    tokens = torch.randint(3, 12, (3, 20))
    lengths = torch.tensor([20, 13, 7])
    logits = model(tokens, lengths)
    for extra in (1, 17):
        padded = torch.cat([tokens, torch.randint(0, 12, (3, extra))], dim=1)
        torch.testing.assert_close(model(padded, lengths), logits, rtol=0, atol=1e-10)
    # Without the lengths the padding is read as data and the logits move.
    assert not torch.allclose(model(padded, None), logits)


def test_real_valued_inputs_use_a_linear_encoder() -> None:
    block = BlockSettings(d_state=4)
    model = PSpikeSSM(num_classes=3, vocab_size=0, d_input=2, d_model=8, n_layers=1, block=block)
    assert model(torch.randn(4, 10, 2)).shape == (4, 3)


def optimiser_settings(model: PSpikeSSM, lr: float, weight_decay: float) -> dict[str, tuple]:
    """Parameter name → (lr, weight decay) as the AdamW groups give them."""
    groups = parameter_groups(model, lr=lr, weight_decay=weight_decay)
    by_id = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    assert len(by_id) == len(list(model.parameters()))  # every parameter in one group
    return {name: by_id[id(p)] for name, p in model.named_parameters()}


@pytest.mark.parametrize("prenorm", [False, True])
def test_official_optimiser_groups(prenorm: bool) -> None:
    """As the authors' optimiser: A, B, P at the SSM rate and dt at the global one, all without
    weight decay; C global; no weight decay for norms and biases of the blocks and the final
    norm; the encoder, decoder, affines and D keep the global settings."""
    block = BlockSettings(d_state=4, norm="batch", prenorm=prenorm)
    model = PSpikeSSM(num_classes=3, vocab_size=5, d_model=8, n_layers=2, block=block)
    settings = optimiser_settings(model, lr=5e-3, weight_decay=0.05)
    ssm = ("log_w_real", "w_imag", ".p", ".b")
    for name, (lr, decay) in settings.items():
        if name.startswith("blocks.") and name.endswith(ssm):
            assert (lr, decay) == (1e-3, 0.0), name
        elif (
            name.endswith("inv_dt") or "norm" in name or name.endswith(".bias") and "blocks" in name
        ):
            assert (lr, decay) == (5e-3, 0.0), name
        else:
            assert (lr, decay) == (5e-3, 0.05), name
    assert settings["decoder.bias"] == (5e-3, 0.05)  # outside the blocks
    assert settings["blocks.0.mixer.linear.bias"] == (5e-3, 0.0)
    assert settings["blocks.0.fuse.affines.1.shift"] == (5e-3, 0.05)  # named inp2_b officially
    assert settings["blocks.0.branches.0.ssm.kernel.c"] == (5e-3, 0.05)
    if prenorm:
        assert settings["final_norm.weight"] == (5e-3, 0.0)


def test_scalar_layer_rate_covers_dt_and_c() -> None:
    """The official Image/Pathfinder layer lr: dt and C at the SSM rate too (C keeps decay)."""
    block = BlockSettings(d_state=4, ssm_lr=1e-3, dt_lr=1e-3, c_lr=1e-3)
    model = PSpikeSSM(num_classes=3, vocab_size=5, d_model=8, n_layers=1, block=block)
    settings = optimiser_settings(model, lr=5e-3, weight_decay=0.05)
    assert settings["blocks.0.branches.0.ssm.kernel.inv_dt"] == (1e-3, 0.0)
    assert settings["blocks.0.branches.0.ssm.kernel.c"] == (1e-3, 0.05)


def test_warmup_cosine_schedule() -> None:
    factor = warmup_cosine_lambda(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)
    assert factor(110) == pytest.approx(0.0)


def test_periodic_cosine_is_transformers_schedule() -> None:
    """The authors' schedule: warm-up from 0, cosine to 0 at total_steps, then rising again."""
    factor = periodic_cosine_lambda(warmup_steps=10, total_steps=110)
    assert factor(0) == 0.0
    assert factor(5) == pytest.approx(0.5)
    assert factor(60) == pytest.approx(0.5)
    assert factor(110) == pytest.approx(0.0)
    assert factor(160) == pytest.approx(0.5)  # past total_steps the rate rises again
    assert factor(210) == pytest.approx(1.0)
