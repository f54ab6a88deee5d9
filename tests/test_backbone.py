"""The backbone: padding never changes the logits; SSM parameters get their own optimiser group."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models import PSpikeSSM
from pspikessm.optim import parameter_groups, warmup_cosine_lambda


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("norm,prenorm", [("batch", False), ("layer", True)])
def test_pooling_ignores_padding(bidirectional: bool, norm: str, prenorm: bool) -> None:
    torch.manual_seed(0)
    model = (
        PSpikeSSM(
            num_classes=5,
            vocab_size=12,
            d_model=16,
            d_state=8,
            n_layers=2,
            bidirectional=bidirectional,
            norm=norm,
            prenorm=prenorm,
            eval_mode="expected",
        )
        .double()
        .eval()
    )
    tokens = torch.randint(3, 12, (3, 20))
    lengths = torch.tensor([20, 13, 7])
    logits = model(tokens, lengths)
    for extra in (1, 17):
        padded = torch.cat([tokens, torch.randint(0, 12, (3, extra))], dim=1)
        torch.testing.assert_close(model(padded, lengths), logits, rtol=0, atol=1e-10)
    # Without the lengths the padding is read as data and the logits move.
    assert not torch.allclose(model(padded, None), logits)


def test_real_valued_inputs_use_a_linear_encoder() -> None:
    model = PSpikeSSM(num_classes=3, vocab_size=0, d_input=2, d_model=8, d_state=4, n_layers=1)
    assert model(torch.randn(4, 10, 2)).shape == (4, 3)


def test_ssm_parameters_form_their_own_group() -> None:
    model = PSpikeSSM(num_classes=3, vocab_size=5, d_model=8, d_state=4, n_layers=2, ssm_lr=1e-3)
    groups = parameter_groups(model, lr=5e-3, weight_decay=0.05)
    ssm = next(g for g in groups if g["lr"] == 1e-3)
    assert ssm["weight_decay"] == 0.0
    # A (real, imag) and B of each of the two layers.
    assert len(ssm["params"]) == 3 * 2
    dt = next(g for g in groups if g["lr"] == 5e-3 and g["weight_decay"] == 0.0)
    assert len(dt["params"]) == 2
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_warmup_cosine_schedule() -> None:
    factor = warmup_cosine_lambda(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)
    assert factor(110) == pytest.approx(0.0)
