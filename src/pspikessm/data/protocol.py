"""The data protocol: what a data module tells the model, so sizes are never typed twice.

Any :class:`lightning.LightningDataModule` can drive ``pspikessm fit`` (by ``class_path``,
from the user's own module). Once it is constructed, and before ``prepare_data``/``setup``
run, the CLI reads these attributes from it and links them into the model:

============  ========  ==============================================================
attribute     default   meaning, and where the CLI puts it
============  ========  ==============================================================
num_classes   required  number of target classes → ``model.num_classes`` and
                        ``model.backbone.init_args.num_classes``
vocab_size    0         token vocabulary size for (B, L) int64 inputs; 0 means real-valued
                        (B, L, d_input) inputs → ``model.backbone.init_args.vocab_size``
d_input       1         channels of real-valued inputs → ``model.backbone.init_args.d_input``
dual_input    False     every example is a pair of sequences (two-document tasks)
                        → ``model.backbone.init_args.dual_input``
============  ========  ==============================================================

A backbone that lacks one of these parameters simply does not receive it (jsonargparse
ignores links whose target the chosen class does not have). Plain class attributes,
attributes set in ``__init__`` and properties all work. No sequence length is linked: SSM
kernels are computed for the length of each batch; a backbone that needs a fixed length
takes it as its own init argument.

Batches are ``(inputs, lengths, targets)``: inputs (B, L) int64 or (B, L, C) float, padded;
lengths (B,) int64 valid steps; targets (B,) int64 (see :func:`pspikessm.data.collate.pad_collate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProtocolAttribute:
    """One attribute of the data protocol: its default (None: required), type and targets."""

    default: int | bool | None
    kind: type
    minimum: int | None
    targets: tuple[str, ...]


#: The data protocol: attribute name → what it is and which model arguments receive it.
DATA_PROTOCOL: dict[str, ProtocolAttribute] = {
    "num_classes": ProtocolAttribute(
        None, int, 1, ("model.num_classes", "model.backbone.init_args.num_classes")
    ),
    "vocab_size": ProtocolAttribute(0, int, 0, ("model.backbone.init_args.vocab_size",)),
    "d_input": ProtocolAttribute(1, int, 1, ("model.backbone.init_args.d_input",)),
    "dual_input": ProtocolAttribute(False, bool, None, ("model.backbone.init_args.dual_input",)),
}


def protocol_value(data: Any, name: str) -> int | bool:
    """The protocol attribute ``name`` of the data module ``data``, checked.

    Raises:
        AttributeError: a required attribute is absent (or None).
        TypeError / ValueError: the value has the wrong type or is out of range.
    """
    owner = f"{type(data).__module__}.{type(data).__qualname__}"
    spec = DATA_PROTOCOL[name]
    value = getattr(data, name, spec.default)
    if value is None:
        raise AttributeError(
            f"data module {owner} has no `{name}`: the CLI links it into the model, so set it "
            "in the class or in __init__ (setup() runs too late). See pspikessm.data.protocol."
        )
    # bool is a subclass of int: an int attribute must not be a bool, and vice versa.
    if not isinstance(value, spec.kind) or (spec.kind is int and isinstance(value, bool)):
        raise TypeError(
            f"data module {owner}: `{name}` must be {spec.kind.__name__}, got {value!r}"
        )
    if spec.minimum is not None and value < spec.minimum:
        raise ValueError(
            f"data module {owner}: `{name}` must be >= {spec.minimum}, got {value} "
            "(was it left at the base class default?)"
        )
    return value
