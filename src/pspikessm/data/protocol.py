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

from typing import Any

#: Protocol attribute → its default (None: required).
DATA_PROTOCOL: dict[str, int | None] = {"num_classes": None, "vocab_size": 0, "d_input": 1}

#: The smallest valid value of each attribute.
_MINIMUM = {"num_classes": 1, "vocab_size": 0, "d_input": 1}


def protocol_value(data: Any, name: str) -> int:
    """The protocol attribute ``name`` of the data module ``data``, checked.

    Raises:
        AttributeError: a required attribute is absent.
        TypeError / ValueError: the value is not an int of the allowed range.
    """
    owner = f"{type(data).__module__}.{type(data).__qualname__}"
    default = DATA_PROTOCOL[name]
    value = getattr(data, name, default)
    if value is None:
        raise AttributeError(
            f"data module {owner} has no `{name}`: the CLI links it into the model, so set it "
            "in the class or in __init__ (setup() runs too late). See pspikessm.data.protocol."
        )
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"data module {owner}: `{name}` must be an int, got {value!r}")
    if value < _MINIMUM[name]:
        raise ValueError(
            f"data module {owner}: `{name}` must be >= {_MINIMUM[name]}, got {value} "
            "(was it left at the base class default?)"
        )
    return value
