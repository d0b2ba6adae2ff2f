"""Configuration of the orchestrator functions, read from the environment once per cold start.

| variable | meaning | default |
| --- | --- | --- |
| TASKFLEET_TABLE | DynamoDB table name | required |
| TASKFLEET_QUEUE_PREFIX | lanes are `<prefix>-<slug>--<key>.fifo`, DLQs `<prefix>-<slug>-dlq.fifo` | required |
| TASKFLEET_LEASE_SECONDS | task lease; also the queues' visibility timeout | 60 |
| TASKFLEET_CLUSTERS | comma-separated slugs of clusters declared in the deployment (their queues exist) | default |
| TASKFLEET_RUNNER_URL | URL runners use for /runner/* (a Lambda function URL), if not the API URL | unset |
| TASKFLEET_RUNNER_FUNCTION | the runner function (the clusters function makes its per-cluster aliases, URLs) | unset |
| TASKFLEET_RUNNER_URLS | JSON {slug: URL}: the runner URLs of the declared clusters (the clusters function) | {} |
| TASKFLEET_LOCAL | "1" on the local stack | unset |
| TASKFLEET_OUTBOX_GRACE_SECONDS | a submit/retry whose dispatch is unconfirmed this long is redone | 30 |
| TASKFLEET_SUBMIT_LOCK_SECONDS | a submit holding its client token this long is presumed dead (> API timeout) | 30 |
| TASKFLEET_RETENTION_DAYS | a job's items expire (TTL `expires_at`) this long after their last change; 0: never | 90 |
| TASKFLEET_MAX_CLUSTERS | clusters `POST /clusters` may create, besides the declared ones (409 beyond) | 100 |
| TASKFLEET_KEY_CACHE_SECONDS | a process trusts its check of an API key this long (a revoked key's grace) | 30 |
| TASKFLEET_CONNECT_LEASE_SECONDS | lease of a task a Tilebox SDK runner claims, unless its key sets one | 1800 |
| TASKFLEET_CONNECT_IDLE_SECONDS | idle pause NextTask suggests to a Tilebox runner (±50 % jitter) | 2 |
| AWS_REGION | region | us-east-1 |
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Settings:
    table_name: str
    queue_prefix: str
    lease_seconds: int = 60
    static_clusters: tuple[str, ...] = ("default",)
    runner_url: str | None = None
    runner_function: str | None = None
    runner_urls: dict[str, str] = field(default_factory=dict)
    local: bool = False
    region: str = "us-east-1"
    endpoint_url: str | None = field(default=None)
    outbox_grace_seconds: float = 30.0
    submit_lock_seconds: float = 30.0
    max_clusters: int = 100
    retention_days: float = 90.0
    key_cache_seconds: float = 30.0
    # Automations (docs/architecture.md, "Automations"). On AWS: the EventBridge Scheduler group the
    # automations function creates cron schedules in, what they invoke, with which role, where failed
    # deliveries go; and the buckets whose object-created events reach taskfleet. The local stack sets
    # none of the scheduler's and no buckets: any existing bucket of its emulated S3 may be watched.
    scheduler_group: str | None = None
    trigger_target_arn: str | None = None
    scheduler_role_arn: str | None = None
    trigger_dlq_arn: str | None = None
    automation_buckets: tuple[str, ...] = ()
    # The Connect endpoint (Tilebox SDK clients, docs/architecture.md "Tilebox SDK clients"): the SDK never
    # extends a lease over HTTP/1.1, so a claim there gets a lease long enough for its task at once.
    connect_lease_seconds: int = 1800
    connect_idle_seconds: float = 2.0

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        clusters = tuple(s.strip() for s in env.get("TASKFLEET_CLUSTERS", "default").split(",") if s.strip())
        return cls(
            table_name=env["TASKFLEET_TABLE"],
            queue_prefix=env["TASKFLEET_QUEUE_PREFIX"],
            lease_seconds=int(env.get("TASKFLEET_LEASE_SECONDS", "60")),
            static_clusters=clusters or ("default",),
            runner_url=env.get("TASKFLEET_RUNNER_URL") or None,
            runner_function=env.get("TASKFLEET_RUNNER_FUNCTION") or None,
            runner_urls=dict(json.loads(env.get("TASKFLEET_RUNNER_URLS") or "{}")),
            local=env.get("TASKFLEET_LOCAL") == "1",
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            outbox_grace_seconds=float(env.get("TASKFLEET_OUTBOX_GRACE_SECONDS", "30")),
            submit_lock_seconds=float(env.get("TASKFLEET_SUBMIT_LOCK_SECONDS", "30")),
            max_clusters=int(env.get("TASKFLEET_MAX_CLUSTERS", "100")),
            retention_days=float(env.get("TASKFLEET_RETENTION_DAYS", "90")),
            key_cache_seconds=float(env.get("TASKFLEET_KEY_CACHE_SECONDS", "30")),
            scheduler_group=env.get("TASKFLEET_SCHEDULER_GROUP") or None,
            trigger_target_arn=env.get("TASKFLEET_TRIGGER_TARGET_ARN") or None,
            scheduler_role_arn=env.get("TASKFLEET_SCHEDULER_ROLE_ARN") or None,
            trigger_dlq_arn=env.get("TASKFLEET_TRIGGER_DLQ_ARN") or None,
            automation_buckets=tuple(b for b in env.get("TASKFLEET_AUTOMATION_BUCKETS", "").split(",") if b),
            connect_lease_seconds=int(env.get("TASKFLEET_CONNECT_LEASE_SECONDS", "1800")),
            connect_idle_seconds=float(env.get("TASKFLEET_CONNECT_IDLE_SECONDS", "2")),
        )

    def lane_name(self, slug: str, key: str) -> str:
        """A lane: the queue of one task identifier in one cluster (docs/architecture.md, "Queue protocol")."""
        return f"{self.queue_prefix}-{slug}--{key}.fifo"

    def dlq_name(self, slug: str) -> str:
        return f"{self.queue_prefix}-{slug}-dlq.fifo"
