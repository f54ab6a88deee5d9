"""Step (streaming) mode against convolution mode.

What is exact and what is not: the convolution (FFT) and the recurrence compute the same
membrane potentials in different orders, so in float64 they differ by rounding (~1e-15). A
spike is ``1[z < p]``; it can differ between the modes only if a uniform ``z`` falls within
that rounding distance of its probability ``p``. The test therefore checks (1) the spikes of
every spiking module are identical in both modes, and (2) the smallest ``|z - p|`` over all
draws is far larger than the largest difference of the modes' sampler inputs, so the equality
is guaranteed by the margin and is not luck. Logits then agree to rounding (1e-10).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pspikessm.models.backbone import PSpikeSSM, spike_samplers
from pspikessm.models.streaming import draw_uniforms, initial_state, step, stream


def record_spiking_modules(model: nn.Module) -> tuple[dict, list]:
    """Hooks that record (input, uniforms, output) of every spiking module, per call."""
    records: dict[str, list] = {}
    handles = []
    for name, module in spike_samplers(model):

        def hook(module, args, output, name=name):
            uniforms = args[2] if len(args) > 2 else None
            records.setdefault(name, []).append((args[0], uniforms, output))

        handles.append(module.register_forward_hook(hook))
    return records, handles


def concatenated(records: dict, index: int) -> dict[str, torch.Tensor]:
    return {name: torch.cat([r[index] for r in calls], dim=-1) for name, calls in records.items()}


CASES = [
    {"kernel": "diag"},
    {"kernel": "dplr"},
    {"kernel": "dplr", "kernel_args": {"shared": False}, "second_branch": True},
    {"kernel": "diag", "neuron": "lif", "prenorm": True, "norm": "layer"},
    {"kernel": "dplr", "neuron": "binary"},
]


@pytest.mark.parametrize(
    "options", CASES, ids=["diag", "dplr", "dplr-per-neuron-2-branches", "diag-lif", "dplr-binary"]
)
def test_step_mode_equals_conv_mode(options: dict) -> None:
    torch.manual_seed(0)
    model = PSpikeSSM(
        num_classes=3,
        vocab_size=12,
        d_model=8,
        d_state=4,
        n_layers=2,
        dt_min=0.05,
        dt_max=0.5,
        **options,
    )
    model = model.double().eval()
    with torch.no_grad():  # move BatchNorm off identity so the running statistics matter
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    inputs = torch.randint(0, 12, (3, 24))
    lengths = torch.tensor([24, 17, 5])
    uniforms = draw_uniforms(model, 3, 24, dtype=torch.float64)

    conv_records, handles = record_spiking_modules(model)
    with torch.no_grad():
        conv_logits = model(inputs, lengths, uniforms)
    step_records, more = record_spiking_modules(model)
    for handle in handles:
        handle.remove()
    step_logits = stream(model, inputs, lengths, uniforms)
    for handle in more:
        handle.remove()

    assert conv_records and set(conv_records) == set(step_records)
    conv_spikes, step_spikes = concatenated(conv_records, 2), concatenated(step_records, 2)
    conv_inputs, step_inputs = concatenated(conv_records, 0), concatenated(step_records, 0)
    for name in conv_spikes:
        assert conv_spikes[name].shape == (3, 8, 24)
        assert torch.equal(conv_spikes[name], step_spikes[name]), name
        assert 0 < conv_spikes[name].mean() < 1, name  # real spike trains, not constant
        drift = (conv_inputs[name] - step_inputs[name]).abs().max()
        if conv_records[name][0][1] is not None:  # stochastic sampler: check the margin
            margin = (conv_inputs[name].clamp(0, 1) - conv_records[name][0][1]).abs().min()
            assert margin > 1e3 * drift, (name, margin, drift)
    torch.testing.assert_close(step_logits, conv_logits, atol=1e-10, rtol=0)


def test_online_logits_follow_the_prefix() -> None:
    """After t steps, the step-mode prediction is the model's prediction on the prefix."""
    torch.manual_seed(1)
    model = PSpikeSSM(num_classes=3, d_input=2, d_model=8, d_state=4, n_layers=1)
    model = model.double().eval()
    inputs = torch.randn(2, 10, 2, dtype=torch.float64)
    uniforms = draw_uniforms(model, 2, 10, dtype=torch.float64)
    state = initial_state(model, 2)
    for t in range(6):
        online = step(
            model,
            inputs[:, t],
            state,
            None,
            [{k: v[..., t] for k, v in u.items()} for u in uniforms],
        )
    prefix = [{k: v[..., :6] for k, v in u.items()} for u in uniforms]
    with torch.no_grad():
        torch.testing.assert_close(online, model(inputs[:, :6], None, prefix), atol=1e-10, rtol=0)


def test_two_sided_model_refuses_step_mode() -> None:
    model = PSpikeSSM(
        num_classes=2, vocab_size=5, d_model=4, d_state=4, n_layers=1, bidirectional=True
    ).eval()
    with pytest.raises(ValueError, match="two-sided kernels"):
        stream(model, torch.zeros(1, 3, dtype=torch.long))


def test_step_mode_needs_eval_and_a_pspikessm_backbone() -> None:
    model = PSpikeSSM(num_classes=2, vocab_size=5, d_model=4, d_state=4, n_layers=1)
    with pytest.raises(RuntimeError, match="model.eval"):
        stream(model.train(), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="Linear has none"):
        stream(nn.Linear(2, 2), torch.zeros(1, 3, 2))
