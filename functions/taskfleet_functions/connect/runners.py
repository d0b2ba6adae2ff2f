"""TaskService for Tilebox SDK runners: NextTask, TaskFailed, ExtendTaskLease on taskfleet's claims and reports.

A taskfleet runner receives its tickets from SQS itself and names job, attempt and lease in every call. A
Tilebox runner does neither: it asks for "a task I can run" and reports by task id alone. So this side does
the runner's part of the queue protocol on the runner's behalf (docs/architecture.md, "Tilebox SDK clients"):
- NextTask receives a ticket from the runner's lanes (a short poll, then a wait of at most RECEIVE_WAIT),
  hidden for the lease from the start, and claims its task with the same conditional write as any claim:
  the ticket stays the watchdog that hands the task to another runner if this one dies.
- The claim's write stores, on the task item, a nonce (the ticket's message id) and the ticket's receipt. The
  lease token is HMAC(bearer token, task id : nonce): only the key's holder can make it, nothing secret is
  stored, and a claim retried after a lost answer (the same message, received again) is the same claim.
- A report (ComputedTask, TaskFailed) reads the task item, rebuilds that token and reports as any runner
  does. Whatever the engine answers (a duplicate, a stale attempt), the call answers 200: the SDK retries
  an error forever or stops the runner, and neither helps (docs/notes/tilebox-connect-findings.md, section 3).
- Leases: the SDK extends leases over gRPC only, never over HTTP/1.1, so a claim gets the key's lease (or
  TASKFLEET_CONNECT_LEASE_SECONDS) at once, and its "wait before extending" is that same lease.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from taskfleet import rules

from ..dal.queues import Ticket
from ..dal.repository import Holder
from ..orchestrator.clusters import Identifier
from ..orchestrator.contracts import Claim, Report, lease_hash
from ..orchestrator.errors import Conflict, DomainError, Forbidden
from ..orchestrator.keys import FULL
from ..orchestrator.states import ClaimStatus, Outcome, ReportStatus, TaskState
from . import convert
from .proto import workflows_core_pb2 as core
from .proto import workflows_task_pb2 as task_pb
from .wire import ConnectError, uuid_of

if TYPE_CHECKING:
    from ..orchestrator import Orchestrator
    from .service import Caller

logger = Logger(child=True)

RECEIVE_WAIT = 1  # seconds NextTask waits for a ticket before answering idle (run_all stops at an idle answer)
LANES_TTL = 10.0  # seconds a runner's lanes are remembered in this process (each lookup writes `runner_seen_at`)
TICKET_MARGIN = 60  # a claimed ticket stays hidden this much longer than the lease (at most twice the lease)
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="connect-receive")


def ticket_seconds(lease_seconds: int) -> int:
    """How long a claimed ticket stays hidden: the lease and a margin (at most the lease again)."""
    return lease_seconds + min(TICKET_MARGIN, lease_seconds)


def lease_token(token: str, task_id: str, nonce: str) -> str:
    """The lease token of a Connect claim: made from the caller's bearer token, never stored."""
    return hmac.new(token.encode(), f"{task_id}:{nonce}".encode(), hashlib.sha256).hexdigest()


