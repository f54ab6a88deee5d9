"""Forward+backward of one P-SpikeSSM block against the FFT floor, at several lengths.

The FFT floor is the forward+backward (autograd) of a bare FFT convolution
``irfft(rfft(x, n=2L) * rfft(k, n=2L))[..., :L]`` of the same (B, H, L) input with a learnable
kernel k (H, L): the work no FFT-based SSM layer can avoid. Block and floor are timed
round-robin in the same run, so their ratio is robust to background load.

    python -m benchmarks.speed.block                       # H=128, N=64, B=8, L=1024,4096,16384
    python -m benchmarks.speed.block --lengths 1024 4096 --repeats 5

Prints ``name=value`` lines, writes ``benchmarks/results/block_<device>.json`` and the
``block`` section of ``benchmarks/RESULTS.md``. On a GPU the same runs use CUDA events and are
repeated under ``bf16-mixed`` (autocast to bfloat16).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from dataclasses import replace

import torch

from benchmarks.harness import (
    command_line,
    default_device,
    emit,
    machine,
    machine_line,
    median,
    set_threads,
    time_interleaved,
    write_results,
)
from pspikessm.models import BlockSettings, PSpikeSSMBlock


def block_step(block: PSpikeSSMBlock, x: torch.Tensor, grad: torch.Tensor, autocast) -> Callable:
    def step() -> None:
        block.zero_grad(set_to_none=True)
        x.grad = None
        with autocast():
            y = block(x)
        y.backward(grad)

    return step


def fft_floor_step(x: torch.Tensor, kernel: torch.Tensor, grad: torch.Tensor, autocast) -> Callable:
    length = x.shape[-1]

    def step() -> None:
        kernel.grad = None
        x.grad = None
        with autocast():
            x_f = torch.fft.rfft(x, n=2 * length)
            k_f = torch.fft.rfft(kernel, n=2 * length)
            y = torch.fft.irfft(x_f * k_f, n=2 * length)[..., :length]
        y.backward(grad)

    return step


def measure(args: argparse.Namespace, device: torch.device, precision: str) -> dict[str, float]:
    torch.manual_seed(0)
    if precision == "bf16-mixed":

        def autocast():
            return torch.autocast(device.type, dtype=torch.bfloat16)

    else:
        autocast = contextlib.nullcontext
    settings = BlockSettings(d_state=args.d_state, two_sided=not args.causal, norm="batch")
    if args.block == "fast":
        settings = replace(settings, kernel="diag", second_branch=False)
    block = PSpikeSSMBlock(args.d_model, settings).to(device)
    block.train()
    results: dict[str, float] = {}
    tag = "" if precision == "32" else "_bf16"
    for length in args.lengths:
        shape = (args.batch, args.d_model, length)
        x = torch.randn(shape, device=device, requires_grad=True)
        grad = torch.randn(shape, device=device)
        kernel = torch.randn(args.d_model, length, device=device, requires_grad=True)
        times = time_interleaved(
            {
                "block": block_step(block, x, grad, autocast),
                "floor": fft_floor_step(x, kernel, grad, autocast),
            },
            device,
            repeats=args.repeats,
            warmup=args.warmup,
        )
        t_block, t_floor = times["block"], times["floor"]
        ratios = [b / f for b, f in zip(t_block["wall"], t_floor["wall"], strict=True)]
        results[f"block{tag}_s_L{length}"] = median(t_block["wall"])
        results[f"fft_floor{tag}_s_L{length}"] = median(t_floor["wall"])
        results[f"block_vs_fft_floor{tag}_L{length}"] = median(ratios)
        if device.type == "cpu":
            ratios = [b / f for b, f in zip(t_block["cpu"], t_floor["cpu"], strict=True)]
            results[f"block_cpu_s_L{length}"] = median(t_block["cpu"])
            results[f"fft_floor_cpu_s_L{length}"] = median(t_floor["cpu"])
            results[f"block_vs_fft_floor_cpu_L{length}"] = median(ratios)
        emit({k: v for k, v in results.items() if k.endswith(f"_L{length}")})
    first, last = min(args.lengths), max(args.lengths)
    if first != last:
        growth = {
            f"growth{tag}_{last}_over_{first}": results[f"block{tag}_s_L{last}"]
            / results[f"block{tag}_s_L{first}"]
        }
        if device.type == "cpu":
            growth[f"growth_cpu_{last}_over_{first}"] = (
                results[f"block_cpu_s_L{last}"] / results[f"block_cpu_s_L{first}"]
            )
        results.update(growth)
        emit(growth)
    return results


def table(args: argparse.Namespace, results: dict[str, float], precisions: list[str]) -> str:
    rows = [
        "| precision | L | block fwd+bwd (ms) | FFT floor fwd+bwd (ms) | block / floor |",
        "|---|---|---|---|---|",
    ]
    for precision in precisions:
        tag = "" if precision == "32" else "_bf16"
        clocks = [("wall", tag)] + (
            [("CPU", "_cpu")]
            if "block_cpu_s_L" + str(args.lengths[0]) in results and not tag
            else []
        )
        for clock, key in clocks:
            for length in args.lengths:
                rows.append(
                    f"| {precision}, {clock} | {length} | "
                    f"{1e3 * results[f'block{key}_s_L{length}']:.1f} | "
                    f"{1e3 * results[f'fft_floor{key}_s_L{length}']:.1f} | "
                    f"{results[f'block_vs_fft_floor{key}_L{length}']:.2f} |"
                )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument(
        "--causal", action="store_true", help="one-sided kernel (default two-sided)"
    )
    parser.add_argument(
        "--block",
        choices=("fast", "paper"),
        default="fast",
        help="fast: S4D kernel, one branch; paper: S4 DPLR kernel, two branches",
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    args = parser.parse_args()

    set_threads(args.threads)
    device = default_device()
    info = machine()
    emit({"device": info["device"], "nproc": info["nproc"], "loadavg": info["loadavg"]})
    precisions = ["32"] + (["bf16-mixed"] if device.type == "cuda" else [])
    results: dict[str, float] = {}
    for precision in precisions:
        results.update(measure(args, device, precision))
    info["loadavg_end"] = machine()["loadavg"]
    emit({"loadavg_end": info["loadavg_end"]})
    if args.no_write:
        return
    kind = "causal" if args.causal else "two-sided (bidirectional)"
    md = (
        f"## Block vs FFT floor (`{command_line()}`)\n\n"
        f"One PSpikeSSMBlock (H={args.d_model}, N={args.d_state}, B={args.batch}, {kind} "
        f"kernel, BatchNorm, training mode) forward+backward, against the forward+backward of "
        f"a bare FFT convolution of the same shape; median of {args.repeats} interleaved "
        f"repeats after {args.warmup} warm-up rounds. Wall: elapsed time; CPU: the process's "
        f"CPU time (all threads), less distorted by other processes on a shared machine.\n{machine_line(info)} Load average at "
        f"end: {' '.join(info['loadavg_end'] or [])}.\n\n"
        + table(args, results, precisions)
        + "\n\n"
        + "\n".join(f"- `{k}={v:.3g}`" for k, v in results.items() if k.startswith("growth"))
    )
    write_results(
        "block" + (f"_threads{args.threads}" if args.threads else ""),
        {"machine": info, "args": vars(args), "results": results},
        md,
    )


if __name__ == "__main__":
    main()
