"""Keep freed memory for reuse on glibc (Linux): twice the sampling speed for large batches on CPU.

PyTorch's CPU operators allocate each layer's output anew and free it right after; at the batch
sizes of the measurements (400 digits with CFG: tens of MB an activation) glibc's malloc serves
those blocks with mmap and gives them back to the system on free, so every model call pays for
fresh, zeroed pages (the time shows up as system time). Raising glibc's mmap and trim thresholds
keeps such blocks in the process's heap for the next call. bench/allocator.py measures it;
PyTorch's CPU performance guide makes the same point for its own allocators (jemalloc, tcmalloc).

Nothing changes elsewhere (macOS, Windows, musl): the call returns False.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# glibc's mallopt parameters (malloc.h) and the size under which blocks stay in the heap
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_BELOW_BYTES = 256 * 1024 * 1024


def keep_freed_memory_for_reuse(threshold: int = KEEP_BELOW_BYTES) -> bool:
    """Ask glibc to serve blocks under `threshold` from the heap and to keep that much free memory
    before returning any to the system. True if glibc took both settings."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1 and mallopt(M_TRIM_THRESHOLD, threshold) == 1


def release_free_memory() -> bool:
    """Give the free pages inside glibc's heaps back to the system (malloc_trim). After a job the
    heap is full of holes its temporaries and the runs gone to disk left between frames still in
    use; without this the app's resident memory grew by about 2 GB over 100 Generates and 10 races
    while the frames it held stayed within their budget (bench/gui_memory.py). A few milliseconds;
    False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        malloc_trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    malloc_trim(0)
    return True
