"""Keep freed memory inside the process (glibc), so large CPU tensors do not page-fault anew.

glibc returns every freed block above its mmap threshold (at most 32 MiB) to the kernel and
maps fresh zero pages for the next allocation of that size. A long-sequence step allocates
and frees many (B, H, 2L) buffers, so on CPU most of its time went to page faults: one
block fwd+bwd at L=16384 took 1.21 s with glibc's defaults and 0.43 s with freed memory kept
(``python -m benchmarks.speed.block``, 2-core CPU). The price is a higher peak RSS, since memory
is reused rather than returned. This is what ``LD_PRELOAD``-ing jemalloc or tcmalloc also
achieves; here it needs no extra library.
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
    """Tell glibc to serve large blocks from the heap and keep freed memory for reuse.

    A no-op (returning False) off glibc, or when the environment sets
    ``PSPIKESSM_KEEP_FREED_MEMORY=0``. Call it once, early, in an application's entry point.
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
