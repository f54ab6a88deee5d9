"""SSM kernels: what gives each SSM neuron its convolution kernel, chosen by name or class path.

``block.kernel`` picks the class; built-in names: ``dplr`` (:mod:`.dplr`, S4: HiPPO-LegS,
bilinear, Cauchy) and ``diag`` (:mod:`.diagonal`, S4D: Vandermonde, zero-order hold). Any other
value is an import path (``mypackage.kernels.MyKernel``; docs/forking.md).
"""

from __future__ import annotations

from torch import nn

from pspikessm.models.settings import BlockSettings, resolve_class

#: Built-in SSM kernels by name; ``block.kernel`` may also be any class's import path.
KERNELS = {
    "diag": "pspikessm.models.kernels.diagonal.DiagonalSSMKernel",
    "dplr": "pspikessm.models.kernels.dplr.DPLRSSMKernel",
}


def build_kernel(d_model: int, channels: int, settings: BlockSettings) -> nn.Module:
    """The kernel ``settings.kernel`` built as ``cls(d_model, channels, settings, **kernel_args)``.

    A kernel is an ``nn.Module`` whose ``forward(length)`` returns the (channels, H, length)
    convolution kernels; ``recurrence()`` (optional) gives its step-by-step form.
    """
    cls = resolve_class(settings.kernel, KERNELS, "block.kernel")
    try:
        return cls(d_model, channels, settings, **settings.kernel_args)
    except TypeError as error:  # an option of another kernel family
        raise ValueError(
            f"block.kernel_args={settings.kernel_args} do not fit kernel {settings.kernel!r} "
            f"({cls.__module__}.{cls.__qualname__}): {error}"
        ) from None
