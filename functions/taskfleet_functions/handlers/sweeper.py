"""Scheduled repair: overdue job dispatches and tickets in dead-letter queues."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ..wiring import orchestrator
from .common import count, logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    stats = orchestrator().sweep()
    for name, value in stats.items():
        count(f"Sweeper{name.title().replace('_', '')}", value)
    if any(stats.values()):
        logger.info("sweeper repaired state", extra=stats)
    return stats
