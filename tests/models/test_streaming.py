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

from pspikessm.models import BlockSettings, PSpikeSSM, spike_emitters
from pspikessm.models.block import BranchUniforms


def record_spiking_modules(model: nn.Module) -> tuple[dict, list]:
    """Record (input, uniforms, output) of every spiking module, per call: forward hooks, and
    for neurons with state a wrapper around their ``step``."""
    records: dict[str, list] = {}
    handles = []
    for name, module in spike_emitters(model):

        def hook(module, args, output, name=name):
            uniforms = args[2] if len(args) > 2 else None
            records.setdefault(name, []).append((args[0], uniforms, output))

        handles.append(module.register_forward_hook(hook))
        if hasattr(module, "step"):

            def step(drive, state, mask=None, name=name, plain=module.step):
                out, state = plain(drive, state, mask)
                records.setdefault(name, []).append((drive, None, out))
                return out, state

            module.step = step
            handles.append(_Restore(module))
    return records, handles


class _Restore:
    """Removes a recording ``step`` wrapper, as a hook handle removes a hook."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def remove(self) -> None:
        del self.module.step


def concatenated(records: dict, index: int) -> dict[str, torch.Tensor]:
    return {name: torch.cat([r[index] for r in calls], dim=-1) for name, calls in records.items()}


CASES = {
    "paper-block": {},
    "diag-one-branch": {"kernel": "diag", "second_branch": False},
    "per-neuron-independent-uniforms": {
        "kernel": {"name": "dplr", "init_args": {"shared": False}},
        "share_uniforms": False,
    },
    "diag-lif": {"kernel": "diag", "neuron": "lif", "prenorm": True, "norm": "layer"},
    "dplr-binary": {"neuron": "binary", "second_branch": False},
}


def streamable(**options) -> PSpikeSSM:
    block = BlockSettings(d_state=4, dt_min=0.05, dt_max=0.5, **options)
    return PSpikeSSM(num_classes=3, vocab_size=12, d_model=8, n_layers=2, block=block)


@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_step_mode_equals_conv_mode(options: dict) -> None:
    torch.manual_seed(0)
    model = streamable(**options)
    model = model.double().eval()
    with torch.no_grad():  # move BatchNorm off identity so the running statistics matter
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    inputs = torch.randint(0, 12, (3, 24))
    lengths = torch.tensor([24, 17, 5])
    uniforms = model.draw_uniforms(3, 24, dtype=torch.float64)

    conv_records, handles = record_spiking_modules(model)
    with torch.no_grad():
        conv_logits = model(inputs, lengths, uniforms)
    for handle in handles:
        handle.remove()
    step_records, more = record_spiking_modules(model)
    step_logits = model.stream(inputs, lengths, uniforms)
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
    block = BlockSettings(d_state=4)
    model = PSpikeSSM(num_classes=3, d_input=2, d_model=8, n_layers=1, block=block)
    model = model.double().eval()
    inputs = torch.randn(2, 10, 2, dtype=torch.float64)
    uniforms = model.draw_uniforms(2, 10, dtype=torch.float64)
    state = model.initial_state(2)

    def at(t: slice):
        return [[BranchUniforms(*(z[..., t] for z in branch)) for branch in b] for b in uniforms]

    for t in range(6):
        online = model.step(inputs[:, t], state, None, at(slice(t, t + 1)))
    with torch.no_grad():
        prefix = model(inputs[:, :6], None, at(slice(0, 6)))
    torch.testing.assert_close(online, prefix, atol=1e-10, rtol=0)


def test_two_sided_model_refuses_step_mode() -> None:
    model = streamable(two_sided=True).eval()
    with pytest.raises(ValueError, match="two-sided kernels"):
        model.stream(torch.zeros(1, 3, dtype=torch.long))


def test_step_mode_needs_eval_and_single_sequences() -> None:
    model = streamable()
    with pytest.raises(RuntimeError, match="model.eval"):
        model.train().stream(torch.zeros(1, 3, dtype=torch.long))
    pairs = PSpikeSSM(vocab_size=5, d_model=4, dual_input=True, block=BlockSettings(d_state=4))
    with pytest.raises(ValueError, match="takes pairs"):
        pairs.eval().stream(torch.zeros(1, 3, dtype=torch.long))
