"""The local stack: moto (DynamoDB, SQS, S3, in a child process of its own: see emulator.py) plus the real
Lambda handlers behind a loopback HTTP server that builds API Gateway HTTP API (v2) events, plus the sweeper
on a timer.

    from taskfleet_local import LocalStack
    with LocalStack() as stack:
        client = stack.client()

One LocalStack per process: the handlers' wiring is process-global, as in a Lambda container.
"""

from __future__ import annotations

import os
import secrets
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskfleet.cache import AmazonS3Cache
    from taskfleet.client import Client
    from taskfleet_functions.orchestrator import Orchestrator

    from .api_server import LocalApi
    from .emulator import Emulator

_POWERTOOLS_LOCAL_ENV = {
    "POWERTOOLS_SERVICE_NAME": "taskfleet",
    "POWERTOOLS_METRICS_NAMESPACE": "taskfleet",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": os.environ.get("TASKFLEET_LOG_LEVEL", "WARNING"),
}

FAKE_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
# The job caches' bucket in the emulated S3 (created at start). A fixed name: each stack has an emulator of
# its own, and runners left running find it again when `taskfleet dev` restarts on the same ports.
CACHE_BUCKET = "taskfleet-cache"


class LocalStack:
    def __init__(
        self,
        *,
        port: int = 0,
        lease_seconds: int = 60,
        sweep_interval: float = 1.0,
        outbox_grace_seconds: float = 30.0,
        submit_lock_seconds: float = 30.0,
        max_clusters: int = 100,
        host: str = "127.0.0.1",
        emulator_port: int = 0,
        cache_bucket: str = CACHE_BUCKET,
        connect_lease_seconds: int = 1800,
        connect_idle_seconds: float = 0.5,
    ) -> None:
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError("the local stack listens on loopback only")
        self.host = host
        self.port = port
        self.lease_seconds = lease_seconds
        self.sweep_interval = sweep_interval
        self.outbox_grace_seconds = outbox_grace_seconds
        self.submit_lock_seconds = submit_lock_seconds
        self.max_clusters = max_clusters
        self.emulator_port = emulator_port
        self.cache_bucket = cache_bucket
        # Tilebox SDK runners (the Connect endpoint): their lease, and the idle pause NextTask suggests (shorter
        # than on AWS, where each idle poll is a paid request)
        self.connect_lease_seconds = connect_lease_seconds
        self.connect_idle_seconds = connect_idle_seconds
        self.name = f"taskfleet-{secrets.token_hex(3)}"
        self.emulator: Emulator | None = None
        self.api: LocalApi | None = None
        self.orchestrator: Orchestrator | None = None
        self._sweeper_stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        self.sweeps = 0

    @property
    def url(self) -> str:
        if self.api is None:
            raise RuntimeError("local stack is not started")
        return self.api.url

    def boto_client(self, service: str, config: Any = None) -> Any:
        import boto3

        assert self.emulator is not None
        return boto3.session.Session().client(
            service, endpoint_url=self.emulator.url, region_name="us-east-1", config=config, **FAKE_CREDENTIALS
        )

    def cache_client(self) -> Any:
        """An S3 client for the emulated S3 (path-style addressing: the emulator has no DNS names)."""
        from botocore.config import Config

        return self.boto_client("s3", Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}))

    def cache(self, prefix: str = "jobs") -> AmazonS3Cache:
        """The job cache on the emulated S3: pass it as `client.runner(..., cache=stack.cache())`."""
        from taskfleet.cache import AmazonS3Cache

        return AmazonS3Cache(self.cache_bucket, prefix=prefix, session=self.cache_client())

    def cache_env(self) -> dict[str, str]:
        """What a runner process (`taskfleet runner`) needs in its environment to use `cache()`."""
        assert self.emulator is not None
        return {
            "TASKFLEET_CACHE_BUCKET": self.cache_bucket,
            "AWS_ENDPOINT_URL_S3": self.emulator.url,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> LocalStack:
        for key, value in _POWERTOOLS_LOCAL_ENV.items():
            os.environ.setdefault(key, value)
        from taskfleet_functions import orchestrator as engine
        from taskfleet_functions import wiring
        from taskfleet_functions.dal.dynamo import Dynamo
        from taskfleet_functions.dal.queues import Queues
        from taskfleet_functions.dal.table import table_spec
        from taskfleet_functions.settings import Settings

        from .api_server import LocalApi
        from .emulator import Emulator

        self.emulator = Emulator(host=self.host, port=self.emulator_port).start()
        # the orchestrator's clients retry exactly as on AWS (wiring.aws_config: standard mode, 5 attempts)
        dynamodb, sqs = self.boto_client("dynamodb", wiring.aws_config()), self.boto_client("sqs", wiring.aws_config())
        dynamodb.create_table(**table_spec(self.name))
        self.cache_client().create_bucket(Bucket=self.cache_bucket)
        self.api = LocalApi(host=self.host, port=self.port)
        settings = Settings(
            table_name=self.name,
            queue_prefix=self.name,
            lease_seconds=self.lease_seconds,
            local=True,
            endpoint_url=self.emulator.url,
            outbox_grace_seconds=self.outbox_grace_seconds,
            submit_lock_seconds=self.submit_lock_seconds,
            max_clusters=self.max_clusters,
            connect_lease_seconds=self.connect_lease_seconds,
            connect_idle_seconds=self.connect_idle_seconds,
        )
        s3 = self.cache_client()

        def bucket_exists(bucket: str) -> bool:
            try:
                s3.head_bucket(Bucket=bucket)
            except Exception:
                return False
            return True

        self.orchestrator = engine.Orchestrator(
            Dynamo(dynamodb, self.name),
            Queues(sqs, visibility_seconds=self.lease_seconds),
            settings,
            bucket_exists=bucket_exists,
        )
        self._cron_checked = datetime.now(UTC)
        self._objects_seen: set[tuple[str, str, str]] = set()
        wiring.configure(self.orchestrator)
        self.orchestrator.cluster("default")
        self.api.start()
        if self.sweep_interval > 0:
            self._sweeper = threading.Thread(target=self._sweep_loop, name="sweeper", daemon=True)
            self._sweeper.start()
        return self

    def _sweep_loop(self) -> None:
        import logging

        assert self.orchestrator is not None
        while not self._sweeper_stop.wait(self.sweep_interval):
            try:
                self.orchestrator.sweep()
                self.fire_automations()
                self.sweeps += 1
            except Exception:  # the next round retries; a crash here must not end the timer
                logging.getLogger("taskfleet_local").exception("sweep failed")

    # --- automations: what EventBridge Scheduler and S3's EventBridge events do on AWS ---------------------

    def fire_automations(self, now: datetime | None = None) -> None:
        """Deliver what came due since the last look: each cron schedule's times, and each object created in a
        watched bucket, as events to the automations function (as EventBridge does on AWS)."""
        from taskfleet_functions.orchestrator.cron import parse

        assert self.orchestrator is not None
        now = now or datetime.now(UTC)
        since, self._cron_checked = self._cron_checked, now
        automations = self.orchestrator.automations.all()
        for item in automations:
            created = datetime.fromtimestamp(int(item["created_at"]) / 1000, UTC)
            for index, text in enumerate(item.get("cron_schedules") or ()):
                for moment in parse(text).times_between(max(since, created), now):
                    self.deliver_schedule(str(item["automation_id"]), index, moment)
        buckets = {t["bucket"] for item in automations for t in item.get("storage_triggers") or ()}
        s3 = self.cache_client()
        for bucket in sorted(buckets):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for obj in page.get("Contents", []):
                    version = f"{obj['ETag'].strip(chr(34))}@{obj['LastModified'].timestamp():.3f}"
                    if (bucket, obj["Key"], version) not in self._objects_seen:
                        self.deliver_object_created(bucket, obj["Key"], version, obj["LastModified"])
                        self._objects_seen.add((bucket, obj["Key"], version))  # delivered: not again

    def deliver_schedule(self, automation_id: str, schedule: int, scheduled: datetime) -> dict[str, Any]:
        """What EventBridge Scheduler sends the automations function when a schedule fires (also the test
        hook that fires a given time)."""
        event = {"automation_id": automation_id, "schedule": schedule, "scheduled_time": scheduled.isoformat()}
        return self._invoke_automations(event)

    def deliver_object_created(self, bucket: str, key: str, version: str, at: datetime | None = None) -> dict[str, Any]:
        """What S3 sends through EventBridge when an object is created."""
        event = {
            "source": "aws.s3",
            "detail-type": "Object Created",
            "time": (at or datetime.now(UTC)).isoformat(),
            "detail": {"bucket": {"name": bucket}, "object": {"key": key, "sequencer": version}},
        }
        return self._invoke_automations(event)

    def _invoke_automations(self, event: dict[str, Any]) -> dict[str, Any]:
        from taskfleet_functions.handlers import automations

        from .api_server import FakeLambdaContext

        return dict(automations.lambda_handler(event, FakeLambdaContext("automations")))

    def client(self) -> Client:
        from taskfleet.client import Client

        return Client(self.url)

    def request_counts(self) -> dict[str, int]:
        """AWS requests seen by the emulator, by service:action (plus api:<route> for the local API)."""
        counts = dict(self.emulator.request_counts()) if self.emulator else {}
        if self.api:
            counts.update(self.api.request_counts())
        return counts

    def stop(self) -> None:
        from taskfleet_functions import wiring

        self._sweeper_stop.set()
        if self._sweeper:
            self._sweeper.join(timeout=30)
        if self.api:
            self.api.stop()
        if self.emulator:
            self.emulator.stop()
        wiring.configure(None)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
