"""Forward + backward time of one P-SpikeSSM block against one LIF-SSM block.

The two blocks are identical (diagonal SSM kernel, SpikeMixer, BatchNorm) except for the
neuron: P-SpikeSSM draws all spikes at once, LIF-SSM integrates and fires step by step over
time (the loop as users write it: tensor operations over (B, H) per step). Prints one
``name=value`` line per measurement: milliseconds per forward+backward and the ratio
``lif_speedup_L<L>`` (LIF time / P-SpikeSSM time).

    python benchmarks/lif.py                              # H=128, N=64, batch 8, all lengths
    python benchmarks/lif.py --lengths 256 1024 --repeats 5 --device cuda
    python benchmarks/lif.py --threads 1    # a shared CPU: OpenMP threads that wait on
                                            # each other distort both timings
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from pspikessm.models.block import PSpikeSSMBlock


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_block(block: PSpikeSSMBlock, x: torch.Tensor, repeats: int) -> float:
    """Median milliseconds of ``block(x).sum().backward()`` after one warm-up run."""
    times = []
    for i in range(repeats + 1):
        block.zero_grad(set_to_none=True)
        sync(x.device)
        start = time.perf_counter()
        block(x).sum().backward()
        sync(x.device)
        if i > 0:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--d-state", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    blocks = {
        neuron: PSpikeSSMBlock(args.d_model, args.d_state, neuron=neuron).to(device)
        for neuron in ("pspike", "lif")
    }
    print(f"device={torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    print(f"cpu_threads={torch.get_num_threads()}")
    print(f"cpu_count={os.cpu_count()}")
    print(f"platform={platform.platform()}")
    print(f"torch={torch.__version__}")
    print(f"batch={args.batch}")
    print(f"d_model={args.d_model}")
    print(f"d_state={args.d_state}")
    for length in args.lengths:
        x = torch.randn(args.batch, args.d_model, length, device=device)
        ms = {name: time_block(block, x, args.repeats) for name, block in blocks.items()}
        print(f"pspike_ms_L{length}={ms['pspike']:.2f}", flush=True)
        print(f"lif_ms_L{length}={ms['lif']:.2f}", flush=True)
        print(f"lif_speedup_L{length}={ms['lif'] / ms['pspike']:.1f}", flush=True)


if __name__ == "__main__":
    main()
