"""Process-wide settings for the commands that crunch large arrays (`monitor stats`, `report`).

A year of statistics makes and frees a few hundred arrays of a million integers. By default glibc maps
each one afresh (mmap above 128 KiB, with a threshold that adapts late), returns it on free, and a thread
of the loading pool gets an arena of its own: every array's pages are faulted in again, a third of the
command's CPU time. Kept in one heap and not trimmed, freed pages are reused. Elsewhere (not glibc) this
does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TOP_PAD, _M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -2, -1, -3, -8
_SETTINGS = (
    (_M_ARENA_MAX, 1),  # the reader threads allocate from the one heap: what one frees, another reuses
    (_M_MMAP_THRESHOLD, 32 << 20),  # arrays of up to 4M integers come from the heap
    (_M_TRIM_THRESHOLD, 1 << 30),  # freed memory stays mapped for the next array (the process is short)
    (_M_TOP_PAD, 64 << 20),  # and the heap grows in large steps
)


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed memory rather than return it (before the arrays are made);
    False where there is no glibc (nothing changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, or a stub
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all([mallopt(option, value) == 1 for option, value in _SETTINGS])


def for_arrays() -> None:
    """Settings for a short command that crunches large arrays, before numpy is imported: freed memory
    kept (keep_freed_memory), and numpy's BLAS without its thread pool (nothing here multiplies matrices,
    and its idle threads spin on the cores the report uses)."""
    keep_freed_memory()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
