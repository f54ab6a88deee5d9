"""What a checkpoint must be before any command uses it: readable, trusted, finite.

- **Readable**: a truncated or empty file (a copy cut short) is named, with what to do: delete
  it and continue from another checkpoint (the others in its folder are listed).
- **Trusted**: checkpoints are loaded with ``torch.load(weights_only=True)``, which refuses
  anything but tensors and plain values: unpickling other objects can run arbitrary code. Only
  ``--weights_only false`` on the command line of this invocation turns that off (with a
  warning), never a config file: a recorded ``<run>/config.yaml`` in a shared run folder could
  have been edited by anyone. Records never carry it (see
  :class:`pspikessm.runtime.callbacks.run_record.RunConfigRecord`).
- **Finite**: a checkpoint whose weights hold a NaN or an infinity is refused by ``validate``,
  ``test``, ``predict`` and ``fit --ckpt_path``, naming its first bad tensor; the parameters
  are checked for NaN and infinities, other states (a running maximum that starts at -inf)
  for NaN, as when checkpoints are saved (:mod:`pspikessm.runtime.callbacks.nonfinite`).
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

log = logging.getLogger(__name__)

OPTION = "--weights_only"


class UnusableCheckpoint(RuntimeError):
    """A checkpoint that cannot be read, is refused by weights-only loading, or is not finite."""


def other_checkpoints(path: str | os.PathLike) -> list[Path]:
    """The other ``*.ckpt`` files in ``path``'s folder, newest first."""
    path = Path(path)
    others = [p for p in path.parent.glob("*.ckpt") if p.name != path.name and p.is_file()]
    return sorted(others, key=lambda p: p.stat().st_mtime_ns, reverse=True)


def _resume_advice(path: str | os.PathLike) -> str:
    others = other_checkpoints(path)
    if others:
        listed = ", ".join(str(p) for p in others)
        return (
            f"Delete {path} and continue from another checkpoint with --ckpt_path <file>: "
            f"{listed} (newest first)."
        )
    return (
        f"Delete {path} and continue from another checkpoint (--ckpt_path <file>); its folder "
        "holds no other, so without one start the run anew."
    )


def _weights_only_refusal(error: BaseException) -> bool:
    return isinstance(error, pickle.UnpicklingError) and "Weights only load failed" in str(error)


def _damaged(error: BaseException) -> bool:
    """Whether ``error`` of ``torch.load`` means the file's bytes are not a whole checkpoint."""
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False  # the file's place or rights, not its bytes: the error says so itself
    if isinstance(error, (EOFError, OSError, pickle.UnpicklingError)):
        return True  # empty (EOFError), cut short (Errno 22 on a seek), not a pickle
    return isinstance(error, RuntimeError) and "PytorchStreamReader" in str(error)


def read_checkpoint(path: str | os.PathLike, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``load()`` (a ``torch.load`` of ``path``), with its failures turned into
    :class:`UnusableCheckpoint` messages that name ``path`` and say what to do."""
    try:
        return load()
    except Exception as error:
        if _weights_only_refusal(error):
            first_line = str(error).strip().splitlines()[-1].strip()
            raise UnusableCheckpoint(
                f"{path}: refused: it holds objects that weights-only loading does not allow "
                f"({first_line}). Loading them means unpickling the file, which can run "
                "arbitrary code. Only if you made this file or trust where it comes from, pass "
                f"`{OPTION} false` on the command line (a config file cannot set it)."
            ) from error
        if _damaged(error):
            raise UnusableCheckpoint(
                f"{path} cannot be read ({type(error).__name__}: {error}): it is truncated or "
                f"damaged (empty, or a copy or write cut short). {_resume_advice(path)}"
            ) from error
        raise


def nonfinite_tensors(tensors: Mapping[str, Any], nan_only: Collection[str] = ()) -> list[str]:
    """The names of the floating-point tensors in ``tensors`` holding a NaN or an infinity
    (only a NaN for the names in ``nan_only``: a running maximum starts at -inf)."""
    return [
        name
        for name, tensor in tensors.items()
        if isinstance(tensor, torch.Tensor)
        and tensor.is_floating_point()
        and not bool((~torch.isnan(tensor) if name in nan_only else torch.isfinite(tensor)).all())
    ]


def nonfinite_weights(
    checkpoint: Mapping[str, Any], parameter_names: Collection[str] | None
) -> list[str]:
    """The ``state_dict`` entries of ``checkpoint`` that are not finite: parameters (all
    entries when ``parameter_names`` is None) with a NaN or an infinity, other states with a
    NaN."""
    state = checkpoint.get("state_dict") or {}
    nan_only = () if parameter_names is None else state.keys() - set(parameter_names)
    return nonfinite_tensors(state, nan_only=nan_only)


def check_finite(
    checkpoint: Mapping[str, Any],
    path: str | os.PathLike,
    parameter_names: Collection[str] | None = None,
) -> None:
    """Raise :class:`UnusableCheckpoint` naming ``path`` and its first non-finite tensor."""
    bad = nonfinite_weights(checkpoint, parameter_names)
    if bad:
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise UnusableCheckpoint(
            f"{path}: non-finite weights: {bad[0]} holds a NaN or an infinity{more}. A "
            "checkpoint with non-finite weights cannot be evaluated or resumed. "
            + _resume_advice(path)
        )


def checked_problem(path: str | os.PathLike, parameter_names: Collection[str] | None) -> str | None:
    """What makes ``path`` unusable (unreadable, refused, not finite), or None for a good one."""
    try:
        checkpoint = read_checkpoint(
            path, lambda: torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        )
        check_finite(checkpoint, path, parameter_names)
    except Exception as error:  # a probe on a failure path: any failure means "not good"
        return f"{type(error).__name__}: {error}"
    return None


# --- weights_only: from this command line only ----------------------------------------------


def command_line_weights_only(argv: list[str]) -> tuple[bool, bool | None]:
    """``(given, value)`` of the last ``--weights_only`` option in ``argv``."""
    given, value = False, None
    for index, token in enumerate(argv):
        if token == OPTION and index + 1 < len(argv):
            given, text = True, argv[index + 1]
        elif token.startswith(OPTION + "="):
            given, text = True, token[len(OPTION) + 1 :]
        else:
            continue
        parsed = yaml.safe_load(text) if text else None
        value = parsed if isinstance(parsed, bool) else None
    return given, value


def settle_weights_only(config: Any, argv: list[str] | None) -> None:
    """Set ``config.weights_only`` (a subcommand's parsed config) to what this command line
    says, whatever a config file said; warn when it turns weights-only loading off.

    ``argv`` None: the config came from code (a dict), not from files; it is kept.
    """
    if argv is None or "weights_only" not in config:
        return
    given, value = command_line_weights_only(argv)
    if config.weights_only is False and not (given and value is False):
        log.warning(
            "weights_only: false in a config file is ignored: checkpoints are loaded with "
            "weights only, since unpickling one can run arbitrary code. Only `%s false` on "
            "the command line turns that off.",
            OPTION,
        )
    config.weights_only = value if given else None
    if config.weights_only is False:
        log.warning(
            "%s false: the checkpoint %s will be unpickled, which runs any code it holds "
            "(arbitrary code execution). Use it only for a file you made or trust.",
            OPTION,
            config.get("ckpt_path"),
        )
