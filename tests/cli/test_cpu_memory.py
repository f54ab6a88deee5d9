"""The CLI's glibc setting: freed memory is kept in the process, unless the user opts out."""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

import pytest

from pspikessm.cpu_memory import OPT_OUT, keep_freed_memory

IS_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not IS_GLIBC, reason="mallopt is glibc's")
def test_large_blocks_come_from_the_heap_after_the_call(monkeypatch):
    monkeypatch.delenv(OPT_OUT, raising=False)
    assert keep_freed_memory() is True
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.sbrk.restype = ctypes.c_void_p
    # A 64 MiB block would be its own mmap under glibc's defaults (far from the heap's end);
    # with mmap disabled it is carved from the heap, below the current program break.
    block = libc.malloc(ctypes.c_size_t(64 << 20))
    try:
        assert block is not None
        assert block < libc.sbrk(0)
    finally:
        libc.free(ctypes.c_void_p(block))


def test_opt_out(monkeypatch):
    monkeypatch.setenv(OPT_OUT, "0")
    assert keep_freed_memory() is False
