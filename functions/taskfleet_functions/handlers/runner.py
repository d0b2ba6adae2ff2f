"""The runners' hot path: report a task and claim the next in one call; extend a lease."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..models.api import ExtendIn, RunnerNextIn
from ..orchestrator import JobState, Reason, ReportStatus
from ..wiring import orchestrator
from .common import body, count, logger, make_app, metrics, ok, tracer

app = make_app()


@app.post("/runner/next")
def next_task() -> Any:
    req = body(app, RunnerNextIn)
    report = req.report.to_report() if req.report is not None else None
    claim = req.claim.to_claim() if req.claim is not None else None
    engine = orchestrator()
    reported, claimed = engine.next(report, claim, req.runner_id)
    jobs = engine.drain_job_transitions()
    count("JobsCompleted", jobs.get(JobState.COMPLETED, 0))
    count("JobsFailed", jobs.get(JobState.FAILED, 0))
    out: dict[str, Any] = {}
    if reported is not None:
        out["report"] = reported.wire()
        count("TasksFailed", int(reported.status == ReportStatus.FAILED))
        count("TasksComputed", int(reported.status == ReportStatus.OK))
    if claimed is not None:
        out["claim"] = claimed.wire()
        count("LeasesExpired", int(claimed.code == Reason.LEASES_EXPIRED))
    return ok(out)


@app.post("/runner/extend")
def extend() -> Any:
    req = body(app, ExtendIn)
    return ok({"lease_expires": orchestrator().extend(req.task_id, req.attempt, req.runner_id)})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
