"""The task runner: receive a ticket, claim, execute, report (with the next claim), repeat.

Network I/O happens on the main thread; the task executes on a worker thread so that signals, the
shutdown grace period and lease heartbeats keep working while user code runs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import secrets
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Protocol
from urllib.parse import urlsplit

from taskfleet.cache import JobCache
from taskfleet.errors import ApiError, ApiUnavailableError, ConflictError, DuplicateTaskError, ServerError
from taskfleet.http import Transport
from taskfleet.protocol import ClaimStatus, Outcome, ReportStatus
from taskfleet.rules import RUNNER_BATCH, can_run
from taskfleet.task import Task, task_identifier

from .executor import ExecutionResult, Failure, Success, execute
from .lanes import Lanes, Receipt

log = logging.getLogger("taskfleet.runner")

# An idle runner's receive waits this long (SQS's maximum, 20 s: 3 receives a minute per lane). A stopping
# runner waits for its open receives, so a shorter poll stops faster and costs more idle requests
# (TASKFLEET_LONG_POLL_SECONDS, 1-20; the fault tests use 5).
LONG_POLL_SECONDS = max(1, min(20, int(os.environ.get("TASKFLEET_LONG_POLL_SECONDS", "20"))))
RUN_ALL_POLL_SECONDS = 1
RUN_ALL_LAST_LOOKS = 30  # run_all: rounds that found nothing while SQS still counted visible tickets
# How often a runner asks for lanes created since it started (an older minor version submitted for the first
# time): every 5 minutes, and when it falls idle after work if a minute has passed (docs/architecture.md).
LANE_REFRESH_SECONDS = 300
LANE_REFRESH_IDLE_SECONDS = 60
RECONNECT_AFTER_ERRORS = 3  # receives failing in a row before the runner looks its lanes up again
# Finished tickets are deleted in batches of up to 10, at the latest this long after the first one
# finished (well inside the visibility timeout): a tenth of the delete requests for short tasks. A
# runner that dies holding some leaves tickets that reappear and are discarded by the next claim.
DELETE_BATCH_SECONDS = 1.0
REPORT_ATTEMPTS = 3  # loop-level attempts (each with the transport's own retries) before abandoning
DEFAULT_SHUTDOWN_GRACE = float(os.environ.get("TASKFLEET_SHUTDOWN_GRACE", "20"))
PREFETCH_WINDOW_SECONDS = 1.0  # about how long received tickets may wait locally (see prefetch_count)
PREFETCH_MAX = 10  # SQS's maximum per ReceiveMessage
AVERAGE_WEIGHT = 0.3  # weight of the latest task in the moving average of the time per task
# A buffered ticket was received with the queue's visibility timeout (= the lease); once claimed, the first
# heartbeat extends it lease/3 after the task starts. So a ticket buffered longer than lease/3 is handed back
# rather than claimed: it must not become visible to other runners while its task runs.
BUFFER_MAX_AGE_FRACTION = 1 / 3


def prefetch_count(window: float, average_seconds: float | None, buffered: int) -> int:
    """How many tickets to receive, with `buffered` ones already waiting locally.

    Prefetch: a runner claims the tickets of one receive in one call and runs them one after the other, so
    one receive and one call serve up to 10 short tasks. It holds about `window` seconds of work at this
    runner's moving average time per task: floor(window / average) tickets, at least 1 and at most 10. That
    time is what a waiting task waits for each one ahead of it: its share of the call that claimed it and
    its execution; counting the call keeps the batch short when the orchestrator is slow or busy (many
    runners), so work stays spread over them. Tasks that take `window` or longer are fetched one at a time
    (nothing waits here that another runner could start), and so is the first task, before any
    measurement. A window of 0 disables prefetch."""
    if window <= 0 or average_seconds is None:
        limit = 1
    elif average_seconds <= 0:
        limit = PREFETCH_MAX
    else:
        limit = max(1, min(PREFETCH_MAX, math.floor(window / average_seconds)))
    return max(0, limit - buffered)


class ApiClient(Protocol):
    """What a runner needs of its client: the API's transport (`taskfleet.Client` has one). The runner makes
    its own few calls (GET /config, GET /clusters/<slug>, the runner routes), so it does not import the client;
    `Client.runner()` is the one edge from the client to the runner."""

    transport: Transport


class Lifecycle(Protocol):
    """Told when the runner goes busy or idle (ECS task scale-in protection implements it)."""

    def busy(self) -> None: ...
    def idle(self) -> None: ...


@dataclass
class _Pending:
    """A finished (or given back) task's report, not accepted yet."""

    report: dict[str, Any]
    receipt: Receipt
    attempts: int = 0

    @property
    def urgent(self) -> bool:
        """Whether others may wait for it (its subtasks, its failure): sent at once, not with the batch."""
        return bool(self.report.get("subtasks")) or self.report.get("outcome") != Outcome.COMPUTED


