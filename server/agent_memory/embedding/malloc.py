"""C runtime tuning for the long-running server: the glibc heap (a no-op elsewhere) and numpy's BLAS threads."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

# glibc's mallopt parameter number for M_ARENA_MAX.
M_ARENA_MAX = -8


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError):  # musl and other C libraries: nothing to tune
        return ctypes.CDLL("libc.so.6")
    return None


def cap_arenas(arenas: int = 2) -> None:
    """Cap malloc arenas unless the user set MALLOC_ARENA_MAX.

    torch, LanceDB's runtime and the worker threads each get a malloc arena of their own by default; on this
    workload that holds about 130 MB of resident memory that buys no speed (measured in bench/perf.py).
    """
    libc = _glibc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        with contextlib.suppress(AttributeError):
            libc.mallopt(M_ARENA_MAX, arenas)


def trim() -> None:
    """Return free heap pages to the OS.

    torch frees a batch's activations into glibc's heap, which keeps them resident: about 90 MB after a burst
    of long texts.
    """
    libc = _glibc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.malloc_trim(0)


def one_blas_thread() -> None:
    """Run numpy's BLAS on the calling thread only.

    The server's numpy products are small (rescoring a few thousand rows): a second BLAS thread buys nothing, and
    OpenBLAS's idle threads spin on a core for a while after each product, slowing the torch work beside them.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
