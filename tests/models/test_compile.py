"""``model.compile``: every task config's backbone traces as one graph (no graph breaks, so
the spike draws and the masks are inside it), and the compiled backbone (inductor's C++
backend here) computes what the eager one does, forward and gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks.speed.train import build_module

ROOT = Path(__file__).resolve().parents[2]

TASK_CONFIGS = sorted(
    str(path.relative_to(ROOT))
    for folder in ("lra", "mnist", "speech")
    for path in (ROOT / "configs" / folder).glob("*.yaml")
) + ["configs/quickstart.yaml"]
TOKEN_TASKS = ("listops", "text", "retrieval", "quickstart")


def small_backbone(config: str) -> torch.nn.Module:
    """The config's backbone at width 8 and two layers (everything else as configured)."""
    tokens = any(task in config for task in TOKEN_TASKS)
    linked = dict(num_classes=3, vocab_size=7 if tokens else 0, d_input=1)
    if "retrieval" in config:
        linked["dual_input"] = True
    torch.manual_seed(0)
    return build_module(ROOT / config, d_model=8, n_layers=2, **linked).backbone.train()


def small_batch(backbone: torch.nn.Module, length: int = 32):
    generator = torch.Generator().manual_seed(0)
    pairs = (2,) if backbone.dual_input else ()
    if backbone.settings["vocab_size"]:
        inputs = torch.randint(1, 7, (3, *pairs, length), generator=generator)
    else:
        inputs = torch.rand(3, *pairs, length, 1, generator=generator)
    lengths = torch.tensor([length, length - 5, length - 9])
    return inputs, lengths if not pairs else torch.stack([lengths, lengths.flip(0)], dim=1)


@pytest.mark.slow
@pytest.mark.parametrize("config", TASK_CONFIGS)
def test_every_task_backbone_compiles_as_one_graph(config):
    backbone = small_backbone(config)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(backbone)(*small_batch(backbone))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.slow
@pytest.mark.parametrize("config", ["configs/lra/listops.yaml", "configs/lra/pathx.yaml"])
def test_compiled_backbone_equals_eager_for_fixed_uniforms(config):
    """Inductor (C++ on CPU) against eager: logits and every parameter's gradient, with the
    same uniforms fixing the spikes, in training mode (batch statistics, masks, padding).
    Dropout draws from another generator under inductor, so its rate is 0 here."""
    eager = small_backbone(config)
    inputs, lengths = small_batch(eager)
    uniforms = eager.draw_uniforms(3, inputs.shape[-1], torch.Generator().manual_seed(1))
    results = []
    for compiled in (False, True):
        model = small_backbone(config)
        for dropout in (
            m for m in model.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)
        ):
            dropout.p = 0.0
        if compiled:
            torch._dynamo.reset()
            model = torch.compile(model)
        logits = model(inputs, lengths, uniforms)
        F.cross_entropy(logits, torch.tensor([0, 2, 1])).backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        results.append((logits.detach(), grads))
    (eager_logits, eager_grads), (compiled_logits, compiled_grads) = results
    torch.testing.assert_close(compiled_logits, eager_logits, rtol=1e-4, atol=1e-5)
    names = {name.removeprefix("_orig_mod.") for name in compiled_grads}
    assert names == eager_grads.keys() and len(names) > 10
    for name, grad in compiled_grads.items():
        expected = eager_grads[name.removeprefix("_orig_mod.")]
        torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.slow
def test_firing_rate_hooks_keep_one_graph_once_their_counters_exist():
    """The configs' FiringRateMonitor hooks every spike site. Its first call per site builds a
    counter (a graph break each, so the first compile is split); from then on the hooked
    backbone traces as one graph again (torch.compile recompiles once)."""
    import types

    from pspikessm.callbacks import FiringRateMonitor

    backbone = small_backbone("configs/lra/listops.yaml")
    monitor = FiringRateMonitor()
    monitor._attached_trainer = types.SimpleNamespace(
        sanity_checking=False, training=True, validating=False, testing=False
    )
    monitor._hooks.on_spikes(backbone, monitor._observe, drives=True)  # as its setup does
    batch = small_batch(backbone)
    counts = []
    for _ in range(2):
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(backbone)(*batch)
        counts.append((explanation.graph_count, explanation.graph_break_count))
    assert counts[0][1] > 0  # the counters' creation
    assert counts[1] == (1, 0)
    assert len(monitor._counts["train"]) == 8  # 2 layers x 2 branches x (input, output)
