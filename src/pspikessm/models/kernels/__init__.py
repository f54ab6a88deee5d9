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


#: What a kernel is, for the errors that name a kernel of another interface.
KERNEL_INTERFACE = (
    "a kernel is an nn.Module built as cls(d_model, channels, settings, **init_args) "
    "whose forward(length) returns (channels, d_model, length) kernels (docs/forking.md)"
)


def build_kernel(d_model: int, channels: int, settings: BlockSettings) -> nn.Module:
    """The kernel ``settings.kernel`` built as ``cls(d_model, channels, settings, **init_args)``.

    A kernel is an ``nn.Module`` whose ``forward(length)`` returns the (channels, H, length)
    convolution kernels; ``recurrence()`` (optional) gives its step-by-step form. A kernel class
    of the user's is tried once here on a 2-step kernel, so a class of another interface fails
    at construction, naming the option. The built-in ones are not: their shapes are tested, and
    a DPLR kernel with ``l_max`` costs its full ``l_max`` kernel whatever the length asked for.
    Every kernel is checked again where it is used
    (:meth:`~pspikessm.models.convolution.SSMConvolution.kernels`).
    """
    kernel = build_choice(settings.kernel, KERNELS, "block.kernel", d_model, channels, settings)
    kind = type(kernel)
    if not isinstance(kernel, nn.Module):
        raise ValueError(
            f"block.kernel={settings.kernel!r} ({kind.__module__}.{kind.__qualname__}) is not "
            f"an nn.Module: {KERNEL_INTERFACE}"
        )
    if f"{kind.__module__}.{kind.__qualname__}" not in KERNELS.values():
        try:
            with torch.no_grad():
                shape = tuple(kernel(2).shape)
        except Exception as error:  # any failure means a class of another interface
            shape = f"an error ({type(error).__name__}: {error})"
        if shape != (channels, d_model, 2):
            raise ValueError(
                f"block.kernel={settings.kernel!r} ({kind.__module__}.{kind.__qualname__}): "
                f"forward(2) gave {shape}, not {(channels, d_model, 2)}. Expected: "
                f"{KERNEL_INTERFACE}"
            )
    return kernel