@dataclass
class _Claimed:
    """A task claimed for this runner (with others, in one call) and not started yet."""

    payload: dict[str, Any]
    receipt: Receipt
    received_at: float  # monotonic: when its ticket arrived (its visibility timeout runs from there)
    call_share: float  # its share of the claiming call's time (for the time per task)


class TaskRunner:
    def __init__(
        self,
        client: ApiClient,
        cluster: str,
        tasks: Sequence[type[Task]],
        *,
        runner_id: str | None = None,
        lifecycle: Lifecycle | None = None,
        shutdown_grace: float = DEFAULT_SHUTDOWN_GRACE,
        install_signal_handlers: bool = True,
        prefetch_window: float | None = None,
        context: Any = None,
        cache: JobCache | None = None,
    ) -> None:
        self.client = client
        self.cluster = cluster
        self.context = context  # shared by this runner's tasks as `context.runner_context`
        self.cache = cache  # the job caches' root: each task sees its job's group as `context.job_cache`
        self.runner_id = runner_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.shutdown_grace = shutdown_grace
        self.install_signal_handlers = install_signal_handlers
        if prefetch_window is None:
            prefetch_window = float(os.environ.get("TASKFLEET_PREFETCH_WINDOW", PREFETCH_WINDOW_SECONDS))
        self.prefetch_window = prefetch_window
        self._registry: dict[str, list[tuple[str, type[Task]]]] = {}
        for cls in tasks:
            self.register(cls)
        if lifecycle is None:
            lifecycle = _lifecycle_from_environment()
        self.lifecycle = lifecycle
        self.stopping = threading.Event()
        # The last receive got fewer messages than it asked for: the queue had nothing more then. The next
        # report then goes out alone, without a receive first (in a chain, the next ticket is what this
        # very report sends, so that receive would only delay it), and the long poll after it picks up.
        self._drained = False
        self._finished: list[Receipt] = []  # receipts of finished tickets, deleted in batches
        self._finished_since = 0.0
        self._buffer: deque[dict[str, Any]] = deque()  # received runnable tickets not claimed yet (prefetch)
        self._claimed: deque[_Claimed] = deque()  # claimed in one call with the running task, not started yet
        self._average_seconds: float | None = None  # moving average of this runner's time per task
        self._signals = 0
        self._sqs: Any = None
        self._lanes: Lanes | None = None
        self._lanes_checked = 0.0  # when the runner last asked for its lanes (monotonic)
        self._idle = False  # in a long poll since the last task (logged once per idle spell)
        self._api: Transport | None = None
        self.lease_seconds = 60
        self.executed = 0

    # --- registration ----------------------------------------------------------------------------

    def register(self, cls: type[Task]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"{cls!r} is not a Task subclass")
        if cls.execute is Task.execute:
            raise TypeError(f"{cls.__name__} has no execute(self, context) method and cannot be run")
        name, version = task_identifier(cls)
        for registered_version, other in self._registry.get(name, []):
            if other is cls:
                return
            # As in the reference: one class per task name. The newest version runs older minors too.
            raise DuplicateTaskError(
                f"{cls.__qualname__} ({name!r}, {version!r}) and {other.__qualname__} ({name!r},"
                f" {registered_version!r}) share the task name {name!r}; a runner registers one version of"
                " each task (it also runs the older minor versions of its major)"
            )
        self._registry.setdefault(name, []).append((version, cls))

    def task_class_for(self, name: str, version: str) -> type[Task] | None:
        """The registered class that may run a task submitted as (name, version), preferring the newest."""
        candidates = [(v, c) for v, c in self._registry.get(name, []) if can_run(v, version)]
        if not candidates:
            return None
        return max(candidates, key=lambda vc: tuple(int(x) for x in vc[0][1:].split(".")))[1]

    # --- connection ------------------------------------------------------------------------------

    @property
    def slug(self) -> str:
        return self.cluster or "default"

    def _connect(self) -> None:
        if self._sqs is not None:
            return
        import boto3

        api = self.client.transport
        config = dict(api.request("GET", "/config"))
        self.lease_seconds = int(config.get("lease_seconds", 60))
        cluster = dict(api.request("GET", f"/clusters/{self.slug}"))  # NotFoundError: no such cluster
        runner_url = cluster.get("runner_url") or config.get("runner_url")
        self._api = Transport(runner_url) if runner_url else api
        urls = self._lane_urls()
        kwargs: dict[str, Any] = {"region_name": config.get("region") or "us-east-1"}
        parts = urlsplit(urls[0] if urls else "")
        if parts.hostname and not parts.hostname.endswith("amazonaws.com"):
            kwargs["endpoint_url"] = f"{parts.scheme}://{parts.netloc}"
        if config.get("local"):
            kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
        from botocore.config import Config

        kwargs["config"] = Config(
            retries={"max_attempts": 5, "mode": "standard"},
            read_timeout=LONG_POLL_SECONDS + 10,
            max_pool_connections=max(10, 2 * len(urls) + 4),  # a receive per lane, besides deletes and hides
        )
        self._sqs = boto3.session.Session().client("sqs", **kwargs)
        if os.environ.get("TASKFLEET_FAULT_RATE"):  # reliability tests inject AWS errors (aws_faults.py)
            from .aws_faults import install_from_environment

            install_from_environment(self._sqs)
        self._lanes = Lanes(self._sqs, urls)
        log.info(
            "runner %s for %s, cluster %s: %s (%s lane(s))",
            self.runner_id,
            api.base_url,
            self.slug,
            ", ".join(f"{name} {version}" for name, versions in self._registry.items() for version, _ in versions),
            len(urls),
        )

    def _reconnect(self) -> None:
        """Receives keep failing: ask the orchestrator again where the lanes are (the local stack may have
        been restarted, its queues created anew). On failure, go on as before."""
        sqs, lanes, api = self._sqs, self._lanes, self._api
        self._sqs = None
        try:
            self._connect()
        except Exception as err:
            self._sqs, self._lanes, self._api = sqs, lanes, api
            log.warning("cannot reach the orchestrator to look up the lanes again: %s", err)
            return
        log.warning("receives kept failing; looked up the lanes again")
        if lanes is not None:
            lanes.close()

    def _lane_urls(self) -> list[str]:
        """Ask the orchestrator for the lanes this runner may run (creating those of its own identifiers)."""
        assert self._api is not None
        tasks = [[name, version] for name, versions in self._registry.items() for version, _ in versions]
        answer = self._api.request("POST", f"/runner/{self.slug}/lanes", {"runner_id": self.runner_id, "tasks": tasks})
        self._lanes_checked = time.monotonic()
        return [str(lane["url"]) for lane in answer.get("lanes", [])]

    def _refresh_lanes(self, *, falling_idle: bool) -> None:
        since = time.monotonic() - self._lanes_checked
        if self._lanes is None or since < (LANE_REFRESH_IDLE_SECONDS if falling_idle else LANE_REFRESH_SECONDS):
            return
        try:
            self._lanes.update(self._lane_urls())
        except Exception as err:  # the orchestrator is unreachable for now: keep the lanes known
            self._lanes_checked = time.monotonic()
            log.warning("could not look for new lanes: %s", err)

    # --- public loops ----------------------------------------------------------------------------

    def run_forever(self) -> None:
        """Execute tasks until SIGTERM/SIGINT (or `stop()`)."""
        self._loop(until_idle=False)

    def run_all(self) -> None:
        """Execute tasks until none that this runner can run is left in its cluster's queue."""
        self._loop(until_idle=True)

    def stop(self) -> None:
        self.stopping.set()

    # --- the loop --------------------------------------------------------------------------------

    def _loop(self, *, until_idle: bool) -> None:  # noqa: PLR0912 - the runner's one event loop: each branch is a step of a cycle, kept in one place to read in order
        self._connect()
        previous = self._install_signals()
        pending: list[_Pending] = []
        last_looks = 0
        try:
            while True:
                if self.stopping.is_set():
                    self._hand_back_buffered()
                    pending.extend(self._release_claimed())
                    if not pending:
                        break
                if self._claimed and not self.stopping.is_set():
                    # run the tasks claimed together one after the other; their reports go out together
                    # with the next claims, except one that others may wait for, which goes out at once
                    pending.extend(self._run_claimed())
                    if pending and pending[-1].urgent and self._claimed:
                        pending = self._call(pending, [])
                    continue
                candidates: list[dict[str, Any]] = []
                if not pending and self._finished and not self._buffer:
                    self._delete_finished()  # before a long poll, not after it
                if not self.stopping.is_set():
                    candidates = self._candidates(pending, until_idle)
                if self._finished and (
                    not candidates
                    or len(self._finished) >= 10
                    or time.monotonic() - self._finished_since > DELETE_BATCH_SECONDS
                ):
                    self._delete_finished()
                if not pending and not candidates:
                    if self.lifecycle:
                        self.lifecycle.idle()
                    if until_idle and not self.stopping.is_set():
                        # a last look: SQS still counts visible tickets (a FIFO group may hide a retry's new
                        # ticket behind its predecessor for a moment): poll again, within a bound
                        last_looks = last_looks + 1 if self._lanes and self._lanes.backlog_visible() else 0
                        if 0 < last_looks <= RUN_ALL_LAST_LOOKS:
                            continue
                    if until_idle:
                        break
                    continue
                last_looks = 0
                pending = self._call(pending, candidates)
        finally:
            self._hand_back_buffered()
            pending.extend(self._release_claimed())
            if pending:
                self._flush(pending)
            self._delete_finished()
            if self._lanes is not None:  # what receives still open deliver goes straight back
                self._hand_back([m["receipt"] for m in self._lanes.drain(LONG_POLL_SECONDS + 10)])
            if self.lifecycle:
                self.lifecycle.idle()
            self._restore_signals(previous)

    def _candidates(self, pending: list[_Pending], until_idle: bool) -> list[dict[str, Any]]:
        """The tickets to claim in the next call: the next buffered one, else what a receive brings; and
        with it every buffered ticket (up to RUNNER_BATCH), claimed together."""
        first = self._next_buffered()
        if first is None and not (pending and self._drained):
            wait = 0 if pending else (RUN_ALL_POLL_SECONDS if until_idle else LONG_POLL_SECONDS)
            first = self._receive_runnable(wait)
        if first is None:
            return []
        out = [first]
        while self._buffer and len(out) < RUNNER_BATCH:
            out.append(self._buffer.popleft())
        return out

    def _run_claimed(self) -> list[_Pending]:
        """Run the next claimed task; its report. One waiting so long that its ticket could become visible
        before its first heartbeat is given back instead (see BUFFER_MAX_AGE_FRACTION)."""
        claimed = self._claimed.popleft()
        if time.monotonic() - claimed.received_at > self.lease_seconds * BUFFER_MAX_AGE_FRACTION:
            return [self._give_back(claimed)]
        done = self._run(claimed.payload, claimed.receipt, claimed.call_share)
        # Tasks got slower: what no longer fits in the window goes back now (given back before it started,
        # it costs no attempt), for other runners to start; the rest waits here.
        may_wait = prefetch_count(self.prefetch_window, self._average_seconds, 1)
        if len(self._claimed) > may_wait:
            self._flush([self._give_back(self._claimed.pop()) for _ in range(len(self._claimed) - may_wait)])
        return [done] if done is not None else []

    @staticmethod
    def _give_back(claimed: _Claimed) -> _Pending:
        payload = claimed.payload
        report = {
            "task_id": payload["id"],
            "job_id": payload["job_id"],
            "attempt": payload["attempt"],
            "lease": payload["lease"],
            "outcome": Outcome.RELEASED,
            "unstarted": True,  # not an attempt: the orchestrator takes the claim back
        }
        return _Pending(report, claimed.receipt)

    def _release_claimed(self) -> list[_Pending]:
        """Give back every claimed task not started (the runner stops, or the running task outlasts the
        prefetch window): their reports, to send."""
        released = [self._give_back(c) for c in self._claimed]
        self._claimed.clear()
        return released

    def _next_buffered(self) -> dict[str, Any] | None:
        """The next buffered ticket, or None. Tickets buffered too long, and those beyond what the current
        average execution time lets wait (tasks got slower), go back to the queue."""
        max_age = self.lease_seconds * BUFFER_MAX_AGE_FRACTION
        if any(time.monotonic() - m["received_at"] > max_age for m in self._buffer):
            self._hand_back_buffered()
        if not self._buffer:
            return None
        candidate = self._buffer.popleft()
        may_wait = prefetch_count(self.prefetch_window, self._average_seconds, 1)  # besides the candidate
        if len(self._buffer) > may_wait:
            excess = [self._buffer.pop() for _ in range(len(self._buffer) - may_wait)]
            self._hand_back([m["receipt"] for m in excess])
        return candidate

    def _hand_back_buffered(self) -> None:
        """Make the buffered tickets visible to every runner again, at once."""
        receipts = [m["receipt"] for m in self._buffer]
        self._buffer.clear()
        self._hand_back(receipts)

    def _receive_runnable(self, wait: int) -> dict[str, Any] | None:
        """One ticket to run, or None; up to `prefetch_count` of them are received (from each lane), and
        those after the first one are buffered; what arrives beyond that goes back at once."""
        assert self._lanes is not None
        announce = wait == LONG_POLL_SECONDS and not self._idle
        self._refresh_lanes(falling_idle=announce)
        wanted = prefetch_count(self.prefetch_window, self._average_seconds, len(self._buffer))
        self._idle = wait == LONG_POLL_SECONDS
        messages = self._lanes.receive(wait, max(1, wanted), self.stopping, announce=announce)
        if self._lanes.errors:  # SQS unavailable or throttling beyond botocore's retries: wait, go on
            self.stopping.wait(min(LONG_POLL_SECONDS, 0.5 * 2**self._lanes.errors) * random.uniform(0.5, 1))
            if self._lanes.errors % RECONNECT_AFTER_ERRORS == 0:
                self._reconnect()
        if self.stopping.is_set():
            self._hand_back([m["receipt"] for m in messages])
            return None
        runnable = self._accept(messages)
        self._drained = len(messages) < max(1, wanted)
        if len(runnable) > wanted:
            self._hand_back([m["receipt"] for m in runnable[max(1, wanted) :]])
        if not runnable:
            return None
        self._idle = False
        self._buffer.extend(runnable[1:wanted])
        return runnable[0]

    def _accept(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The received tickets this runner can run, parsed; a malformed one is deleted."""
        received_at = time.monotonic()
        runnable: list[dict[str, Any]] = []
        for message in messages:
            try:
                ticket = json.loads(message["Body"])
                name, version = str(ticket["name"]), str(ticket["version"])
            except (ValueError, KeyError, TypeError):
                log.warning("dropping a malformed message from the queue")
                self._delete(message["receipt"])
                continue
            if self.task_class_for(name, version) is None:  # cannot happen with exact lanes; never spin on it
                log.warning("a lane delivered a ticket of %s %s, which this runner cannot run", name, version)
                self._hide(message["receipt"], self.lease_seconds)
                continue
            runnable.append({**message, "ticket": ticket, "received_at": received_at})
        return runnable

    def _call(self, pending: list[_Pending], candidates: list[dict[str, Any]]) -> list[_Pending]:  # noqa: PLR0912 - one API call and every outcome of it (failure, rejection, discard, busy, run)
        """One API call: report `pending` and claim `candidates`; the claimed tasks queue in `_claimed`.
        Returns the reports still to send (the call failed; each is abandoned after REPORT_ATTEMPTS)."""
        assert self._api is not None
        called_at = time.monotonic()
        body: dict[str, Any] = {"runner_id": self.runner_id}
        if pending:
            body["reports"] = [p.report for p in pending]
        claims = []
        for candidate in candidates:
            ticket = candidate["ticket"]
            # a fresh secret per claim: the orchestrator keeps only its hash; reports and heartbeats show it
            claim = {"job_id": ticket["job"], "task_id": ticket["task"], "lease": secrets.token_urlsafe(32)}
            if "ref" in ticket:  # only when the ticket has one
                claim["ref"] = ticket["ref"]
            claims.append(claim)
        if claims:
            body["claims"] = claims
        try:
            response = self._api.request("POST", f"/runner/{self.slug}/next", body)
        except (ApiUnavailableError, ServerError) as err:
            log.warning("orchestrator call failed: %s", err)
            self._hand_back([c["receipt"] for c in candidates])
            kept = []
            for p in pending:
                p.attempts += 1
                if p.attempts < REPORT_ATTEMPTS:
                    kept.append(p)
                else:
                    log.error(
                        "giving up reporting task %s; its ticket will reappear and be repaired", p.report["task_id"]
                    )
            return kept
        except ApiError as err:  # 4xx: the call itself is unacceptable; drop its reports, keep the tickets
            log.error("orchestrator rejected the call: %s", err)
            self._hand_back([c["receipt"] for c in candidates])
            return []
        for p, result in zip(pending, response.get("reports") or [], strict=False):
            self._settle(p, result.get("status", ReportStatus.LEASE_LOST))
        answered = response.get("claims") or []
        share = (time.monotonic() - called_at) / max(1, len(candidates))
        for candidate, claim in zip(candidates, answered, strict=False):
            status = claim.get("status")
            if status == ClaimStatus.DISCARD:
                self._delete(candidate["receipt"])
            elif status == ClaimStatus.BUSY:
                self._hide(candidate["receipt"], max(1, int(claim.get("retry_after_ms", 1000)) // 1000))
            else:
                self._claimed.append(_Claimed(claim["task"], candidate["receipt"], candidate["received_at"], share))
        self._hand_back([c["receipt"] for c in candidates[len(answered) :]])  # unanswered: never happens
        return []

    def _run(self, payload: dict[str, Any], receipt: Receipt, call_share: float) -> _Pending | None:
        cls = self.task_class_for(payload["name"], payload["version"])
        assert cls is not None
        if self.lifecycle:
            self.lifecycle.busy()
        result: list[ExecutionResult] = []
        worker = threading.Thread(
            target=lambda: result.append(execute(cls, payload, self.context, self.cache)),
            daemon=True,
            name=f"task-{payload['id'][:8]}",
        )
        lease_lost = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(payload, receipt, worker, lease_lost), daemon=True, name="heartbeat"
        )
        started = time.monotonic()
        worker.start()
        heartbeat.start()
        stop_seen_at: float | None = None
        while worker.is_alive():
            worker.join(timeout=0.25)
            if self._lanes is not None:  # a receive left open on another lane delivered meanwhile
                self._buffer.extend(self._accept(self._lanes.harvest()))
            # Buffered tickets go back to the queue (and tasks claimed with this one are given back) when the
            # runner stops, and when this task outlasts the prefetch window (it is slower than the average
            # promised): other runners may start them now.
            if (self._buffer or self._claimed) and (
                self.stopping.is_set() or time.monotonic() - started > self.prefetch_window
            ):
                self._hand_back_buffered()
                self._flush(self._release_claimed())
            if self.stopping.is_set():
                stop_seen_at = stop_seen_at or time.monotonic()
                if time.monotonic() - stop_seen_at > self.shutdown_grace:
                    break
        self.executed += 1
        base = {
            "task_id": payload["id"],
            "job_id": payload["job_id"],
            "attempt": payload["attempt"],
            "lease": payload["lease"],
        }
        if worker.is_alive():
            log.warning(
                "task %s did not finish within the %.0f s grace period; giving it back",
                payload["id"],
                self.shutdown_grace,
            )
            return _Pending({**base, "outcome": Outcome.RELEASED}, receipt)
        # what each buffered ticket waits for: its share of the call that claimed it, and its run
        elapsed = call_share + (time.monotonic() - started)
        average = self._average_seconds
        self._average_seconds = elapsed if average is None else average + AVERAGE_WEIGHT * (elapsed - average)
        outcome = result[0]
        log.info(
            "task %s %s (attempt %s) %s in %.2f s",
            payload["name"],
            payload["id"],
            payload["attempt"],
            "computed" if isinstance(outcome, Success) else f"failed ({getattr(outcome, 'error_type', 'error')})",
            time.monotonic() - started,
        )
        if isinstance(outcome, Success):
            report = {
                **base,
                "outcome": Outcome.COMPUTED,
                "display": outcome.display,
                "subtasks": [s.wire() for s in outcome.subtasks],
                "progress": outcome.progress or None,
            }
        else:
            assert isinstance(outcome, Failure)
            # the exception type at INFO (above); its message (which often carries input values) only at DEBUG
            log.debug("task %s failed: %s", payload["id"], outcome.message)
            report = {
                **base,
                "outcome": Outcome.FAILED,
                "display": outcome.display,
                "failure": {"message": outcome.message, "traceback": outcome.traceback},
                "progress": outcome.progress or None,
            }
        return _Pending({k: v for k, v in report.items() if v is not None}, receipt)

    def _heartbeat(
        self, payload: dict[str, Any], receipt: Receipt, worker: threading.Thread, lease_lost: threading.Event
    ) -> None:
        interval = max(0.5, self.lease_seconds / 3)
        assert self._api is not None
        while not lease_lost.is_set():
            worker.join(timeout=interval)
            if not worker.is_alive():
                return
            try:
                self._api.request(
                    "POST",
                    f"/runner/{self.slug}/extend",
                    {
                        "runner_id": self.runner_id,
                        "task_id": payload["id"],
                        "job_id": payload["job_id"],
                        "attempt": payload["attempt"],
                        "lease": payload["lease"],
                    },
                )
                self._hide(receipt, self.lease_seconds)
            except ConflictError:
                log.warning("lease on task %s lost; its result will be rejected", payload["id"])
                lease_lost.set()
            except Exception as err:
                log.warning("lease extension failed: %s", err)

    def _settle(self, pending: _Pending, status: str) -> None:
        if status in (ReportStatus.OK, ReportStatus.FAILED):
            if not self._finished:
                self._finished_since = time.monotonic()
            self._finished.append(pending.receipt)
        elif status == ReportStatus.REQUEUED:
            self._hand_back([pending.receipt])
        else:
            log.warning("report for task %s was not accepted (%s)", pending.report["task_id"], status)

    def _flush(self, pending: list[_Pending]) -> None:
        """Send these reports now, without claiming anything (before the loop ends, or given-back tasks)."""
        remaining = pending
        while remaining:
            remaining = self._call(remaining, [])

    # --- SQS helpers (each receipt knows its lane) ---------------------------------------------------

    def _delete(self, receipt: Receipt) -> None:
        try:
            self._sqs.delete_message(QueueUrl=receipt.lane, ReceiptHandle=receipt.handle)
        except Exception as err:
            log.debug("delete failed: %s", err)

    def _delete_finished(self) -> None:
        receipts, self._finished = self._finished, []
        for lane, handles in _by_lane(receipts):
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
            try:
                self._sqs.delete_message_batch(QueueUrl=lane, Entries=entries)
            except Exception as err:  # undeleted tickets reappear and are discarded
                log.debug("batch delete failed: %s", err)

    def _hand_back(self, receipts: Iterable[Receipt]) -> None:
        """Make these tickets visible again at once (to every runner of their lane)."""
        self._hide_many(list(receipts), 0)

    def _hide_many(self, receipts: list[Receipt], seconds: float) -> None:
        for lane, handles in _by_lane(receipts):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": int(seconds)} for i, h in enumerate(handles)
            ]
            try:
                self._sqs.change_message_visibility_batch(QueueUrl=lane, Entries=entries)
            except Exception as err:
                log.debug("visibility change failed: %s", err)

    def _hide(self, receipt: Receipt, seconds: float) -> None:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=receipt.lane, ReceiptHandle=receipt.handle, VisibilityTimeout=int(seconds)
            )
        except Exception as err:
            log.debug("visibility change failed: %s", err)

    # --- signals ---------------------------------------------------------------------------------

    def _install_signals(self) -> dict[int, Any]:
        if not self.install_signal_handlers or threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _restore_signals(self, previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting at once")
            os._exit(128 + signum)
        log.info(
            "signal %s: finishing the current task (grace %.0f s), taking no new work", signum, self.shutdown_grace
        )
        self.stopping.set()


def _by_lane(receipts: list[Receipt]) -> list[tuple[str, list[str]]]:
    """Receipts grouped by lane, in batches of at most 10 (SQS's batch limit)."""
    lanes: dict[str, list[str]] = defaultdict(list)
    for receipt in receipts:
        lanes[receipt.lane].append(receipt.handle)
    return [(lane, handles[i : i + 10]) for lane, handles in lanes.items() for i in range(0, len(handles), 10)]


def _lifecycle_from_environment() -> Lifecycle | None:
    try:
        from .ecs_protection import from_environment
    except ImportError:
        return None
    return from_environment()
