"""Choosing a class by a built-in name or by its import path, as configs do for neurons and kernels."""

from __future__ import annotations

import importlib
from collections.abc import Mapping


def resolve_class(value: str, builtins: Mapping[str, str], option: str) -> type:
    """The class named by ``value``: a key of ``builtins`` or an import path ``pkg.mod.Class``.

    ``builtins`` maps each built-in name to its import path, so built-in and user classes are
    resolved the same way. ``option`` (e.g. ``block.neuron``) names the setting in errors.
    """
    path = builtins.get(value, value)
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(
            f"{option}={value!r}: expected one of {sorted(builtins)} or the import path of a "
            "class (e.g. mypackage.module.MyClass)"
        )
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"{option}={value!r}: cannot import {path}: {error}") from None
    if not isinstance(cls, type):
        raise ValueError(f"{option}={value!r}: {path} is not a class")
    return cls
