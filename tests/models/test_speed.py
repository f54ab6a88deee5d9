"""The GPU fast path's pieces, checked on CPU: length buckets change no result, the compiled
backbone equals the eager one, every task config's backbone compiles without graph breaks,
the fused AdamW is chosen on GPUs only."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pspikessm.data.collate import bucket_length, pad_collate
from pspikessm.models import PSpikeSSM
from pspikessm.models.block import BranchUniforms
from pspikessm.models.convolution import SSMConvolution, stacked_convolution
from pspikessm.models.settings import BlockSettings
from pspikessm.optim import build_adamw, fused_update_allowed

#: The ListOps config's block (BatchNorm after the block, output spikes at padded steps,
#: two-sided DPLR kernel cut from l_max, the second branch), small.
LISTOPS_BLOCK = dict(
    d_state=4,
    kernel={"name": "dplr", "init_args": {"l_max": 32}},
    two_sided=True,
    second_branch=True,
    norm="batch",
    prenorm=False,
    mask_output_padding=False,
)


def listops_like(**block) -> PSpikeSSM:
    torch.manual_seed(0)
    settings = BlockSettings(**{**LISTOPS_BLOCK, **block})
    return PSpikeSSM(num_classes=3, vocab_size=7, d_model=8, n_layers=2, block=settings)


def test_bucket_length_picks_the_smallest_bucket_that_holds_the_batch():
    assert bucket_length(13, None) == 13
    assert bucket_length(13, [8, 16, 32]) == 16
    assert bucket_length(16, [8, 16, 32]) == 16
    with pytest.raises(ValueError, match="length_buckets=.*add a bucket of at least 40"):
        bucket_length(40, [8, 16, 32])


def test_pad_collate_pads_to_the_bucket_and_keeps_the_lengths():
    items = [(torch.tensor([1, 2, 3]), 0), (torch.tensor([4, 5]), 1)]
    inputs, lengths, targets = pad_collate(items, length_buckets=[4, 8])
    assert inputs.shape == (2, 4)
    assert inputs.tolist() == [[1, 2, 3, 0], [4, 5, 0, 0]]
    assert lengths.tolist() == [3, 2] and targets.tolist() == [0, 1]


def pad_uniforms(uniforms, extra: int):
    """Each uniform tensor (B, H, L) with ``extra`` more steps of fresh draws after L."""
    return [
        [BranchUniforms(*(F.pad(z, (0, extra), value=0.5) for z in branch)) for branch in block]
        for block in uniforms
    ]


@pytest.mark.parametrize("prenorm", [False, True])
def test_padding_to_a_bucket_changes_no_result(prenorm):
    """Same logits, loss, gradients and BatchNorm running statistics for the same spikes,
    whether the batch is padded to its longest sequence or further (training mode)."""
    lengths = torch.tensor([20, 13, 17])
    tokens = torch.randint(1, 7, (3, 20), generator=torch.Generator().manual_seed(1))
    tokens[1, 13:] = 0
    tokens[2, 17:] = 0
    targets = torch.tensor([0, 2, 1])
    results = []
    for extra in (0, 12):  # 20 steps (the longest sequence) and a bucket of 32
        model = listops_like(prenorm=prenorm).train()
        uniforms = model.draw_uniforms(3, 20, torch.Generator().manual_seed(2))
        logits = model(F.pad(tokens, (0, extra)), lengths, pad_uniforms(uniforms, extra))
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        stats = {n: b.clone() for n, b in model.named_buffers() if "running" in n}
        results.append((logits.detach(), grads, stats))
    (logits0, grads0, stats0), (logits1, grads1, stats1) = results
    torch.testing.assert_close(logits1, logits0, rtol=1e-4, atol=1e-5)
    assert grads0.keys() == grads1.keys() and len(grads0) > 10
    for name in grads0:
        torch.testing.assert_close(grads1[name], grads0[name], rtol=1e-3, atol=1e-5, msg=name)
    assert len(stats0) == (6 if prenorm else 4)  # mean and var of every BatchNorm
    for name in stats0:
        torch.testing.assert_close(stats1[name], stats0[name], rtol=1e-4, atol=1e-6, msg=name)


def test_fused_adamw_is_not_used_where_lightning_would_refuse_to_clip():
    from types import SimpleNamespace as Trainer

    assert fused_update_allowed(None)
    assert fused_update_allowed(Trainer(gradient_clip_val=1.0, precision="32-true"))
    assert fused_update_allowed(Trainer(gradient_clip_val=None, precision="bf16-mixed"))
    assert not fused_update_allowed(Trainer(gradient_clip_val=1.0, precision="bf16-mixed"))
    assert not fused_update_allowed(Trainer(gradient_clip_val=0.5, precision="16-mixed"))


def test_build_adamw_is_fused_only_on_gpus():
    model = listops_like()
    optimizer = build_adamw(model, 1e-3, 0.01)
    assert not optimizer.defaults["fused"]
    assert len(optimizer.param_groups) > 1  # the SSM and no-decay groups stay


@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_joint_convolution_of_the_branches_equals_one_per_branch(two_sided, training):
    """One FFT convolution over both branches' 2H channels (the GPU path of
    JointSSMConvolution) gives what each branch's own SSM gives, values and gradients, in
    training and in cached evaluation."""
    torch.manual_seed(0)
    settings = BlockSettings(d_state=4, two_sided=two_sided)
    ssms = [SSMConvolution(8, settings).train(training) for _ in range(2)]
    generator = torch.Generator().manual_seed(1)
    xs = [torch.randn(3, 8, 24, generator=generator, requires_grad=True) for _ in ssms]
    weights = torch.randn(3, 16, 24, generator=generator)
    outputs = []
    for join in (True, False):
        with torch.set_grad_enabled(training):
            if join:
                ys = list(stacked_convolution(ssms, torch.cat(xs, dim=1)).split(8, dim=1))
            else:
                ys = [ssm(x) for ssm, x in zip(ssms, xs, strict=True)]
        leaves = [*xs, *(p for ssm in ssms for p in ssm.parameters())]
        grads = []
        if training:
            grads = torch.autograd.grad((torch.cat(ys, dim=1) * weights).sum(), leaves)
        outputs.append(([y.detach() for y in ys], grads))
    (y_joint, g_joint), (y_apart, g_apart) = outputs
    for joint, apart in zip([*y_joint, *g_joint], [*y_apart, *g_apart], strict=True):
        torch.testing.assert_close(joint, apart, rtol=1e-5, atol=1e-6)
    assert len(g_joint) == (2 + 2 * len(list(ssms[0].parameters())) if training else 0)


@pytest.mark.slow
def test_gpu_speed_script_runs_on_cpu_at_tiny_sizes():
    """``python -m benchmarks.speed.gpu`` (what benchmarks/gpu/speed.sh runs) end to end, tiny, on CPU
    with a cheap compile backend: every side of both tasks reports a step time, the eager side
    its traffic and launching ops."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "benchmarks.speed.gpu", "--device", "cpu", "--quick"]
    command += ["--no-write"]
    command += ["--cases", "listops_b8", "pathx_b2", "--repeats", "1", "--warmup", "1"]
    command += ["--compile-backend", "aot_eager", "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
    run = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    values = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    for case in ("listops_b8", "pathx_b2"):
        for side in ("eager", "compiled"):
            assert float(values[f"{case}_{side}_s_per_step"]) > 0
        assert float(values[f"{case}_eager_traffic_gb"]) > 0
        assert int(values[f"{case}_eager_ops"]) > 0  # launching ops, beside the step time
        assert float(values[f"{case}_compiled_compile_s"]) >= 0


def test_data_module_pads_batches_to_its_length_buckets(listops_dir):
    from pspikessm.data import ListOpsDataModule

    data = ListOpsDataModule(data_dir=listops_dir, batch_size=4, length_buckets=[4096, 48])
    data.setup("fit")
    widths = {inputs.shape[1] for inputs, lengths, _ in data.train_dataloader()}
    longest = int(data.datasets["train"].lengths().max())
    assert widths <= {48, 4096} and (4096 in widths) == (longest > 48)
    plain = ListOpsDataModule(data_dir=listops_dir, batch_size=4)
    plain.setup("fit")
    assert max(inputs.shape[1] for inputs, _, _ in plain.train_dataloader()) == longest


def test_compile_option_takes_a_mode_and_names_the_choices():
    from pspikessm.module import SequenceClassifier

    SequenceClassifier(listops_like(), num_classes=3, compile="reduce-overhead")
    with pytest.raises(ValueError, match="model.compile='fast'.*reduce-overhead"):
        SequenceClassifier(listops_like(), num_classes=3, compile="fast")


def test_a_run_resumes_across_fused_and_for_each_adamw():
    """A checkpoint of a GPU run (fused AdamW) resumes on CPU (for-each) and back: how the
    update is computed is no optimiser setting; the learning rate still is."""
    from pspikessm.runtime.resume_checks import check_optimizer

    group = {"lr": 1e-3, "weight_decay": 0.01, "betas": (0.9, 0.999)}
    on_gpu = {"optimizer0": {"class": "AdamW", "groups": {"0": {**group, "fused": True}}}}
    on_cpu = {
        "optimizer0": {
            "class": "AdamW",
            "groups": {"0": {**group, "fused": None, "foreach": None, "capturable": False}},
        }
    }
    assert check_optimizer(on_gpu, on_cpu, reset=False) is False
    assert check_optimizer(on_cpu, on_gpu, reset=False) is False
    other_rate = {"optimizer0": {"class": "AdamW", "groups": {"0": {**group, "lr": 2e-3}}}}
    with pytest.raises(ValueError, match="lr"):
        check_optimizer(on_gpu, other_rate, reset=False)
