"""The runners' hot path: report a task and claim the next in one call; extend a lease."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..logic.engine import Report, TaskSpec
from ..models.api import ExtendIn, RunnerNextIn
from ..wiring import orchestrator
from .common import body, count, logger, make_app, metrics, ok, tracer

app = make_app()


@app.post("/runner/next")
def next_task() -> Any:
    req = body(app, RunnerNextIn)
    report = None
    if req.report is not None:
        r = req.report
        report = Report(
            task_id=r.task_id, job_id=r.job_id, attempt=r.attempt, outcome=r.outcome, display=r.display,
            subtasks=[TaskSpec(**s.model_dump()) for s in r.subtasks],
            failure_message=r.failure.message if r.failure else None,
            failure_traceback=r.failure.traceback if r.failure else None,
        )
    claim = (req.claim.job_id, req.claim.task_id, req.claim.ref) if req.claim is not None else None
    engine = orchestrator()
    reported, claimed = engine.next(report, claim, req.runner_id)
    jobs = engine.drain_job_transitions()
    count("JobsCompleted", jobs.get("COMPLETED", 0))
    count("JobsFailed", jobs.get("FAILED", 0))
    out: dict[str, Any] = {}
    if reported is not None:
        out["report"] = asdict(reported)
        if reported.status == "failed":
            count("TasksFailed", 1)
        elif reported.status == "ok":
            count("TasksComputed", 1)
    if claimed is not None:
        out["claim"] = asdict(claimed)
        if claimed.reason.startswith("the task's runner stopped"):
            count("LeasesExpired", 1)
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
