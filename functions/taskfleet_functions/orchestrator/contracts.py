"""The orchestrator's inputs and outputs: small frozen dataclasses and named tuples, built by keyword."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from .states import ClaimStatus, Outcome, Reason, ReportStatus


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC timestamp (None stays None)."""
    if ms is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def lease_hash(token: str) -> str:
    """What the task item stores of a lease token: its SHA-256 (the token itself is the runner's secret)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """One task to create: a job's root or a subtask (already validated for shape by the API models)."""

    name: str
    version: str
    input: Any = None
    depends_on: tuple[int, ...] = ()
    cluster: str | None = None
    max_retries: int = 0
    display: str | None = None
    optional: bool = False  # its failure does not fail the job (docs/architecture.md, "Optional tasks")


class DeferredRef(NamedTuple):
    """Names a deferred subtask whose item its first claim creates (docs/architecture.md, "Deferred
    subtasks"): the parent, the parent attempt that submitted it, its index among its siblings."""

    parent_id: str
    parent_attempt: int
    child_index: int


class CompactSpec(NamedTuple):
    """What a deferred subtask keeps in its parent's spec chunk until its first claim (stored as a list)."""

    name: str
    version: str
    cluster: str
    input: str | None  # JSON text, inline (a spilled input is never deferred)
    max_retries: int
    display: str | None
    optional_root: str | None = None  # the optional subtree it belongs to (chunks written before lack it)


@dataclass(frozen=True, kw_only=True)
class Report:
    """A runner's report on one task attempt."""

    task_id: str
    job_id: str
    attempt: int
    outcome: Outcome
    cluster: str  # the cluster the runner's credentials reach (the route's path), never the body's word
    lease: str  # the lease token of this attempt
    display: str | None = None
    subtasks: tuple[TaskSpec, ...] = ()
    failure_message: str | None = None
    failure_traceback: str | None = None
    progress: tuple[tuple[str, int, int], ...] = ()  # (label, total, done); "" is the unlabelled indicator
    unstarted: bool = False  # RELEASED before it started (claimed with others): the claim is taken back


@dataclass(frozen=True, kw_only=True)
class Claim:
    """A runner's claim of the task a ticket names."""

    job_id: str
    task_id: str
    cluster: str  # the cluster the runner's credentials reach (the route's path)
    lease: str  # a fresh secret the runner made for this claim; the item stores its hash
    ref: tuple[str, int, int] | None = None  # a DeferredRef, as the ticket carries it
    lease_seconds: int | None = None  # the lease this claim gets; None: the deployment's (Settings.lease_seconds)
    # attributes the claim's write stores on the task item besides the lease (the Connect endpoint keeps the
    # ticket's receipt there: a Tilebox runner's report names only the task)
    note: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class ClaimResult:
    status: ClaimStatus
    task: dict[str, Any] | None = None  # the task to run (status RUN)
    retry_after_ms: int = 0  # status BUSY: when the ticket may be looked at again
    code: Reason = Reason.NONE
    reason: str = ""

    def wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class ReportResult:
    status: ReportStatus
    code: Reason = Reason.NONE
    message: str = ""

    def wire(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepStats:
    outbox_jobs: int = 0
    dlq_resent: int = 0
    dlq_dropped: int = 0
