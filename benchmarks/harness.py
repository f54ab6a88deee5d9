"""What the benchmarks share: timing, the machine's description, and result files.

Timings are medians over repeats after warm-up; on a GPU they use CUDA events, so every script
runs unchanged on either device. Results go to ``benchmarks/results/<name>_<device>.json`` and
to that script's own section of ``benchmarks/RESULTS.md`` (other scripts' sections are kept).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import pspikessm
from pspikessm.cpu_memory import keep_freed_memory

#: benchmarks/ and the repository root (run the benchmarks from there: ``python -m
#: benchmarks.speed.train``).
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if not Path(pspikessm.__file__).resolve().is_relative_to(ROOT / "src"):
    # A benchmark measures this checkout; an installed copy of another one would be timed
    # silently instead.
    raise ImportError(
        f"pspikessm was imported from {Path(pspikessm.__file__).parent}, not from this "
        f"checkout's {ROOT / 'src'}: run the benchmarks from {ROOT} after `pip install -e .` "
        "there, or with PYTHONPATH=src"
    )

# As the CLI does: measure what a training run gets.
keep_freed_memory()
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_DIR = HERE / "results"


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one call of ``fn``.

    Wall: CUDA events on a GPU, a monotonic clock on CPU. CPU: this process's CPU time (all
    threads), which background load inflates far less than wall time on a shared machine.
    """
    cpu = time.process_time()
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return start.elapsed_time(end) / 1e3, time.process_time() - cpu
    begin = time.perf_counter()
    fn()
    return time.perf_counter() - begin, time.process_time() - cpu


def time_interleaved(
    fns: dict[str, Callable[[], None]], device: torch.device, repeats: int, warmup: int = 1
) -> dict[str, dict[str, list[float]]]:
    """Time several functions round-robin, so background load hits them alike.

    Returns ``{name: {"wall": [...], "cpu": [...]}}`` after ``warmup`` untimed rounds.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    synchronize(device)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time_once(fn, device)
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def set_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads (None: torch's default, one per core)."""
    if threads:
        torch.set_num_threads(threads)


def machine() -> dict[str, object]:
    """What the numbers depend on: device, cores, threads, load while measuring, versions."""
    info: dict[str, object] = {
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        # the cores this process may run on (taskset), not all the machine has
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["device"] = "cuda"
        info["gpu"] = torch.cuda.get_device_name()
    try:
        info["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        info["loadavg"] = None
    return info


def emit(values: dict[str, object]) -> None:
    """Print ``name=value`` lines (floats to 4 significant digits)."""
    for name, value in values.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{name}={text}", flush=True)


def write_results(name: str, payload: dict[str, object], table_md: str) -> Path:
    """Write ``results/<name>_<device>.json`` and replace this script's RESULTS.md section."""
    device = str(payload.get("machine", {}).get("device", "cpu"))  # type: ignore[union-attr]
    RESULTS_DIR.mkdir(exist_ok=True)
    json_path = RESULTS_DIR / f"{name}_{device}.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    begin, end = f"<!-- {name}:{device} begin -->", f"<!-- {name}:{device} end -->"
    section = (
        f"{begin}\n{table_md.rstrip()}\n\nRaw numbers: `{json_path.relative_to(HERE)}`.\n{end}"
    )
    # Several benchmarks may finish at once (a device session runs them side by side): the
    # lock keeps one script's read-modify-write from dropping another's section.
    with open(RESULTS_DIR / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + section + rest.split(end, 1)[1]
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
        RESULTS_MD.write_text(text)
    return json_path


def command_line() -> str:
    """How this benchmark was run (``python -m benchmarks.speed.train ...``), for the results
    table."""
    script = Path(sys.argv[0]).resolve().with_suffix("")
    module = ".".join(script.relative_to(ROOT).parts) if script.is_relative_to(ROOT) else script
    return " ".join(["python", "-m", str(module), *sys.argv[1:]])


def machine_line(info: dict[str, object]) -> str:
    load = " ".join(info["loadavg"]) if info.get("loadavg") else "n/a"  # type: ignore[arg-type]
    where = info.get("gpu") or info.get("cpu")
    return (
        f"Device {info['device']} ({where}), nproc={info['nproc']}, "
        f"torch threads={info['torch_threads']}, load average at start {load}, "
        f"torch {info['torch']}."
    )
