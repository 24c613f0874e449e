"""The host allocator's one setting: large CPU tensors reuse freed heap memory (set once per process, at its entry)."""

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
HEAP_REUSE_BYTES = 2**30


def reuse_freed_host_memory() -> bool:
    """On glibc, CPU tensors up to 1 GiB come from the process's heap and go back to it when freed (mallopt's
    M_MMAP_THRESHOLD and M_TRIM_THRESHOLD), instead of each one being a fresh mmap whose pages the kernel zeroes on
    first touch: the default random-net spent a third of its time in the kernel doing that. Freed memory is kept for
    the next tensor rather than handed back to the system; values never depend on it. False where the C library has
    no mallopt (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, without a library search
    except (OSError, AttributeError, TypeError):  # TypeError: no CDLL(None) on Windows
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_REUSE_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, 2 * HEAP_REUSE_BYTES - 1)
    )
