"""Builds the orchestrator once per process from the environment. The local stack and tests inject
their own with `configure()`; handlers only call `orchestrator()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .logic.engine import Orchestrator

_orchestrator: Orchestrator | None = None


def configure(orchestrator: Orchestrator | None) -> None:
    global _orchestrator
    _orchestrator = orchestrator


def orchestrator() -> Orchestrator:
    global _orchestrator
    if _orchestrator is None:
        _orchestrator = build_from_env()
    return _orchestrator


def build_from_env() -> Orchestrator:
    import boto3
    from botocore.config import Config

    from .dal.dynamo import Dynamo
    from .dal.queues import Queues
    from .logic.engine import Orchestrator
    from .settings import Settings

    settings = Settings.from_env()
    # Standard retry mode: jittered exponential backoff on throttling and 5xx, bounded attempts.
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10)
    session = boto3.session.Session(region_name=settings.region)
    dynamodb = session.client("dynamodb", config=config, endpoint_url=settings.endpoint_url)
    sqs = session.client("sqs", config=config, endpoint_url=settings.endpoint_url)
    return Orchestrator(Dynamo(dynamodb, settings.table_name), Queues(sqs, visibility_seconds=settings.lease_seconds),
                        settings)
