"""Automations: the API (create, list, find, delete) and the triggers (EventBridge Scheduler's cron
firings, S3 "Object Created" events through EventBridge), which invoke this function directly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..dal.schedules import EventBridgeSchedules
from ..models.api import AutomationIn
from ..orchestrator.automations import AutomationSpec, automation_view
from ..orchestrator.errors import DomainError
from ..wiring import orchestrator
from .common import body, count, logger, make_app, metrics, ok, tracer

app = make_app()


@app.post("/automations")
def create() -> Any:
    req = body(app, AutomationIn)
    spec = AutomationSpec(
        name=req.name,
        kind=req.kind,
        task=req.task.to_spec(),
        cluster=req.cluster,
        max_retries=req.max_retries,
        cron_schedules=tuple(req.cron_schedules),
        storage_triggers=tuple(req.storage_triggers),
    )
    return ok(automation_view(orchestrator().automations.create(spec)), 201)


@app.get("/automations")
def all_automations() -> Any:
    return ok({"automations": [automation_view(a) for a in orchestrator().automations.all()]})


@app.get("/automations/<automation_id>")
def find(automation_id: str) -> Any:
    return ok(automation_view(orchestrator().automations.get(automation_id)))


@app.delete("/automations/<automation_id>")
def delete(automation_id: str) -> Any:
    cancel = (app.current_event.query_string_parameters or {}).get("cancel_jobs", "false")
    if cancel not in ("true", "false"):
        raise DomainError("query parameter 'cancel_jobs' must be true or false", code="InvalidRequest")
    canceled = orchestrator().automations.delete(automation_id, cancel_jobs=cancel == "true")
    return ok({"deleted": automation_id, "canceled_jobs": canceled})


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def trigger(event: dict[str, Any]) -> dict[str, Any]:
    """A firing: a schedule's (`automation_id`, `scheduled_time`) or an S3 object created. Errors raise,
    so that the caller (EventBridge) retries and, in the end, dead-letters the event."""
    automations = orchestrator().automations
    if "scheduled_time" in event:
        job = automations.fire_cron(str(event["automation_id"]), _when(str(event["scheduled_time"])))
        jobs = [job] if job else []
    else:
        detail = event["detail"]
        obj = detail["object"]
        version = str(obj.get("version-id") or obj.get("sequencer") or obj.get("etag") or "")
        at = int(_when(str(event["time"])).timestamp() * 1000) if event.get("time") else None
        jobs = automations.fire_storage(str(detail["bucket"]["name"]), str(obj["key"]), version, at=at)
    count("AutomationJobs", len(jobs))
    return {"jobs": [str(j["job_id"]) for j in jobs]}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    schedules = orchestrator().automations.schedules
    if isinstance(schedules, EventBridgeSchedules) and not schedules.target_arn:
        # the schedules invoke this very function: its unqualified ARN (arn:...:function:<name>)
        schedules.target_arn = ":".join(context.invoked_function_arn.split(":")[:7])
    if "requestContext" in event:  # the API
        return app.resolve(event, context)
    return trigger(event)
