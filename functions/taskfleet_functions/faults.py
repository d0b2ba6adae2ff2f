"""Named crash points for fault-injection tests. In production nothing is armed and `point()` is a dict
lookup. The local stack arms points to prove that a handler dying between two writes loses nothing."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_armed: dict[str, int] = {}
_hits: dict[str, int] = {}


class InjectedCrash(RuntimeError):
    """Stands for the process dying at this point (the local API answers 502, like API Gateway)."""


def arm(name: str, times: int = 1) -> None:
    with _lock:
        _armed[name] = times


def disarm_all() -> None:
    with _lock:
        _armed.clear()
        _hits.clear()


def hits(name: str) -> int:
    with _lock:
        return _hits.get(name, 0)


def point(name: str) -> None:
    if not _armed:
        return
    with _lock:
        left = _armed.get(name, 0)
        if left <= 0:
            return
        _armed[name] = left - 1
        _hits[name] = _hits.get(name, 0) + 1
    raise InjectedCrash(f"injected crash at {name}")
