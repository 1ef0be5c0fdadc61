"""Forked worker processes for large builds: how many, and running slices of work through them."""

from __future__ import annotations

import gc
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

__all__ = ["MAX_WORKERS", "can_fork", "computed_ahead", "forked_slices", "usable_cores"]

MAX_WORKERS = 8
TASKS_PER_WORKER = 2  # slices a worker runs at least before a fresh one (forked anew) replaces it
WORKER_LIVES = 16  # ... and at most this many workers in turn take each worker's place in a run
_T = TypeVar("_T")
_S = TypeVar("_S")

# What forked workers work on: set by the parent just before forking (fork shares it, no copy).
_SHARED: Any = None
_LOCK = threading.Lock()  # one parallel run at a time per process


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity where the system has one), 1..MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def computed_ahead(fn: Callable[[_S], _T], items: Iterable[_S]) -> Iterator[_T]:
    """fn(item) for each of `items`, in order, each computed in a helper thread while the caller
    works on the one before (numpy's and scipy's loops release the GIL, so on two cores the two
    overlap); plainly one after the other on one core. At most two results exist at a time."""
    if usable_cores() < 2:
        yield from map(fn, items)
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="emsqa-ahead") as pool:
        pending: Future[_T] | None = None
        for item in items:
            following = pool.submit(fn, item)
            if pending is not None:
                yield pending.result()
            pending = following
        if pending is not None:
            yield pending.result()


def can_fork() -> bool:
    """Whether worker processes can be forked here (they share the parent's data without copying)."""
    import multiprocessing  # only for builds large enough to want workers

    return "fork" in multiprocessing.get_all_start_methods()


def _run(task: Callable[[Any, tuple[int, int]], _T], bounds: tuple[int, int]) -> _T:
    return task(_SHARED, bounds)  # in a forked worker: _SHARED is the parent's, as forked


def forked_slices(
    task: Callable[[Any, tuple[int, int]], _T],
    shared: Any,
    n: int,
    size: int,
    workers: int,
    *,
    renew: bool = True,
    cuts: Sequence[int] | None = None,
) -> Iterator[tuple[tuple[int, int], _T]]:
    """((a, b), task(shared, (a, b))) for the slices [a, b) of range(n) of `size` items, in order,
    computed by `workers` forked processes that see `shared` without a copy. `task` must be a
    module-level function. A few slices are in flight at a time: results wait in memory only
    while the caller lags. One run at a time per process: do not start another in the loop.

    A worker is replaced after TASKS_PER_WORKER slices, or more on large runs so that it is
    replaced at most WORKER_LIVES times. Reading the parent's objects writes their reference
    counts, so each page a worker reads becomes its own copy: kept for the whole build, those
    copies add up to the corpus again (1 GB at a million passages). But each fork costs in
    proportion to the parent's memory: at a million passages, a fresh worker every 2 slices
    made the build 30% slower. `renew=False` keeps each worker for the whole run: for tasks that
    read only numpy arrays of `shared` (whose pages a worker never writes), so nothing is copied
    and a worker's caches serve all its slices. `cuts` (ascending, 0 first, n last): slices
    [cuts[i], cuts[i + 1]) instead of even ones of `size`."""
    global _SHARED
    import multiprocessing

    if cuts is None:
        bounds_all = [(a, min(a + size, n)) for a in range(0, n, size)]
    else:
        bounds_all = list(itertools.pairwise(cuts))
    per_worker = max(TASKS_PER_WORKER, -(-len(bounds_all) // (workers * WORKER_LIVES)))
    lives = per_worker if renew else None
    slices = iter(bounds_all)
    with _LOCK:  # replacement workers are forked while the run lasts: _SHARED stays ours till then
        _SHARED = shared
        # the workers' garbage collector would otherwise write to every object the parent had,
        # making each page holding one the worker's own copy (Python's gc.freeze advice)
        gc.freeze()
        try:
            pool = multiprocessing.get_context("fork").Pool(workers, maxtasksperchild=lives)
            with pool:
                pending: deque[tuple[tuple[int, int], Any]] = deque()
                for bounds in itertools.islice(slices, 2 * workers):
                    pending.append((bounds, pool.apply_async(_run, (task, bounds))))
                while pending:
                    bounds, result = pending.popleft()
                    done = result.get()
                    nxt = next(slices, None)
                    if nxt is not None:
                        pending.append((nxt, pool.apply_async(_run, (task, nxt))))
                    yield bounds, done
        finally:
            _SHARED = None
            gc.unfreeze()
