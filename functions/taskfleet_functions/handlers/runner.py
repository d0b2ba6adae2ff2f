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
    engine = orchestrator()
    out: dict[str, Any] = {}
    if req.report is not None:
        r = req.report
        report = Report(
            task_id=r.task_id, job_id=r.job_id, attempt=r.attempt, outcome=r.outcome, display=r.display,
            subtasks=[TaskSpec(**s.model_dump()) for s in r.subtasks],
            failure_message=r.failure.message if r.failure else None,
            failure_traceback=r.failure.traceback if r.failure else None,
        )
        result = engine.report(report, req.runner_id)
        out["report"] = asdict(result)
        if result.status == "failed":
            count("TasksFailed", 1)
        elif result.status == "ok":
            count("TasksComputed", 1)
    if req.claim is not None:
        claim = engine.claim(req.claim.job_id, req.claim.task_id, req.runner_id)
        out["claim"] = asdict(claim)
        if claim.reason.startswith("the task's runner stopped"):
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
