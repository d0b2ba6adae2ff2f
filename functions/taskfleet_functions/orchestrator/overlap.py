"""Requests that overlap: a runner call's job read goes out with its first write, not before it, and the
claim half of a combined call runs beside its report half, so that a chain hop and a fan-out task wait for
fewer requests in a row (docs/architecture.md, "What a task costs"). boto3's clients are thread-safe; the
pools live as long as the function instance."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Two pools, so that nothing waits for a slot held by what waits for it: reads never start anything; a
# runner call's claim half (`beside`) may start a read of its own.
_reads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="overlap-read")
_halves = ThreadPoolExecutor(max_workers=4, thread_name_prefix="overlap-half")


def start(read: Callable[[], T]) -> Future[T]:
    """Run `read` (a single request that starts nothing else) beside the caller; `.result()` waits for it
    (and raises what it raised)."""
    return _reads.submit(read)


def beside(work: Callable[[], T]) -> Future[T]:
    """Run `work`, which may `start` reads of its own, beside the caller."""
    return _halves.submit(work)
