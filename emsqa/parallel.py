"""How many worker processes a large build may fork: the cores this process may run on, up to 8."""

from __future__ import annotations

import os

__all__ = ["MAX_WORKERS", "can_fork", "usable_cores"]

MAX_WORKERS = 8


def usable_cores() -> int:
    """The cores this process may use (its CPU affinity where the system has one), 1..MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def can_fork() -> bool:
    """Whether worker processes can be forked here (they share the parent's data without copying)."""
    import multiprocessing  # only for builds large enough to want workers

    return "fork" in multiprocessing.get_all_start_methods()
