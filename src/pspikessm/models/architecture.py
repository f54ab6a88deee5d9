"""A checkpoint's architecture: the backbone's ``settings``, saved with it, checked on load.

A backbone that records its architecture (``settings``, a nested dict such as
:class:`pspikessm.models.PSpikeSSM`'s) only loads a checkpoint written by a backbone with the
same settings; any other is refused with every differing setting named, for every way a
checkpoint is loaded (the CLI's subcommands and ``load_from_checkpoint``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pspikessm.models.settings import renamed_neuron

ARCHITECTURE_KEY = "backbone_settings"  # checkpoint entry: the backbone's settings


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and not value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def setting_differences(
    saved: Any, current: Any, path: str = "", current_name: str = "model"
) -> list[str]:
    """``"<key.path>: checkpoint X, model Y"`` for every leaf in which two nested dicts differ.

    Keys on either side are compared; an absent key, None and an empty dict all mean "not
    set" (an option left at its default), and lists equal tuples with the same items.
    """
    if _unset(saved) and _unset(current):
        return []
    if isinstance(saved, Mapping) or isinstance(current, Mapping):
        if not all(isinstance(v, Mapping) or _unset(v) for v in (saved, current)):
            return [f"{path or '(settings)'}: checkpoint {saved!r}, {current_name} {current!r}"]
        saved, current = dict(saved or {}), dict(current or {})
        return [
            difference
            for key in sorted(saved.keys() | current.keys(), key=str)
            for difference in setting_differences(
                saved.get(key),
                current.get(key),
                f"{path}.{key}" if path else str(key),
                current_name,
            )
        ]
    if _same(saved, current):
        return []
    return [f"{path}: checkpoint {saved!r}, {current_name} {current!r}"]


def check_architecture(saved: Any, current: Any, checkpoint_path: Any = None) -> None:
    """Raise ValueError naming every setting in which ``saved`` (from a checkpoint) and
    ``current`` (the configured backbone's ``settings``) differ."""
    if saved is None or current is None:  # a backbone that does not record its settings
        return
    differences = setting_differences(saved, current)
    if not differences:
        return
    where = f" {checkpoint_path}" if checkpoint_path else ""
    raise ValueError(
        f"checkpoint{where} was trained with another architecture. Differing settings "
        "(model.backbone.init_args.<setting>): " + "; ".join(differences) + ". Set them to "
        "the checkpoint's values (the run's config.yaml has them all: --config <run>/config.yaml), "
        "or load a checkpoint of this architecture."
    )


def save_architecture(checkpoint: dict[str, Any], backbone: Any) -> None:
    """Record ``backbone``'s settings (None when it has none) in ``checkpoint``."""
    checkpoint[ARCHITECTURE_KEY] = getattr(backbone, "settings", None)


def check_checkpoint_architecture(
    checkpoint: dict[str, Any], backbone: Any, checkpoint_path: Any = None
) -> None:
    """:func:`check_architecture` of what :func:`save_architecture` put in ``checkpoint``, in
    today's names (a neuron saved under a name since renamed is the renamed one)."""
    saved = checkpoint.get(ARCHITECTURE_KEY)
    block = saved.get("block") if isinstance(saved, Mapping) else None
    if isinstance(block, Mapping) and "neuron" in block:
        neuron = renamed_neuron(block["neuron"], warn=False)
        saved = {**saved, "block": {**block, "neuron": neuron}}
    check_architecture(saved, getattr(backbone, "settings", None), checkpoint_path)