class TaskService:
    def __init__(self, engine: Orchestrator) -> None:
        self.engine = engine
        self.settings = engine.settings
        self._lanes: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    # --- RPCs -------------------------------------------------------------------------------------------
    def next_task(self, req: Any, caller: Caller) -> task_pb.NextTaskResponse:
        if req.HasField("computed_task"):
            self._computed(req.computed_task, caller)
        if not req.HasField("next_task_to_run"):
            return self._idle()
        wanted = req.next_task_to_run
        slug = self._cluster(wanted.cluster_slug, caller)
        registered = list(dict.fromkeys((i.name, i.version) for i in wanted.identifiers))
        found = self._claim_next(slug, registered, caller) if registered else None
        return task_pb.NextTaskResponse(next_task=found) if found is not None else self._idle()

    def task_failed(self, req: Any, caller: Caller) -> task_pb.TaskStateResponse:
        task_id = uuid_of(req.task_id, "task_id")
        item = self._held(task_id, caller)
        if item is None:
            return task_pb.TaskStateResponse()
        lines = req.display.split("\n", 1)
        if req.was_workflow_error:  # the task raised: a failure (retried while it has retries)
            outcome, message = Outcome.FAILED, lines[-1] or "task failed"
        else:  # the runner could not run it (stopping, unknown task): given back, no retry counted
            outcome, message = Outcome.RELEASED, None
        self._report(
            item,
            caller,
            outcome=outcome,
            display=lines[0] or None,
            failure_message=message,
            progress=convert.progress_tuples(req.progress_updates),
        )
        after = self.engine.table.get_task(task_id) or {}
        return task_pb.TaskStateResponse(state=convert.TASK_STATES.get(str(after.get("state")), 0))  # type: ignore[arg-type]

    def extend_lease(self, req: Any, caller: Caller) -> core.TaskLease:
        task_id = uuid_of(req.task_id, "task_id")
        item = self._held(task_id, caller)
        if item is None or item.get("state") != TaskState.RUNNING:
            raise ConnectError("failed_precondition", "the lease on this task is lost")
        most = self._lease_seconds(caller)
        seconds = max(1, min(most, req.requested_lease.seconds or most))
        holder = Holder(str(item["job_id"]), str(item["cluster"]), lease_hash(self._token(item, caller)))
        try:
            self.engine.extend(task_id, int(item["attempt"]), holder, seconds)
        except Conflict:
            raise ConnectError("failed_precondition", "the lease on this task is lost") from None
        self._hide(item, ticket_seconds(seconds))
        lease = core.TaskLease()
        lease.lease.CopyFrom(convert.duration(seconds))
        lease.recommended_wait_until_next_extension.CopyFrom(convert.duration(seconds))
        return lease

    # --- claims -----------------------------------------------------------------------------------------
    def _cluster(self, slug: str, caller: Caller) -> str:
        slug = slug or rules.DEFAULT_CLUSTER
        if caller.key.role == FULL:  # every cluster, if it exists
            return self.engine.clusters.slug(rules.check_slug(slug))
        if slug != caller.key.cluster:
            raise ConnectError(
                "permission_denied", f"this runner key reaches cluster {caller.key.cluster!r} only, not {slug!r:.60}"
            )
        return slug

    def _lease_seconds(self, caller: Caller) -> int:
        return int(caller.key.lease_seconds or self.settings.connect_lease_seconds)

    def _idle(self) -> task_pb.NextTaskResponse:
        """An idle answer always carries a pause: the SDK adds no jitter, so it is added here (±50 %)."""
        pause = self.settings.connect_idle_seconds * random.uniform(0.5, 1.5)
        response = task_pb.NextTaskResponse()
        response.idling.suggested_idling_duration.CopyFrom(convert.duration(pause))
        return response

    def _lane_urls(self, slug: str, registered: list[tuple[str, str]]) -> list[str]:
        key = (slug, tuple(sorted(registered)))
        now = time.monotonic()
        with self._lock:
            cached = self._lanes.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            lanes = self.engine.runner_lanes(slug, [Identifier(n, v) for n, v in registered])
        except rules.RuleViolation as err:
            raise ConnectError("invalid_argument", f"a registered task: {err}") from None
        urls = [str(lane["url"]) for lane in lanes]
        with self._lock:
            self._lanes[key] = (now + LANES_TTL, urls)
        return urls

    def _receive_one(self, url: str, wait: int, hidden: int) -> list[tuple[str, dict[str, Any]]]:
        try:
            received = self.engine.queues.receive(url, max_messages=1, wait=wait, visibility=hidden)
            return [(url, message) for message in received]
        except Exception as err:  # one lane failing must not fail the poll
            logger.warning("receive failed", extra={"error_type": type(err).__name__})
            return []

    def _receive(self, urls: list[str], hidden: int) -> list[tuple[str, dict[str, Any]]]:
        """A ticket from some lane, received hidden for `hidden` seconds (the claim's lease and margin: no
        second request to hide it once claimed): short polls one lane after the other, from a random one on
        (no lane starves), until one delivers; then a wait of RECEIVE_WAIT on every lane at once. Tickets
        beyond the first (several lanes delivered in that wait) are handed back by the caller: each receive
        counts towards a ticket's redrive limit, so lanes are not all asked at once when one answer will do."""
        start = random.randrange(len(urls))
        for url in urls[start:] + urls[:start]:
            found = self._receive_one(url, 0, hidden)
            if found:
                return found
        waits = [_pool.submit(self._receive_one, url, RECEIVE_WAIT, hidden) for url in urls]
        return [item for future in waits for item in future.result()]

    def _claim_next(self, slug: str, registered: list[tuple[str, str]], caller: Caller) -> core.Task | None:
        urls = self._lane_urls(slug, registered)
        if not urls:
            return None
        seconds = self._lease_seconds(caller)
        received = self._receive(urls, ticket_seconds(seconds))
        found: core.Task | None = None
        for i, (url, message) in enumerate(received):
            try:
                found = self._claim(slug, registered, caller, url, message, seconds=seconds)
            except Exception:  # the call fails (and is retried); no ticket may stay hidden for a lease
                for lane, unclaimed in received[i:]:
                    self._quietly(self.engine.queues.change_visibility, lane, unclaimed["ReceiptHandle"], 0)
                raise
            if found is not None:  # one task per answer: the others go back to their lanes at once
                for lane, other in received[i + 1 :]:
                    self._quietly(self.engine.queues.change_visibility, lane, other["ReceiptHandle"], 0)
                break
        return found

    def _claim(
        self,
        slug: str,
        registered: list[tuple[str, str]],
        caller: Caller,
        url: str,
        message: dict[str, Any],
        *,
        seconds: int,
    ) -> core.Task | None:
        receipt = str(message["ReceiptHandle"])
        queues = self.engine.queues
        try:
            ticket = Ticket.parse(message["Body"])
        except (ValueError, KeyError, TypeError, IndexError):
            logger.warning("dropping a malformed ticket")
            self._quietly(queues.delete_messages, url, [receipt])
            return None
        identifier = convert.best_identifier(registered, ticket.name, ticket.version)
        if identifier is None:  # a lane serves one identifier, which this runner registered: not expected
            self._quietly(queues.change_visibility, url, receipt, 0)
            return None
        # The ticket's message id: a claim retried after a lost answer receives the same message again, makes
        # the same lease token and is recognised as this key's own claim (RUN); a duplicate ticket of a task
        # running elsewhere is another message, so its claim finds the task busy.
        nonce = str(message.get("MessageId") or secrets.token_hex(8))
        claim = Claim(
            job_id=ticket.job_id,
            task_id=ticket.task_id,
            cluster=slug,
            lease=lease_token(caller.token, ticket.task_id, nonce),
            ref=ticket.ref,
            lease_seconds=seconds,
            note=(("connect_nonce", nonce), ("connect_lane", url), ("connect_receipt", receipt)),
        )
        try:
            result = self.engine.claim(claim, runner_id(caller))
        except (Forbidden, Conflict) as err:
            logger.warning("claim refused", extra={"code": err.code})
            self._quietly(queues.delete_messages, url, [receipt])
            return None
        if result.status == ClaimStatus.DISCARD:
            self._quietly(queues.delete_messages, url, [receipt])
            return None
        if result.status == ClaimStatus.BUSY:
            self._quietly(queues.change_visibility, url, receipt, max(1, result.retry_after_ms // 1000))
            return None
        assert result.task is not None  # its ticket was received hidden for the lease and margin already
        job = {
            "job_id": ticket.job_id,
            "name": result.task.get("job_name"),
            "state": "RUNNING",
            "trace_parent": result.task.get("job_trace_parent"),
        }
        return convert.task_message(result.task, job, identifier, seconds)

    # --- reports ----------------------------------------------------------------------------------------
    def _held(self, task_id: str, caller: Caller) -> dict[str, Any] | None:
        """The task item a report names, if it is this key's cluster's and was claimed over Connect."""
        item = self.engine.table.get_task(task_id)
        if item is None or not item.get("connect_nonce"):
            logger.info("report of a task not claimed here", extra={"task_id": task_id})
            return None
        if caller.key.role != FULL and item.get("cluster") != caller.key.cluster:
            raise ConnectError("permission_denied", f"task {task_id} belongs to another cluster than this key's")
        return item

    @staticmethod
    def _token(item: dict[str, Any], caller: Caller) -> str:
        return lease_token(caller.token, str(item["task_id"]), str(item["connect_nonce"]))

    def _computed(self, computed: Any, caller: Caller) -> None:
        task_id = uuid_of(computed.id, "computed_task.id")
        item = self._held(task_id, caller)
        if item is None:
            return
        progress = convert.progress_tuples(computed.progress_updates)
        try:
            subtasks = tuple(convert.task_specs(computed.sub_tasks, default_cluster=str(item["cluster"])))
        except rules.RuleViolation as err:  # the task failed as far as taskfleet can tell: say why
            self._report(
                item, caller, outcome=Outcome.FAILED, failure_message=f"invalid subtasks: {err}", progress=progress
            )
            return
        self._report(
            item,
            caller,
            outcome=Outcome.COMPUTED,
            display=computed.display or None,
            subtasks=subtasks,
            progress=progress,
        )

    def _report(self, item: dict[str, Any], caller: Caller, *, outcome: Outcome, **fields: Any) -> None:
        report = Report(
            task_id=str(item["task_id"]),
            job_id=str(item["job_id"]),
            attempt=int(item["attempt"]),
            outcome=outcome,
            cluster=str(item["cluster"]),
            lease=self._token(item, caller),
            **fields,
        )
        try:
            (result,), _ = self.engine.next_many([report], [], runner_id(caller))
        except DomainError as err:  # a refused report changes nothing; the SDK must not retry it forever
            logger.warning("report refused", extra={"code": err.code, "task_id": report.task_id})
            return
        if result.status in (ReportStatus.OK, ReportStatus.FAILED):
            self._quietly(self.engine.queues.delete_messages, str(item["connect_lane"]), [str(item["connect_receipt"])])
        elif result.status == ReportStatus.REQUEUED:
            self._hide(item, 0)

    def _hide(self, item: dict[str, Any], seconds: int) -> None:
        self._quietly(
            self.engine.queues.change_visibility, str(item["connect_lane"]), str(item["connect_receipt"]), seconds
        )

    @staticmethod
    def _quietly(action: Any, *args: Any) -> None:
        """A ticket housekeeping call whose failure only delays: a ticket not deleted or not hidden comes back,
        and its claim is then discarded or found busy."""
        try:
            action(*args)
        except Exception as err:
            logger.info("ticket call failed", extra={"error_type": type(err).__name__})


def runner_id(caller: Caller) -> str:
    return f"tilebox:{caller.key.key_id}"
