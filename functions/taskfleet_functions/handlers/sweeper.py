"""Scheduled repair (overdue job dispatches, tickets in dead-letter queues) and each cluster's backlog over
all its lanes, the metric its runners scale on."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..orchestrator import JobState
from ..wiring import orchestrator
from .common import count, gauge, logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    engine = orchestrator()
    stats = engine.sweep()
    for name, value in stats.items():
        count(f"Sweeper{name.title().replace('_', '')}", value)
    jobs = engine.drain_job_transitions()  # a repair can finish a job
    count("JobsCompleted", jobs.get(JobState.COMPLETED, 0))
    count("JobsFailed", jobs.get(JobState.FAILED, 0))
    if any(stats.values()):
        logger.info("sweeper repaired state", extra=stats)
    for slug, backlog in engine.backlogs().items():
        gauge("Backlog", backlog, cluster=slug)
    return stats
