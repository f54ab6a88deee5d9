"""SSM kernels: what gives each SSM neuron its convolution kernel, chosen by name or class path.

``block.kernel`` picks the class; built-in names: ``dplr`` (:mod:`.dplr`, S4: HiPPO-LegS,
bilinear, Cauchy) and ``diag`` (:mod:`.diagonal`, S4D: Vandermonde, zero-order hold). Any other
value is an import path (``mypackage.kernels.MyKernel``; docs/forking.md).
"""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.settings import BlockSettings, build_choice

#: Built-in SSM kernels by name; ``block.kernel`` may also be any class's import path.
KERNELS = {
    "diag": "pspikessm.models.kernels.diagonal.DiagonalSSMKernel",
    "dplr": "pspikessm.models.kernels.dplr.DPLRSSMKernel",
}


def build_kernel(d_model: int, channels: int, settings: BlockSettings) -> nn.Module:
    """The kernel ``settings.kernel`` built as ``cls(d_model, channels, settings, **init_args)``.

    A kernel is an ``nn.Module`` whose ``forward(length)`` returns the (channels, H, length)
    convolution kernels; ``recurrence()`` (optional) gives its step-by-step form.
    """
    kernel = build_choice(settings.kernel, KERNELS, "block.kernel", d_model, channels, settings)
    # A kernel of another interface fails here, naming the option, not deep inside a forward.
    name = (
        f"block.kernel={settings.kernel!r} ({type(kernel).__module__}.{type(kernel).__qualname__})"
    )
    interface = (
        "a kernel is an nn.Module built as cls(d_model, channels, settings, **init_args) "
        "whose forward(length) returns (channels, d_model, length) kernels (docs/forking.md)"
    )
    if not isinstance(kernel, nn.Module):
        raise ValueError(f"{name} is not an nn.Module: {interface}")
    with torch.no_grad():
        try:
            shape = tuple(kernel(2).shape)
        except Exception as error:
            raise ValueError(
                f"{name}: forward(2) failed ({error!r}). Expected: {interface}"
            ) from None
    if shape != (channels, d_model, 2):
        raise ValueError(f"{name}: forward(2) gave shape {shape}, not {(channels, d_model, 2)}")
    return kernel
