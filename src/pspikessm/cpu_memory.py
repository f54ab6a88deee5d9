"""Faster long sequences on CPU: glibc keeps the memory that large tensors free inside the
process, so the next step's buffers do not page-fault anew. On by default, for the measured
gain below; ``PSPIKESSM_KEEP_FREED_MEMORY=0`` turns it off.

glibc returns every freed block above its mmap threshold (at most 32 MiB) to the kernel and
maps fresh zero pages for the next allocation of that size. A long-sequence step allocates
and frees many (B, H, 2L) buffers, so on CPU most of its time can go to page faults: one
block fwd+bwd at L=16384 took 1.21 s with glibc's defaults and 0.43 s with freed memory kept
(``python -m benchmarks.speed.block``, 2-core CPU, 29-30 Nov 2026; docs/performance.md). The
price is a higher peak RSS (the paper's Path-X config: 9.08 GiB instead of 7.43 GiB), since
memory is reused rather than returned, and every allocation of the process is affected.
``LD_PRELOAD``-ing jemalloc or tcmalloc achieves the same without this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

# mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

OPT_OUT = "PSPIKESSM_KEEP_FREED_MEMORY"


def keep_freed_memory() -> bool:
    """Tell glibc to serve large blocks from the heap and keep freed memory for reuse; True if
    it did.

    A no-op (returning False) off glibc, or when the environment sets
    ``PSPIKESSM_KEEP_FREED_MEMORY=0``. The CLI and the benchmarks
    call it once, at start.
    """
    if os.environ.get(OPT_OUT, "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return all(
        mallopt(parameter, value) == 1
        for parameter, value in (
            (M_MMAP_MAX, 0),  # no per-allocation mmap: big blocks come from the heap
            (M_TRIM_THRESHOLD, 1 << 30),  # return heap memory only past 1 GiB free at the top
            (M_TOP_PAD, 1 << 28),  # grow the heap 256 MiB at a time
        )
    )
