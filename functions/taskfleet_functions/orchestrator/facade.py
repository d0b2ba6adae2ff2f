"""The orchestrator as the handlers see it: one object, one method per API operation. It wires the
modules that do the work (see __init__.py) and holds nothing of its own but their shared parts."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from taskfleet import rules

from ..dal.dynamo import Dynamo, Item
from ..dal.queues import Queues
from ..dal.repository import Holder, Page, Table
from ..dal.runner_urls import RunnerUrls
from ..dal.schedules import NoSchedules, Schedules
from ..settings import Settings
from . import overlap
from .automations import Automations
from .clusters import Clusters, Identifier
from .contracts import Claim, ClaimResult, Report, ReportResult, TaskSpec, now_ms
from .dispatch import Dispatcher
from .errors import Conflict, Forbidden
from .jobs import Jobs
from .keys import Keys
from .lease import Leases
from .propagation import Propagation
from .recovery import Recovery
from .report import Reports
from .states import ClaimStatus, Outcome, Reason
from .stats import Statistics
from .submit import Submission
from .tree import Tree

FIGURE_READERS = 16  # concurrent reads of a list page's job figures


class Orchestrator:
    def __init__(
        self,
        db: Dynamo,
        queues: Queues,
        settings: Settings,
        clock: Callable[[], int] = now_ms,
        runner_urls: RunnerUrls | None = None,
        *,
        schedules: Schedules | None = None,
        bucket_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.db = db
        self.queues = queues
        self.settings = settings
        self.clock = clock
        self.table = Table(db, retention_seconds=int(settings.retention_days * 86_400))
        self.clusters = Clusters(self.table, queues, settings, clock, runner_urls)
        self.jobs = Jobs(self.table, clock)
        self.tree = Tree(self.table)
        self.dispatcher = Dispatcher(clusters=self.clusters, queues=queues, tree=self.tree)
        self.stats = Statistics(self.table)
        self.propagation = Propagation(
            table=self.table, jobs=self.jobs, dispatcher=self.dispatcher, tree=self.tree, stats=self.stats, clock=clock
        )
        self.leases = Leases(
            table=self.table,
            jobs=self.jobs,
            tree=self.tree,
            propagation=self.propagation,
            settings=settings,
            clock=clock,
        )
        self.reports = Reports(
            table=self.table,
            jobs=self.jobs,
            clusters=self.clusters,
            dispatcher=self.dispatcher,
            propagation=self.propagation,
            clock=clock,
            dispatch_window=rules.DISPATCH_WINDOW // rules.LATCH_BUCKET,
        )
        self.recovery = Recovery(
            table=self.table,
            queues=queues,
            jobs=self.jobs,
            tree=self.tree,
            dispatcher=self.dispatcher,
            propagation=self.propagation,
            stats=self.stats,
            leases=self.leases,
            clock=clock,
            outbox_ms=int(settings.outbox_grace_seconds * 1000),
        )
        self.submission = Submission(
            table=self.table,
            clusters=self.clusters,
            dispatcher=self.dispatcher,
            settings=settings,
            clock=clock,
            resume=self.recovery.resume,
        )
        self.automations = Automations(
            table=self.table,
            clusters=self.clusters,
            jobs=self.jobs,
            schedules=schedules or NoSchedules(),
            settings=settings,
            clock=clock,
            submit=self.submission.submit,
            bucket_exists=bucket_exists or (lambda _bucket: False),
        )
        self.keys = Keys(
            table=self.table, clusters=self.clusters, clock=clock, cache_seconds=settings.key_cache_seconds
        )

    # --- clusters ---------------------------------------------------------------------------------------
    def cluster(self, slug: str) -> Item:
        return self.clusters.get(slug)

    def create_cluster(self, name: str, *, description: str | None = None, slug: str | None = None) -> Item:
        return self.clusters.create(name, description=description, slug=slug)

    def update_cluster(self, slug: str, *, name: str | None = None, description: str | None = None) -> Item:
        return self.clusters.update(slug, name=name, description=description)

    def list_clusters(self) -> list[Item]:
        return self.clusters.all()

    def cluster_backlog(self, slug: str) -> list[dict[str, Any]]:
        """Each lane of the cluster (task name and version) with its backlog: tickets waiting or in flight."""
        self.clusters.get(slug)
        return [
            {"name": lane["name"], "version": lane["version"], "backlog": self.queues.backlog(str(lane["url"]))}
            for lane in self.table.lanes(slug)
        ]

    def delete_cluster(self, slug: str, *, force: bool = False) -> None:
        self.clusters.delete(slug, force=force)

    # --- jobs -------------------------------------------------------------------------------------------
    def submit_job(
        self,
        name: str,
        tasks: Sequence[TaskSpec],
        cluster: str | None = None,
        max_retries: int = 0,
        client_token: str | None = None,
        *,
        trace_parent: str | None = None,
    ) -> Item:
        return self.submission.submit(
            name, tasks, cluster=cluster, max_retries=max_retries, client_token=client_token, trace_parent=trace_parent
        )

    def get_job(self, job_id: str) -> Item:
        return self.jobs.get(job_id)

    def job_figures(self, job: Item) -> dict[str, Any]:
        """The job's `progress` and `execution_stats`, summed from its stats buckets (not from its tasks)."""
        return self.stats.of(job, self.clock())

    def jobs_figures(self, jobs: Sequence[Item]) -> list[dict[str, Any]]:
        """`job_figures` of each job of a list page, in order: each is one Query of its job's partition, so
        they go out side by side."""
        if len(jobs) <= 1:
            return [self.job_figures(job) for job in jobs]
        with ThreadPoolExecutor(max_workers=min(FIGURE_READERS, len(jobs))) as pool:
            return list(pool.map(self.job_figures, jobs))

    def list_jobs(self, *, limit: int = 50, cursor: str | None = None, **filters: Any) -> Page:
        return self.jobs.list(limit=limit, cursor=cursor, **filters)

    def walk(self, job: Item) -> Iterator[Item]:
        return self.tree.walk(job)

    def job_tasks(self, job_id: str, *, limit: int | None = None) -> list[Item]:
        """The job's tasks (the first `limit` of the walk from the roots); a QUEUED one that may not run
        carries a `waiting` note saying why."""
        job = self.jobs.get(job_id)
        tasks = list(itertools.islice(self.tree.walk(job), limit))
        lanes: dict[str, dict[str, Item]] = {}
        for task in tasks:
            if task.get("state") == "QUEUED":
                slug = str(task["cluster"])
                if slug not in lanes:
                    lanes[slug] = {str(lane["key"]): lane for lane in self.table.lanes(slug)}
                note = self.clusters.waiting_note(task, str(job["state"]), lanes[slug])
                if note:
                    task["waiting"] = note
        return tasks

    def cancel_job(self, job_id: str) -> Item:
        return self.jobs.cancel(job_id)

    def retry_job(self, job_id: str, token: str | None = None) -> int:
        return self.recovery.retry_job(job_id, token)

    def resume(self, job: Item) -> int:
        return self.recovery.resume(job)

    # --- runners ----------------------------------------------------------------------------------------
    def next(
        self, report: Report | None, claim: Claim | None, runner_id: str
    ) -> tuple[ReportResult | None, ClaimResult | None]:
        """A runner's call with (at most) one report and one claim: `next_many` of one each."""
        reported, claimed = self.next_many([report] if report else [], [claim] if claim else [], runner_id)
        return (reported[0] if reported else None), (claimed[0] if claimed else None)

    def next_many(
        self, reports: Sequence[Report], claims: Sequence[Claim], runner_id: str
    ) -> tuple[list[ReportResult], list[ClaimResult]]:
        """A runner's call: report finished tasks, claim the next ones (docs/architecture.md, "Runner loop").

        Each job's item is read once, beside the first writes. After success reports only (which cannot
        fail a job: a task's result goes to its own item first) the claims run beside the reports; after a
        failure or a give-back, which may end the job, they run after them and read the job afresh. Claims
        run beside each other. A refused claim (another cluster's task, another job's) is refused in its own
        half when the call holds anything else; alone, it refuses the call (4xx)."""
        reads: dict[str, Future[Item | None]] = {}
        for report in reports:
            if report.job_id not in reads:
                reads[report.job_id] = overlap.start(partial(self.jobs.brief, report.job_id))
        successes = all(r.outcome == Outcome.COMPUTED for r in reports)
        claiming: list[Future[ClaimResult]] = []
        if claims and successes:
            claiming = [
                overlap.beside(partial(self.leases.claim, c, runner_id, job=reads.get(c.job_id))) for c in claims
            ]
        reported: list[ReportResult] = []
        try:
            reported = self.reports.report_many(reports, jobs=reads)
        finally:
            if len(reported) < len(reports):  # the reports raised: the call fails once its claims are done
                wait(claiming)
        if claims and not claiming:
            claiming = [overlap.beside(partial(self.leases.claim, c, runner_id)) for c in claims]
        claimed: list[ClaimResult] = []
        for future in claiming:
            try:
                claimed.append(future.result())
            except (Forbidden, Conflict) as err:
                if not reports and len(claims) == 1:
                    raise
                # the call holds more than this claim: its refusal travels in its half (the runner deletes
                # such a ticket) rather than as the whole call's 4xx
                claimed.append(ClaimResult(status=ClaimStatus.DISCARD, code=Reason.REFUSED, reason=err.message))
        return reported, claimed

    def claim(self, claim: Claim, runner_id: str) -> ClaimResult:
        return self.leases.claim(claim, runner_id)

    def report(self, report: Report) -> ReportResult:
        return self.reports.report(report)

    def extend(self, task_id: str, attempt: int, holder: Holder, seconds: int | None = None) -> int:
        return self.leases.extend(task_id, attempt, holder, seconds)

    def runner_lanes(self, slug: str, registered: Iterable[Identifier]) -> list[Item]:
        return self.clusters.runner_lanes(self.clusters.slug(slug), registered)

    def backlogs(self) -> dict[str, int]:
        return self.recovery.backlogs()

    # --- repair -----------------------------------------------------------------------------------------
    def repair(self, task: Item, job: Item) -> None:
        self.propagation.repair(task, job)

    def sweep(self, **limits: Any) -> dict[str, int]:
        return self.recovery.sweep(**limits)

    def drain_job_transitions(self) -> dict[str, int]:
        """Jobs this process moved to COMPLETED or FAILED since the last call (for the handlers' metrics)."""
        return self.jobs.drain_transitions()
