"""The pictures of one fixed validation example: which example, its spikes, and their figures."""

from __future__ import annotations

from collections import defaultdict

import torch

from pspikessm.callbacks.sparsity_plots import (
    active_ratio_figure,
    layers_raster_figure,
    raster_figure,
)
from pspikessm.callbacks.spike_sources import layer_of

#: Tag of the raster with every source of the example in one figure.
ALL_LAYERS = "all_layers"


class ExamplePictures:
    """Keeps the spikes of one example of a batch, per spike source, and draws them.

    The example is ``index`` of the batch the spiking layers see, or, when ``index`` is None,
    its longest sequence (the first of equal ones), so that the pictures show as many time
    steps as the batch offers. Every source of one forward pass sees the same mask, hence
    picks the same example. (Pair tasks stack both documents of each pair along the batch:
    first documents, then second ones; the example is then one document.)

    Args:
        index: position of the example in the batch, or None for the longest.
    """

    def __init__(self, index: int | None = None) -> None:
        if index is not None and index < 0:
            raise ValueError(f"example_index must be >= 0 or None (the longest), got {index}")
        self.index = index
        self.spikes: dict[str, torch.Tensor] = {}  # source name → (H, L) over valid steps
        self.chosen: tuple[int, int] | None = None  # (position in the batch, valid steps)

    def capture(self, name: str, spikes: torch.Tensor, mask: torch.Tensor | None) -> None:
        """Keep the example's spikes of source ``name``: ``spikes`` (B, H, L), ``mask``
        (B, 1, L) with 1 at valid steps, or None when every step is valid."""
        batch, _, length = spikes.shape
        if mask is None:
            lengths = torch.full((batch,), length)
        else:
            lengths = mask.detach().sum(dim=(1, 2)).expand(batch).round().long().cpu()  # (B)
        index = int(lengths.argmax()) if self.index is None else self.index
        if index >= batch:
            raise ValueError(
                f"FiringRateMonitor(example_index={index}): the first validation batch has "
                f"only {batch} examples; choose an index below {batch}"
            )
        valid = int(lengths[index])
        self.spikes[name] = spikes[index, :, :valid].detach().float().cpu()  # (H L)
        self.chosen = (index, valid)

    def clear(self) -> None:
        """Forget the captured spikes (the choice of example stays)."""
        self.spikes.clear()

    def describe(self) -> str:
        """One line saying which example the pictures show and how long it is."""
        index, valid = self.chosen
        why = "the longest of the batch" if self.index is None else "set by example_index"
        return f"Validation example {index} of the first batch ({why}): {valid} time steps."

    def write(self, writer, step: int) -> None:
        """Write the pictures to the SummaryWriter ``writer`` at ``step`` and forget them:
        ``sparsity/val/raster/{source}``, ``sparsity/val/raster/all_layers``,
        ``sparsity/val/active_ratio/{layer}`` and the text ``sparsity/val/example``."""
        if not self.spikes:
            return
        index, valid = self.chosen
        caption = f"example {index}, {valid} steps"
        layers: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
        for name, spikes in self.spikes.items():
            figure = raster_figure(spikes, f"{name}: {caption}")
            writer.add_figure(f"sparsity/val/raster/{name}", figure, step, close=True)
            layer = layer_of(name)
            layers[layer][name.removeprefix(f"{layer}/")] = spikes
        figure = layers_raster_figure(self.spikes, f"validation {caption}")
        writer.add_figure(f"sparsity/val/raster/{ALL_LAYERS}", figure, step, close=True)
        for layer, kinds in layers.items():
            figure = active_ratio_figure(kinds, f"{layer}: {caption}")
            writer.add_figure(f"sparsity/val/active_ratio/{layer}", figure, step, close=True)
        writer.add_text("sparsity/val/example", self.describe(), step)
        self.clear()
