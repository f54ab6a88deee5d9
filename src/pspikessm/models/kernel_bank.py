"""Every SSM kernel of a network in one batched computation per step.

A kernel depends on parameters only, never on the batch, so the kernels of all layers and
branches can be computed together at the start of the forward. For the built-in kernels
(``stacked`` on their class) the G = layers × branches kernels are one computation over G·H
neurons: on a GPU, where an eager step waits for kernel launches, G times fewer launches
(``python -m benchmarks.speed.ops``). The parameters stay where they are, in each branch's
kernel (checkpoints, optimiser groups and step mode see no change); the bank reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pspikessm.models.convolution import (
    JointSSMConvolution,
    SSMConvolution,
    fast_fft_size,
    uses_cached_spectra,
    with_skips,
)
from pspikessm.models.kernels.parameters import stack_parameters


class KernelBank:
    """The skip kernels of every block's SSMs, computed at once.

    Args:
        joints: each block's :class:`~pspikessm.models.convolution.JointSSMConvolution`.

    Call with the sequence length L: per block, its branches' kernels with the D skip folded
    in, stacked over the branches (ΣH, K) with K = L causal or the FFT size two-sided (what
    :meth:`SSMConvolution.skip_kernel <pspikessm.models.convolution.SSMConvolution.skip_kernel>`
    gives each); or None per block where the blocks compute their own: kernels of a class of
    the user's (no ``stacked``), kernels of different settings, and in evaluation without
    gradients (each SSM's cached spectrum is cheaper).

    Not an ``nn.Module``: it owns nothing and is not saved; it reads the branches' parameters
    at every call, so ``.to()``, loading and optimiser steps reach it.
    """

    def __init__(self, joints: Sequence[JointSSMConvolution]) -> None:
        self.joints = tuple(joints)

    def ssms(self) -> list[SSMConvolution]:
        return [ssm for joint in self.joints for ssm in joint.branch_ssms]

    def stackable(self) -> bool:
        """Whether every SSM's kernel is of one class that stacks, with one stacking key."""
        ssms = self.ssms()
        kinds = {type(ssm.kernel) for ssm in ssms}
        if len(kinds) != 1 or not stacks(next(iter(kinds))):
            return False
        keys = {(ssm.kernel.stack_key(), ssm.two_sided, ssm.d.dtype) for ssm in ssms}
        return len(keys) == 1

    def __call__(self, length: int) -> list[torch.Tensor | None]:
        ssms = self.ssms()
        if uses_cached_spectra(ssms[0]) or not self.stackable():
            return [None] * len(self.joints)
        d = ssms[0].d
        with torch.autocast(d.device.type, enabled=False):  # Ā^l over thousands of steps
            kernels = type(ssms[0].kernel).stacked([ssm.kernel for ssm in ssms], length)
            d = stack_parameters([ssm.d for ssm in ssms])  # (G H)
            skips = with_skips(kernels, d, fast_fft_size(2 * length))  # (G H K)
        per_block = [len(joint.branch_ssms) for joint in self.joints]
        return [part.flatten(0, 1) for part in skips.split(per_block)]  # (bH K) views


def stacks(kind: type) -> bool:
    """Whether kernels of class ``kind`` can be computed together: the class that defines its
    ``forward`` also defines ``stacked(kernels, length)`` (G, C, H, L) and ``stack_key()``. A
    subclass that overrides ``forward`` alone (a user's variant of a built-in kernel) does not
    stack: the inherited ``stacked`` would compute the parent's kernel."""

    def owner(name: str) -> type | None:
        return next((c for c in kind.__mro__ if name in vars(c)), None)

    return owner("forward") is owner("stacked") is owner("stack_key") is not None
