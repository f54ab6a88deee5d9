"""Pictures of one example's spikes: rasters (neurons × time steps) and the active-neuron ratio.

Each takes the spikes of one example over its valid steps, (H, L) per spike source, and returns
a matplotlib figure; the firing-rate monitor writes them to TensorBoard and the notebook reuses
them. Spikes are drawn black on white; values strictly between 0 and 1 are firing
probabilities (samplers in ``eval_mode="expected"``), drawn as grey levels with a colour bar.
The active-neuron ratio over time is the paper's Figure 1c. Figures are built without pyplot,
so no GUI backend is touched during training and a notebook's backend is left alone.
"""

from __future__ import annotations

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

PROBABILITY_LABEL = "firing probability"


def is_binary(spikes: torch.Tensor) -> bool:
    """True when every value of ``spikes`` is 0 or 1 (spikes, not probabilities)."""
    return bool(((spikes == 0) | (spikes == 1)).all())


def _draw_raster(ax: Axes, spikes: torch.Tensor) -> AxesImage:
    """``spikes`` (H, L) as an image: neuron i on row i, time step t in column t."""
    image = ax.imshow(
        spikes.float().cpu().numpy(),
        aspect="auto",
        cmap="Greys",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return image


def raster_figure(spikes: torch.Tensor, title: str = "") -> Figure:
    """Spike raster of one source, ``spikes`` (H, L): time steps across, neurons down."""
    fig = Figure(figsize=(6, 3), dpi=80, layout="constrained")
    ax = fig.subplots()
    image = _draw_raster(ax, spikes)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.set_title(title, fontsize=9)
    if not is_binary(spikes):
        fig.colorbar(image, ax=ax, label=PROBABILITY_LABEL)
    return fig


def layers_raster_figure(sources: dict[str, torch.Tensor], title: str = "") -> Figure:
    """Rasters of every source of one example in one figure, one row per entry of ``sources``
    (name → (H, L), in order), sharing the time axis; row heights follow the neuron counts."""
    names = list(sources)
    fig = Figure(figsize=(7, min(1.0 + 1.1 * len(names), 16.0)), dpi=80, layout="constrained")
    axes = fig.subplots(
        len(names),
        1,
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [max(sources[n].shape[0], 1) for n in names]},
    )[:, 0]
    for ax, name in zip(axes, names, strict=True):
        image = _draw_raster(ax, sources[name])
        ax.set_ylabel(f"{name}\nneuron", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("time step")
    if not all(is_binary(spikes) for spikes in sources.values()):
        fig.colorbar(image, ax=list(axes), label=PROBABILITY_LABEL)
    fig.suptitle(title, fontsize=9)
    return fig


def active_ratio(spikes: torch.Tensor) -> torch.Tensor:
    """Fraction of the H neurons active at each step of ``spikes`` (H, L) → (L,)."""
    return spikes.float().mean(dim=0)


def active_ratio_figure(layers: dict[str, torch.Tensor], title: str = "") -> Figure:
    """The active-neuron ratio over time, one line per entry of ``layers`` (name → (H, L))."""
    fig = Figure(figsize=(6, 3), dpi=80, layout="constrained")
    ax = fig.subplots()
    length = 0
    for name, spikes in layers.items():
        ax.plot(active_ratio(spikes).cpu().numpy(), label=name, linewidth=1)
        length = max(length, spikes.shape[-1])
    ax.set_xlim(-0.5, length - 0.5)  # the columns of the raster of the same example
    ax.set_xlabel("time step")
    ax.set_ylabel("fraction of neurons active")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title, fontsize=9)
    if len(layers) > 1:
        ax.legend(fontsize=7, loc="upper right")
    return fig
