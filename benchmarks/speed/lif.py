"""Forward + backward time of one P-SpikeSSM block against one LIF-SSM block.

The two blocks are identical (diagonal SSM kernel, SpikeMixer, BatchNorm) except for the
neuron: P-SpikeSSM draws all spikes at once, LIF-SSM integrates and fires step by step over
time. Three LIF loops are timed: the package's ``LIFNeuron`` (``lif``: the loop outside
autograd, in-place membrane updates, a hand-written backward through time); the same loop as
users write it with autograd recording every step over ``unbind`` (``lif_loop``,
``LIFNeuron.forward_reference``); and the loop that indexes ``current[..., t]``, whose
indexing backward writes a full-size (B, H, L) gradient per step, so its backward is
quadratic in L (``lif_indexed``, up to ``--indexed-max-length``). Prints one ``name=value``
line per measurement: milliseconds per forward+backward and the ratios ``<loop>_speedup_L<L>``
(LIF time / P-SpikeSSM time).

    python -m benchmarks.speed.lif                              # H=128, N=64, batch 8, all lengths
    python -m benchmarks.speed.lif --lengths 256 1024 --repeats 5 --device cuda
    python -m benchmarks.speed.lif --threads 1    # a shared CPU: OpenMP threads that wait on
                                            # each other distort both timings
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from pspikessm.cpu_memory import keep_freed_memory
from pspikessm.models.block import PSpikeSSMBlock
from pspikessm.models.neurons.lif import LIFNeuron
from pspikessm.models.settings import BlockSettings


class IndexedLIF(LIFNeuron):
    """:class:`LIFNeuron` with the per-step indexing most hand-written loops use."""

    def forward(self, current, mask=None, uniforms=None):
        membrane = current.new_zeros(current.shape[:2])
        spikes = []
        for t in range(current.shape[-1]):
            s, membrane = self.advance(current[..., t], membrane)
            spikes.append(s)
        out = torch.stack(spikes, dim=-1)  # (B H L)
        return out if mask is None else out * mask


def block_with(neuron: str, d_model: int, d_state: int) -> PSpikeSSMBlock:
    """One block of the fast variant (S4D kernel, one branch) with ``neuron`` at both sites:
    the blocks differ only in how spikes are made."""
    settings = BlockSettings(d_state=d_state, kernel="diag", second_branch=False, neuron=neuron)
    return PSpikeSSMBlock(d_model, settings)


class LoopLIF(LIFNeuron):
    """:class:`LIFNeuron` with autograd recording the loop (its plain reference)."""

    forward = LIFNeuron.forward_reference


def lif_block_with(neuron: type[LIFNeuron], d_model: int, d_state: int) -> PSpikeSSMBlock:
    block = block_with("lif", d_model, d_state)
    block.branches[0].input_spikes = neuron()
    block.branches[0].output_spikes = neuron()
    return block


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
    parser.add_argument(
        "--indexed-max-length",
        type=int,
        default=4096,
        help="longest L for the indexed LIF loop (its backward is quadratic in L)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    keep_freed_memory()  # as the CLI does
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    blocks = {
        neuron: block_with(neuron, args.d_model, args.d_state).to(device)
        for neuron in ("pspike", "lif")
    }
    blocks["lif_loop"] = lif_block_with(LoopLIF, args.d_model, args.d_state).to(device)
    blocks["lif_indexed"] = lif_block_with(IndexedLIF, args.d_model, args.d_state).to(device)
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
        names = [n for n in blocks if n != "lif_indexed" or length <= args.indexed_max_length]
        ms = {name: time_block(blocks[name], x, args.repeats) for name in names}
        print(f"pspike_ms_L{length}={ms['pspike']:.2f}", flush=True)
        for name in names[1:]:
            print(f"{name}_ms_L{length}={ms[name]:.2f}", flush=True)
            print(f"{name}_speedup_L{length}={ms[name] / ms['pspike']:.1f}", flush=True)


if __name__ == "__main__":
    main()
