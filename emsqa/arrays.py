"""Small numpy helpers shared by the index build and the question path."""

from __future__ import annotations

import ctypes
import os
import sys
import weakref
from collections.abc import Callable

import numpy as np

from emsqa.errors import IndexFormatError

__all__ = [
    "FileReader",
    "MappedRuns",
    "release_free_memory",
    "sorted_unique",
    "weighted_postings",
]

# postings per term (on average) from which weighted_postings scales each term's run in place:
# below it one np.repeat of the weights costs less than a Python step per term
_SCALE_IN_PLACE_FROM = 1_000


# Runs of a memory-mapped array shorter than this many bytes are read with os.pread: touching a
# mapped page maps 64 KB around it (the kernel's fault-around), most of it never read for a short
# run, and all of it resident; longer runs are read through the map.
SHORT_RUN = 16_384


class FileReader:
    """Reads bytes of the file under a memory map just opened by np.load, with os.pread (None
    from `of` where there is no such file or no pread: read through the map then)."""

    def __init__(self, name: str, at: int) -> None:
        self.name = name
        self.at = at  # where the array's bytes start in the file
        self.fd = os.open(name, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)

    @classmethod
    def of(cls, arr: np.ndarray) -> FileReader | None:
        if isinstance(arr, np.memmap) and hasattr(os, "pread") and arr.filename and len(arr):
            return cls(str(arr.filename), int(arr.offset))
        return None

    def read(self, start: int, size: int) -> bytes:
        """`size` bytes from byte `start` of the array."""
        got = os.pread(self.fd, size, self.at + start)
        if len(got) != size:  # the file shrank under us (the map would crash the process)
            raise IndexFormatError(
                f"index file {self.name} was cut short while it was open", hint="rebuild the index"
            )
        return got


class MappedRuns:
    """Runs [a, b) of a 1-D array: short runs of a memory-mapped one read from its file (see
    SHORT_RUN), the rest sliced."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr
        self.file = FileReader.of(arr)
        self.short = SHORT_RUN // arr.dtype.itemsize

    def __call__(self, a: int, b: int) -> np.ndarray:
        if self.file is None or b - a >= self.short:
            return self.arr[a:b]
        size = self.arr.dtype.itemsize
        return np.frombuffer(self.file.read(a * size, (b - a) * size), dtype=self.arr.dtype)


def release_free_memory() -> None:
    """Return freed heap pages to the system (Linux with glibc; elsewhere nothing is done).

    A build frees many mid-sized arrays (a run's counts) that glibc keeps in its heap rather than
    give back: on 100,000 passages the build's resident memory then stays 130 MB higher.
    """
    if sys.platform != "linux":
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return
    trim(0)


def sorted_unique(values: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """The distinct values, ascending: np.unique(values) by sorting (`values` itself when
    `in_place`, which saves a copy of a large array).

    numpy 2.x answers np.unique without return_inverse through a hash table, which is far slower
    on large integer arrays (1.5 s against 0.02 s for 1.5 million int64 here).
    """
    if in_place:
        values.sort()
        ordered = values
    else:
        ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def weighted_postings(
    ptr: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    terms: np.ndarray,
    weights: np.ndarray,
    runs: tuple[Callable[[int, int], np.ndarray], Callable[[int, int], np.ndarray]] | None = None,
) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
    """The postings of `terms` from term-major arrays (term t owns [ptr[t], ptr[t + 1]) of `rows`
    and `values`), each value times its term's weight: (spans, rows, float64 products), the
    terms' postings one after another in the order of `terms`. `runs`: readers of runs of `rows`
    and `values` (MappedRuns), else they are sliced."""
    starts, ends = ptr[terms], ptr[terms + 1]
    spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
    # joined straight into the dtypes used next: no narrow copy made only to be widened
    if runs is None:
        at = np.concatenate([rows[a:b] for a, b in spans], dtype=np.intp)
        products = np.concatenate([values[a:b] for a, b in spans], dtype=np.float64)
    else:
        row_run, value_run = runs
        at = np.concatenate([row_run(a, b) for a, b in spans], dtype=np.intp)
        products = np.concatenate([value_run(a, b) for a, b in spans], dtype=np.float64)
    if len(products) < _SCALE_IN_PLACE_FROM * len(spans):
        products *= np.repeat(weights, ends - starts)
    else:  # long postings: each term's run scaled in place, without a repeated-weights array
        end = 0
        for (a, b), w in zip(spans, weights.tolist(), strict=True):
            begin, end = end, end + b - a
            products[begin:end] *= w
    return spans, at, products
