"""Pictures of one example's spikes: a raster (neurons × time) and the active-neuron ratio.

Both take the spikes of one layer for one example, (H, L) over its valid steps, and return a
matplotlib figure; the firing-rate monitor writes them to TensorBoard and the notebook reuses
them. The active-neuron ratio over time is the paper's Figure 1c. Figures are built without
pyplot, so no GUI backend is touched during training and a notebook's backend is left alone.
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def raster_figure(spikes: torch.Tensor, title: str = "") -> Figure:
    """Spike raster of ``spikes`` (H, L): black where a neuron fired (grey levels for
    probabilities)."""
    fig = Figure(figsize=(6, 3), dpi=80)
    ax = fig.subplots()
    ax.imshow(
        spikes.float().cpu().numpy(),
        aspect="auto",
        cmap="Greys",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def active_ratio(spikes: torch.Tensor) -> torch.Tensor:
    """Fraction of the H neurons active at each step of ``spikes`` (H, L) → (L,)."""
    return spikes.float().mean(dim=0)


def active_ratio_figure(layers: dict[str, torch.Tensor], title: str = "") -> Figure:
    """The active-neuron ratio over time, one line per entry of ``layers`` (name → (H, L))."""
    fig = Figure(figsize=(6, 3), dpi=80)
    ax = fig.subplots()
    for name, spikes in layers.items():
        ax.plot(active_ratio(spikes).cpu().numpy(), label=name, linewidth=1)
    ax.set_xlabel("time step")
    ax.set_ylabel("active neurons")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title, fontsize=9)
    if len(layers) > 1:
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
