"""Reports: a runner's account of one task attempt (computed with subtasks, failed, or released).

Each is a compare-and-set on the task's state and attempt, so a late runner never overwrites a newer
attempt's result, and each recognizes its own earlier write (a retried report) and carries on from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from taskfleet import rules

from .. import faults
from ..dal.dynamo import Item
from ..dal.repository import Holder, Table
from . import overlap
from .clusters import Clusters
from .contracts import Report, ReportResult, lease_hash
from .dispatch import Dispatcher
from .errors import Conflict, InvalidRequest, NotFound
from .jobs import Jobs
from .latches import plan_sibling_latch, window_open
from .lease import check_holder
from .propagation import Propagation
from .siblings import build_siblings
from .states import ACTIVE_JOB_STATES, Outcome, Reason, ReportStatus, TaskState

LEASE_LOST = ReportResult(status=ReportStatus.LEASE_LOST, code=Reason.LEASE_LOST)


def _lease_lost(code: Reason, message: str) -> ReportResult:
    return ReportResult(status=ReportStatus.LEASE_LOST, code=code, message=message)


def _already(status: ReportStatus) -> ReportResult:
    return ReportResult(status=status, code=Reason.ALREADY_RECORDED, message="already recorded")


def holder_of(report: Report) -> Holder:
    return Holder(report.job_id, report.cluster, lease_hash(report.lease))


def own_attempt(task: Item, report: Report) -> bool:
    """Whether `task` (as found after a refused write) is the reported attempt, written by this very lease:
    a retried report, recognised by its token. A task of another cluster or job is refused outright."""
    check_holder(task, report.cluster, report.job_id)
    return task.get("attempt") == report.attempt and task.get("lease_hash") == lease_hash(report.lease)


def _commit_attributes(report: Report, now: int) -> dict[str, Any]:
    """What a COMPUTED report sets on its task (its children's latch is added when it has any)."""
    commit: dict[str, Any] = {
        "state": TaskState.COMPUTED,
        "finished_at": now,
        "children": len(report.subtasks),
        "completed": not report.subtasks,
    }
    if report.display is not None:
        commit["display"] = rules.truncate(report.display, rules.MAX_DISPLAY_CHARS)
    if report.progress:
        commit["progress"] = [list(p) for p in report.progress]
    return commit


@dataclass(kw_only=True)
class Reports:
    table: Table
    jobs: Jobs
    clusters: Clusters
    dispatcher: Dispatcher
    propagation: Propagation
    clock: Callable[[], int]
    dispatch_window: int  # in latch buckets

    def report_many(self, reports: Sequence[Report], *, jobs: Mapping[str, Future[Item | None]]) -> list[ReportResult]:
        """Several reports of one runner call, in order (`jobs`: the reads of their jobs, started by the
        caller). Tasks they complete propagate together at the end (`Propagation.completed_many`): one
        write for the siblings of one bucket. A failure halfway fails the call; the runner sends the reports
        again, and each recognises its own earlier write and redoes what follows from it."""
        if len(reports) == 1:
            return [self.report(reports[0], job=jobs.get(reports[0].job_id))]
        completed: list[tuple[Item, bool]] = []
        results = [self.report(r, job=jobs.get(r.job_id), completed=completed) for r in reports]
        if completed:
            self.propagation.completed_many(completed)
        return results

    def report(
        self,
        report: Report,
        *,
        job: Future[Item | None] | None = None,
        completed: list[tuple[Item, bool]] | None = None,
    ) -> ReportResult:
        """`job`: the read of the job's brief item, started by the caller (it overlaps the commit).
        `completed`: where a task this report completes goes, with whether its job is active, for the caller
        to propagate (else it propagates now)."""
        job_read = job if job is not None else overlap.start(lambda: self.jobs.brief(report.job_id))
        if report.outcome == Outcome.COMPUTED:
            try:
                return self._computed(report, job_read, completed)
            except (rules.RuleViolation, InvalidRequest, NotFound) as err:
                # The task submitted subtasks that cannot exist: that is the task's own failure.
                report = replace(
                    report,
                    outcome=Outcome.FAILED,
                    subtasks=(),
                    failure_message=f"invalid subtasks: {getattr(err, 'message', str(err))}",
                    failure_traceback=None,
                )
        found = job_read.result()
        if found is None:
            return _lease_lost(Reason.UNKNOWN_JOB, "unknown job")
        if report.outcome == Outcome.FAILED:
            return self._failed(report, found)
        if report.outcome == Outcome.RELEASED:
            return self._released(report)
        raise InvalidRequest(f"unknown outcome {report.outcome!r}")

    def _released(self, report: Report) -> ReportResult:
        """Given back unfinished (the runner stops): QUEUED again, no retry counted. Given back before it
        started (claimed with others, its turn did not come in time): its claim is taken back too, so that
        the attempt it was to be is the next claim's."""
        result = self.table.compare_and_set(
            report.task_id,
            state=TaskState.RUNNING,
            attempt=report.attempt,
            set={"state": TaskState.QUEUED},
            add={"attempt": -1} if report.unstarted else None,
            end_lease=True,
            holder=holder_of(report),
        )
        old = result.item
        if result.ok:
            return ReportResult(status=ReportStatus.REQUEUED)
        after = report.attempt - 1 if report.unstarted else report.attempt  # the attempt it leaves behind
        if (
            old is not None
            and old["state"] == TaskState.QUEUED
            and int(old.get("attempt", 0)) == after
            and own_attempt({**old, "attempt": report.attempt}, report)  # (its lease token's hash stays)
        ):
            return ReportResult(status=ReportStatus.REQUEUED)  # a retried give-back
        return LEASE_LOST

    def _computed(
        self, report: Report, job_read: Future[Item | None], completed: list[tuple[Item, bool]] | None
    ) -> ReportResult:
        """Write the subtasks (or their specs), commit RUNNING -> COMPUTED, dispatch what is ready and, for
        a task without subtasks, propagate its completion. The job's read overlaps the commit: the commit is
        conditional on the task's own job (and lease), and nothing after it happens without the job."""
        if len(report.subtasks) > rules.MAX_SUBTASKS_PER_REPORT:
            raise InvalidRequest(f"a task may submit at most {rules.MAX_SUBTASKS_PER_REPORT} subtasks")
        now = self.clock()
        commit = _commit_attributes(report, now)
        ready: list[Item] = []
        if report.subtasks:
            parent = self.table.get_task(report.task_id)
            if parent is None:
                return _lease_lost(Reason.UNKNOWN_TASK, "unknown task")
            if parent["state"] == TaskState.RUNNING and own_attempt(parent, report):
                ready = self._write_subtasks(report, parent, commit, now)
        else:
            commit.update({"children_total": 0, "children_bucketed": False})
        faults.point("complete.before_commit")
        result = self.table.compare_and_set(
            report.task_id,
            state=TaskState.RUNNING,
            attempt=report.attempt,
            set=commit,
            remove=() if report.progress else ("progress",),  # the last reported attempt's values stand
            end_lease=True,
            holder=holder_of(report),
        )
        job = job_read.result()
        if job is None:
            return _lease_lost(Reason.UNKNOWN_JOB, "unknown job")
        if not result.ok:
            old = result.item
            if old and own_attempt(old, report) and old["state"] == TaskState.COMPUTED:
                self.propagation.repair(old, job)  # a retried report: redo what may not have happened
                return _already(ReportStatus.OK)
            return _lease_lost(Reason.LEASE_LOST, "the lease on this task attempt is lost")
        task = result.item
        assert task is not None
        faults.point("complete.after_commit")
        active = job["state"] in ACTIVE_JOB_STATES
        if active:
            self.dispatcher.send(ready)
        if task.get("completed") and completed is not None:
            completed.append((task, active))
        elif task.get("completed"):
            self.propagation.completed(task, active)  # counts it in the job's figures too
        else:
            self.propagation.stats.record(task)
        return ReportResult(status=ReportStatus.OK)

    def _write_subtasks(self, report: Report, parent: Item, commit: dict[str, Any], now: int) -> list[Item]:
        """Write the subtasks' rows before the commit (nothing is dispatched yet, so a rewrite is harmless);
        add their latch and dispatch window to `commit`; return the subtasks whose tickets go out."""
        siblings = build_siblings(
            report.subtasks,
            job_id=parent["job_id"],
            parent=parent,
            parent_attempt=report.attempt,
            default_cluster=parent["cluster"],
            now=now,
            cluster_slug=self.clusters.slug,
        )
        try:
            self.clusters.ensure_lanes(
                (self.clusters.slug(s.cluster or parent["cluster"]), s.name, s.version) for s in report.subtasks
            )
        except Conflict as err:  # the lane limit: the task's own failure, like any impossible subtask
            raise InvalidRequest(err.message) from err
        latch = plan_sibling_latch("children", len(report.subtasks))
        commit.update(latch.owner_attributes)
        ready = siblings.ready
        if len(report.subtasks) > self.dispatch_window * rules.LATCH_BUCKET:
            commit["window"] = self.dispatch_window
            ready = [t for t in ready if window_open(commit, int(t["index"]))]
        owner_rows = [
            self.table.sibling_bucket_row(parent["job_id"], report.task_id, k, n)
            for k, n in latch.bucket_totals.items()
        ]
        self.table.put_rows([*siblings.rows, *owner_rows])
        return ready

    def _failed(self, report: Report, job: Item) -> ReportResult:
        """Retries left: QUEUED again (the ticket goes back by the runner). Else FAILED, and the job fails;
        or, for an optional task, FAILED_OPTIONAL, and the job goes on."""
        now = self.clock()
        task = self.table.get_task(report.task_id)
        if task is None:
            return _lease_lost(Reason.UNKNOWN_TASK, "unknown task")
        failure = {
            "message": rules.truncate(report.failure_message or "task failed", rules.MAX_FAILURE_CHARS),
            "traceback": rules.truncate(report.failure_traceback or "", rules.MAX_FAILURE_CHARS) or None,
            "attempt": report.attempt,
            "at": now,
        }
        if not own_attempt(task, report):
            return LEASE_LOST
        if task["state"] != TaskState.RUNNING:
            return self._failed_before(report, task, job)
        retry = int(task.get("retry_count", 0)) - int(task.get("retry_base", 0)) < int(task.get("max_retries", 0))
        update: dict[str, Any] = {"failure": failure}
        add: dict[str, Any] = {}
        if report.display is not None:
            update["display"] = rules.truncate(report.display, rules.MAX_DISPLAY_CHARS)
        if report.progress:
            update["progress"] = [list(p) for p in report.progress]
        if retry:
            update.update({"state": TaskState.QUEUED, "retry_count": int(task.get("retry_count", 0)) + 1})
            add["compute_prev_ms"] = max(0, now - int(task.get("started_at") or now))  # this attempt's time
        else:
            final = TaskState.FAILED_OPTIONAL if task.get("optional_root") else TaskState.FAILED
            update.update({"state": final, "finished_at": now})
        result = self.table.compare_and_set(
            report.task_id,
            state=TaskState.RUNNING,
            attempt=report.attempt,
            set=update,
            add=add,
            remove=() if report.progress else ("progress",),
            end_lease=True,
            holder=holder_of(report),
        )
        if not result.ok:
            old = result.item
            # unless it is this request's own write, retried by botocore after a lost response
            if old is None or not own_attempt(old, report) or old.get("state") != update["state"]:
                return LEASE_LOST
        if retry:
            return ReportResult(status=ReportStatus.REQUEUED)
        faults.point("fail.before_job_update")
        self.propagation.repair(result.item or {**task, **update}, job)
        return ReportResult(status=ReportStatus.FAILED)

    def _failed_before(self, report: Report, task: Item, job: Item) -> ReportResult:
        """A failure report of this lease's attempt, which is no longer RUNNING: a replay of one already
        recorded (redo its effect), or a late report after the attempt ended otherwise."""
        if task["state"] in (TaskState.FAILED, TaskState.FAILED_OPTIONAL):
            self.propagation.repair(task, job)
            return _already(ReportStatus.FAILED)
        if task["state"] == TaskState.QUEUED:
            return _already(ReportStatus.REQUEUED)
        return LEASE_LOST
