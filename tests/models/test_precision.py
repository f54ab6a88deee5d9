"""Mixed precision keeps the SSM kernel, FFTs and spike draws in float32; the compile switch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.models import PSpikeSSM
from pspikessm.models.convolution import SSMConvolution
from pspikessm.models.neurons.pspike import StochasticSpike
from pspikessm.models.settings import BlockSettings

ROOT = Path(__file__).resolve().parents[2]


def quick_fit_args(listops_dir: Path, tmp_path: Path) -> list[str]:
    return [
        "fit",
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.generate=null",
        "--data.init_args.batch_size=16",
        "--trainer.fast_dev_run=2",
        "--trainer.callbacks=[]",
        *fast_trainer_args(tmp_path),
        *tiny_model_args(),
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_kernel_stays_float32_under_autocast(dtype):
    torch.manual_seed(0)
    ssm = SSMConvolution(8, BlockSettings(d_state=16, two_sided=True))
    # The kernel the forward pass convolves with (D folded in, laid out for the FFT size).
    reference = ssm.skip_kernel(512, 1024)
    x = torch.rand(2, 8, 512)
    with torch.autocast("cpu", dtype=dtype):
        kernel = ssm.skip_kernel(512, 1024)
        y = ssm(x.to(dtype))
    assert kernel.dtype == torch.float32
    assert torch.equal(kernel, reference)
    # Only the output's rounding to half precision separates it from float32.
    assert torch.allclose(y.float(), ssm(x.to(dtype).float()), rtol=1e-2, atol=1e-2)


def test_fp16_autocast_trains_the_backbone():
    torch.manual_seed(0)
    block = BlockSettings(d_state=8, two_sided=True)
    model = PSpikeSSM(num_classes=10, vocab_size=20, d_model=16, n_layers=2, block=block)
    tokens = torch.randint(0, 20, (4, 300))
    with torch.autocast("cpu", dtype=torch.float16):
        loss = torch.nn.functional.cross_entropy(model(tokens), torch.arange(4))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_bf16_probabilities_spike_at_their_rate():
    torch.manual_seed(0)
    p = torch.full((1_000_000,), 0.3, dtype=torch.bfloat16)
    spikes = StochasticSpike.apply(p, None, None)
    assert spikes.dtype == torch.bfloat16
    target = float(p[0])  # 0.30078125: the probability bf16 can represent
    assert spikes.float().mean().item() == pytest.approx(target, abs=4 * math.sqrt(0.25 / 1e6))


def test_bf16_mixed_fast_dev_run_on_cpu(listops_dir, tmp_path, monkeypatch):
    # (Lightning turns 16-mixed into bf16-mixed on CPU; fp16 autocast is tested below.)
    monkeypatch.chdir(tmp_path)
    cli = cli_main([*quick_fit_args(listops_dir, tmp_path), "--trainer.precision=bf16-mixed"])
    assert not (tmp_path / "checkpoints").exists()  # a dry run leaves no last.ckpt behind
    assert cli.trainer.precision == "bf16-mixed"
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert all(p.dtype == torch.float32 for p in cli.model.parameters())


@pytest.mark.slow
def test_compile_switch_trains_and_keeps_plain_parameter_names(listops_dir, tmp_path):
    cli = cli_main([*quick_fit_args(listops_dir, tmp_path), "--model.compile=true"])
    assert cli.model.backbone._compiled_call_impl is not None
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    assert not any("_orig_mod" in name for name in cli.model.state_dict())
