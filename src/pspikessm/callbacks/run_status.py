"""``summary.json`` in a run folder: how the run went, for ``pspikessm report``.

One JSON object, updated in place (atomically, rank zero) by :class:`RunSummary`:

- ``status``: ``running`` from the start of training, then ``finished`` (fit returned),
  ``preempted`` (stopped by a signal with exit status 75: resume with ``--ckpt_path last``),
  ``interrupted`` (Ctrl-C) or ``failed`` (with ``error``: the exception, one line). A run
  killed outright (SIGKILL, node failure) stays ``running``.
- ``command``: the command line of the newest attempt (``pspikessm fit --config ...``);
  ``attempts``: how many times training started in this folder;
- ``seconds``: training time summed over the attempts (each attempt's share written when it
  ends); ``global_step``, ``epoch``;
- ``best``: ``{"metric", "value", "epoch"}`` of the monitored validation metric;
- ``test``: the test metrics of the newest ``test`` in this folder (``test/acc``, and
  ``energy/saving`` with an EnergyEstimate).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities.exceptions import SIGTERMException

from pspikessm.files import atomic_write_text

STATUS_FILE = "summary.json"
STATUSES = ("running", "finished", "preempted", "interrupted", "failed")


def read_status(run_dir: Path) -> dict[str, Any]:
    """The run's ``summary.json`` (an empty dict when there is none)."""
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); expected a run summary") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(record).__name__}")
    return record


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _best(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("metric", ""), str)
        and (value.get("value") is None or _number(value["value"]))
        and (value.get("epoch") is None or _integer(value["epoch"]))
    )


def _metrics(value: Any) -> bool:
    return isinstance(value, dict) and all(_number(v) for v in value.values())


#: What each field of summary.json holds: (check, description for a message).
FIELDS: dict[str, tuple[Any, str]] = {
    "status": (lambda v: isinstance(v, str), "a string"),
    "task": (lambda v: isinstance(v, str), "a string"),
    "command": (lambda v: isinstance(v, str), "a string"),
    "error": (lambda v: isinstance(v, str), "a string"),
    "attempts": (_integer, "an integer"),
    "global_step": (_integer, "an integer"),
    "epoch": (_integer, "an integer"),
    "seconds": (_number, "a number"),
    "best": (_best, 'an object {"metric": string, "value": number, "epoch": integer}'),
    "test": (_metrics, "an object of numbers"),
}


def checked_status(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """The fields of the run's ``summary.json`` that hold what :data:`FIELDS` says, and a
    message for each that does not (``{}`` and one message for a file that is not a JSON
    object). For readers that must go on past a damaged file (``pspikessm report``)."""
    try:
        record = read_status(run_dir)
    except ValueError as error:
        return {}, [str(error)]
    checked, problems = {}, []
    for name, value in record.items():
        check, expected = FIELDS.get(name, (lambda v: True, ""))
        if check(value):
            checked[name] = value
        else:
            found = json.dumps(value)
            found = found if len(found) <= 40 else found[:37] + "..."
            problems.append(
                f"{Path(run_dir) / STATUS_FILE}: {name!r} should be {expected}, found {found}"
            )
    return checked, problems


def update_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into the run's ``summary.json`` (written atomically); the new record."""
    record = {**read_status(run_dir), **fields}
    atomic_write_text(Path(run_dir) / STATUS_FILE, json.dumps(record, indent=1) + "\n")
    return record


def command_line() -> str:
    """This process's command line, as typed: ``pspikessm fit --config ...``."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if program == "__main__.py":  # python -m pspikessm
        program = "pspikessm"
    return shlex.join([program, *sys.argv[1:]])


def status_of(exception: BaseException) -> str:
    """The status an exception ends a run with."""
    if isinstance(exception, SIGTERMException):
        return "preempted"
    if isinstance(exception, KeyboardInterrupt):
        return "interrupted"
    return "failed"
