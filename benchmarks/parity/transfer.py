"""The authors' ListOps weights in this project's model: both models with identical parameters.

With the same parameters (and BatchNorm buffers), the two models differ only in what their
code does, so any gap in the firing rates or membrane statistics on one batch is a difference
of computation, not of random initial draws. Their names → ours:

- ``encoder.weight`` → ``backbone.encoder.weight`` (rows reordered: their token ids → ours);
- ``decoder.output_transform`` → ``backbone.decoder``;
- per layer ``i``: ``inp_{a,b}`` / ``inp2_{a,b}`` → ``fuse.affines.{0,1}.{scale,shift}``,
  ``out_{a,b}`` → ``branches.0.output_affine``, ``bidirectional_linear`` → ``mixer.linear``,
  ``norm.norm`` → ``fuse.post_norm``; ``layer`` / ``reverse_layer`` (S4Block → FFTConv →
  SSMKernelDPLR) → ``branches.{0,1}.ssm``: ``D`` → ``d``, ``kernel.inv_dt`` → ``inv_dt``,
  ``A_real`` (log of −Re Λ) → ``log_w_real``, ``A_imag`` (−Im Λ: S4 stores the negated
  imaginary part) → ``w_imag`` negated, ``P`` / ``B`` / ``C`` (complex as real pairs) →
  ``p`` / ``b`` / ``c``. Their ``C`` holds the drawn C until their kernel's first forward turns
  it into S4's C̃ at ``l_max`` (``_setup_C``); ours holds C̃ from construction, so their
  kernels are set up first, and both must have the same ``l_max``.
"""

from __future__ import annotations

import torch
from torch import nn

BLOCK = {
    "inp_a": "fuse.affines.0.scale",
    "inp_b": "fuse.affines.0.shift",
    "inp2_a": "fuse.affines.1.scale",
    "inp2_b": "fuse.affines.1.shift",
    "out_a": "branches.0.output_affine.scale",
    "out_b": "branches.0.output_affine.shift",
    "bidirectional_linear.weight": "mixer.linear.weight",
    "bidirectional_linear.bias": "mixer.linear.bias",
    "norm.norm.weight": "fuse.post_norm.weight",
    "norm.norm.bias": "fuse.post_norm.bias",
    "norm.norm.running_mean": "fuse.post_norm.running_mean",
    "norm.norm.running_var": "fuse.post_norm.running_var",
}
NEGATED = ("kernel.A_imag",)
KERNEL = {
    "D": "d",
    "kernel.inv_dt": "kernel.inv_dt",
    "kernel.A_real": "kernel.log_w_real",
    "kernel.A_imag": "kernel.w_imag",
    "kernel.P": "kernel.p",
    "kernel.B": "kernel.b",
    "kernel.C": "kernel.c",
}


def weight_map(n_layers: int) -> dict[str, str]:
    """Their state-dict name → ours (``model.backbone`` of the CLI's SequenceClassifier)."""
    names = {
        "encoder.weight": "encoder.weight",
        "decoder.output_transform.weight": "decoder.weight",
        "decoder.output_transform.bias": "decoder.bias",
    }
    for i in range(n_layers):
        theirs, ours = f"backbone.layers.{i}.", f"blocks.{i}."
        names.update({theirs + t: ours + o for t, o in BLOCK.items()})
        for j, branch in enumerate(("layer", "reverse_layer")):
            for t, o in KERNEL.items():
                names[f"{theirs}{branch}.layer.{t}"] = f"{ours}branches.{j}.ssm.{o}"
    return names


@torch.no_grad()
def copy_weights(
    authors: nn.Module,
    backbone: nn.Module,
    to_authors: torch.Tensor,
    n_layers: int,
    into: str = "ours",
) -> None:
    """Copy every parameter and BatchNorm buffer between ``authors`` (their ``AuthorsListOps``)
    and ``backbone`` (ours): ``into="ours"`` overwrites ours with theirs, ``"authors"`` theirs
    with ours. ``to_authors`` (V,) maps our token ids to theirs. Shapes must agree up to
    singleton dimensions; a name without a counterpart is an error."""
    for module in authors.modules():
        if hasattr(module, "_setup_C") and int(module.l_kernel) == 0:
            module._setup_C(module.l_max)  # C → C̃, as their first forward does
    theirs, ours = authors.state_dict(), backbone.state_dict()
    for their_name, our_name in weight_map(n_layers).items():
        source, target = theirs[their_name], ours[our_name]
        if into == "authors":
            source, target = target, source
        if source.numel() != target.numel():
            raise ValueError(f"{their_name} {tuple(theirs[their_name].shape)} ≠ {our_name}")
        sign = -1 if their_name.endswith(NEGATED) else 1
        if their_name != "encoder.weight":
            target.copy_(sign * source.reshape(target.shape))
        elif into == "ours":
            target.copy_(source[to_authors])  # (V H) in our token order
        else:
            target[to_authors] = source
