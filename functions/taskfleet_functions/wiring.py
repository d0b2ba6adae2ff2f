"""Builds the orchestrator once per process from the environment. The local stack and tests inject
their own with `configure()`; handlers only call `orchestrator()`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.config import Config

    from .orchestrator import Orchestrator

_orchestrator: Orchestrator | None = None


def configure(orchestrator: Orchestrator | None) -> None:
    global _orchestrator
    _orchestrator = orchestrator


def orchestrator() -> Orchestrator:
    global _orchestrator
    if _orchestrator is None:
        _orchestrator = build_from_env()
    return _orchestrator


def aws_config() -> Config:
    """The botocore configuration of the orchestrator's DynamoDB and SQS clients (on AWS and on the local
    stack alike). Standard retry mode: jittered exponential backoff on throttling, 5xx and connection
    errors, at most 5 attempts per call, within a retry quota."""
    from botocore.config import Config

    return Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10)


def build_from_env() -> Orchestrator:
    import boto3

    from .dal.dynamo import Dynamo
    from .dal.queues import Queues
    from .dal.runner_urls import LambdaRunnerUrls, NoRunnerUrls, RunnerUrls
    from .orchestrator import Orchestrator
    from .settings import Settings

    settings = Settings.from_env()
    config = aws_config()
    session = boto3.session.Session(region_name=settings.region)
    dynamodb = session.client("dynamodb", config=config, endpoint_url=settings.endpoint_url)
    sqs = session.client("sqs", config=config, endpoint_url=settings.endpoint_url)
    runner_urls: RunnerUrls = NoRunnerUrls()
    if settings.runner_function:  # the clusters function: per-cluster runner URLs of created clusters
        lambda_client = session.client("lambda", config=config, endpoint_url=settings.endpoint_url)
        runner_urls = LambdaRunnerUrls(lambda_client, settings.runner_function)
    schedules = None
    if settings.scheduler_group:  # the automations function: cron automations' EventBridge schedules
        from .dal.schedules import EventBridgeSchedules

        schedules = EventBridgeSchedules(
            session.client("scheduler", config=config, endpoint_url=settings.endpoint_url),
            group=settings.scheduler_group,
            target_arn=settings.trigger_target_arn,
            role_arn=settings.scheduler_role_arn or "",
            dlq_arn=settings.trigger_dlq_arn or "",
        )
    return Orchestrator(
        Dynamo(dynamodb, settings.table_name),
        Queues(sqs, visibility_seconds=settings.lease_seconds),
        settings,
        runner_urls=runner_urls,
        schedules=schedules,
    )
