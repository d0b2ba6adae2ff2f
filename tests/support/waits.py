"""Bounded waits on observable conditions (never a sleep standing in for one), and the job-state checks
they poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TERMINAL = ("COMPLETED", "FAILED", "CANCELED")


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll an observable condition (not a sleep standing in for one); fail loudly on timeout.

    An exception raised by the predicate propagates: a test's own poll is expected to work."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.1) -> Any:
    """`wait_until` for the fault scenarios: an exception in the poll (an injected AWS error surfacing in
    the poll itself) counts as "not yet", and a timeout raises TimeoutError (a scenario's outcome, not an
    assertion). Kept apart from `wait_until` so the e2e tests still fail at once on a broken poll."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:  # an injected AWS error surfacing in the poll itself: poll again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def job_done(client: Any, job: Any) -> Callable[[], Any]:
    """Through the SDK: the job once it is terminal, else None."""

    def check() -> Any:
        current = client.jobs().find(job)
        return current if current.state in TERMINAL else None

    return check


def job_state(stack: Any, job_id: str) -> str:
    """Straight from the orchestrator (no HTTP)."""
    return str(stack.orchestrator.get_job(job_id)["state"])


def terminal(stack: Any, job_id: str) -> Callable[[], str | None]:
    """Through the orchestrator: the job's terminal state, else None."""

    def check() -> str | None:
        state = job_state(stack, job_id)
        return state if state in TERMINAL else None

    return check
