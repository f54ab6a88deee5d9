"""Record what ``tests/benchmarks/test_parity_pins.py`` pins: the authors' initial statistics on a fixed batch.

    pip install einops omegaconf
    python -m benchmarks.parity.pins --authors /path/to/PSpikeSSMs

This project's ListOps model is built from ``configs/lra/listops.yaml`` with seed 0; its
initial weights are copied into the authors' model (``parity_transfer.py``), and the authors'
model runs the fixed batch of :func:`pin_batch` in training mode with ``torch.manual_seed(0)``
before the forward (:func:`initial_statistics`). It prints, as a Python dict
to paste into the test, the authors' initial loss, per layer and branch the firing rates of
the input and output spikes over the valid steps, the output rates over the padded steps, and
the mean and std of the membrane potential u over the valid steps; then this project's model's
values for comparison. With equal weights the two models differ only in their code, so the
test holds this project's model to the authors' computation, not to a random draw.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from pspikessm.data.listops_generator import ListOpsGeneratorConfig, write_listops

#: The pinned batch: all 64 validation sequences of this generated set (lengths 20-200).
PIN_DATA = ListOpsGeneratorConfig(
    num_train=256, num_val=64, num_test=8, min_length=20, max_length=200, max_depth=6, seed=0
)
PIN_SEED = 0


def pin_batch(data_dir: Path):
    """Write the pinned set to ``data_dir``; returns (ParityData, (inputs, lengths, targets))."""
    from benchmarks.parity.sides import ParityData

    write_listops(data_dir, PIN_DATA)
    data = ParityData(data_dir)
    return data, data.collate(data.val, range(len(data.val)))


def pinned(stats: dict[str, object]) -> dict[str, float]:
    """The statistics the test pins, from a probe's ``stats`` and the loss."""
    keep = {}
    for key, value in stats.items():
        site = key.rsplit("/", 1)[-1]
        if (
            key == "loss"
            or site.endswith((".rate", ".mean", ".std"))
            or site.startswith("output")
            and site.endswith(".rate_pad")
        ):
            keep[key] = round(float(value), 5)
    return keep


def initial_statistics(side, batch) -> dict[str, float]:
    """The pinned statistics of ``side`` (a ``parity_setup.Side``) on ``batch``: one forward in
    training mode with ``torch.manual_seed(PIN_SEED)`` before it, no gradients; the model's
    BatchNorm buffers are left as they were."""
    from benchmarks.parity.probes import AuthorsProbe, OursProbe

    inputs, lengths, targets = batch
    backbone = side.model.backbone
    probe = AuthorsProbe(backbone) if side.name == "authors" else OursProbe(backbone)
    buffers = {name: b.clone() for name, b in side.model.named_buffers()}
    side.model.train()
    torch.manual_seed(PIN_SEED)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(side.forward(inputs, lengths), targets)
        for name, b in side.model.named_buffers():
            b.copy_(buffers[name])
    probe.remove()
    return pinned({"loss": float(loss), **probe.stats(lengths)})


def record(authors_path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """(the authors' pinned statistics with our seed-0 weights, ours)."""
    from benchmarks.parity.run import authors_or_skip
    from benchmarks.parity.sides import Schedule, authors_side, ours_side
    from benchmarks.parity.transfer import copy_weights

    authors = authors_or_skip(authors_path)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data, batch = pin_batch(Path(tmp))
        ours = ours_side(Path(tmp), PIN_SEED, Schedule(steps=1))
        theirs = authors_side(data, authors, PIN_SEED, Schedule(steps=1), l_max=2048)
        n_layers = ours.model.backbone.settings["n_layers"]
        copy_weights(theirs.model, ours.model.backbone, data.to_authors, n_layers, "authors")
        return initial_statistics(theirs, batch), initial_statistics(ours, batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors", type=Path, help="checkout of NeuroCompLab-psu/PSpikeSSMs")
    args = parser.parse_args(argv)
    theirs, ours = record(args.authors)
    print("AUTHORS = {")
    for key, value in theirs.items():
        print(f"    {key!r}: {value!r},")
    print("}")
    for key, value in theirs.items():
        print(f"# {key}: authors {value:.5f} ours {ours.get(key, float('nan')):.5f}")


if __name__ == "__main__":
    sys.exit(main())
