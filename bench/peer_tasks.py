"""The Celery side of the peer benchmark (issue 5): app factory and the benchmark's tasks.

Celery 5.7 with kombu's SQS transport (a FIFO queue) as broker and Celery's DynamoDB result backend,
both pointed at the taskfleet emulator (moto). bench/peer_celery.py starts workers with
``celery -A peer_tasks worker`` and configures them through the environment (PEER_* below); the
client side builds its own app with ``make_app`` and refers to the tasks by name only.

Every task execution appends one line to the execution log (PEER_EXEC_LOG):
``<kind> <task id> <start unix time> <end unix time>``. The log gives the chain's per-hop start times
and shows duplicate executions (one task id executed more than once).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, group
from celery.signals import before_task_publish, worker_ready

TASK_PREFIX = "peer."

# "task": one SQS message group per task (group id = task id); "single": leave kombu's default, which
# puts every message of a FIFO queue in the one group "default" (Celery's behaviour out of the box).
_group_mode = "task"


def make_app(
    endpoint: str,
    queue: str,
    table: str,
    *,
    polling_interval: float = 0.1,
    wait_time_seconds: int = 10,
    prefetch_multiplier: int = 4,
    group_mode: str = "task",
) -> Celery:
    """A Celery app on the emulator at ``endpoint`` (``http://127.0.0.1:PORT``)."""
    global _group_mode
    if group_mode not in ("task", "single"):
        raise ValueError(f"group_mode must be 'task' or 'single', not {group_mode!r}")
    _group_mode = group_mode
    hostport = endpoint.split("://", 1)[-1].rstrip("/")
    app = Celery("peer", set_as_current=False)
    # Fake credentials in the URLs, so neither side depends on (or changes) the process environment.
    creds = "testing:testing@"
    app.conf.update(
        broker_url=f"sqs://{creds}{hostport}",
        broker_transport_options={
            "region": "us-east-1",
            "is_secure": False,
            "polling_interval": polling_interval,
            "wait_time_seconds": wait_time_seconds,
            "visibility_timeout": 1800,
        },
        broker_connection_retry_on_startup=True,
        # celery's DynamoDB backend: a host that is an IP address means a local endpoint (http).
        result_backend=f"dynamodb://{creds}{hostport}/{table}",
        task_default_queue=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=prefetch_multiplier,
        # SQS cannot carry Celery's broadcast traffic (remote control, events): keep it off the queue.
        worker_enable_remote_control=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
    )
    return app


@before_task_publish.connect(weak=False)
def _message_group_per_task(
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """Give each task message its own FIFO message group (kombu's SQS transport reads
    ``properties['MessageGroupId']``; without it every message goes to group "default")."""
    if _group_mode != "task" or properties is None or headers is None:
        return
    if sender and sender.startswith(TASK_PREFIX) and "id" in headers:
        properties.setdefault("MessageGroupId", headers["id"])


def _log_execution(kind: str, task_id: str, start: float) -> None:
    path = os.environ.get("PEER_EXEC_LOG")
    if not path:
        return
    line = f"{kind} {task_id} {start:.6f} {time.time():.6f}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one short O_APPEND write: lines from concurrent processes do not interleave
    finally:
        os.close(fd)


def _env_app() -> Celery:
    endpoint = os.environ.get("PEER_ENDPOINT")
    if not endpoint:
        # Imported without a benchmark around it (e.g. by a linter): a placeholder app.
        return Celery("peer", set_as_current=False)
    return make_app(
        endpoint,
        os.environ["PEER_QUEUE"],
        os.environ["PEER_TABLE"],
        polling_interval=float(os.environ.get("PEER_POLLING_INTERVAL", "0.1")),
        wait_time_seconds=int(os.environ.get("PEER_WAIT_TIME_SECONDS", "10")),
        prefetch_multiplier=int(os.environ.get("PEER_PREFETCH_MULTIPLIER", "4")),
        group_mode=os.environ.get("PEER_GROUP_MODE", "task"),
    )


app = _env_app()


@worker_ready.connect(weak=False)
def _announce_ready(sender: Any = None, **_: Any) -> None:
    ready_dir = os.environ.get("PEER_READY_DIR")
    if ready_dir:
        name = getattr(sender, "hostname", None) or str(os.getpid())
        with open(os.path.join(ready_dir, f"{name}.ready"), "w") as f:
            f.write(str(os.getpid()))


@app.task(name="peer.noop", bind=True)
def noop(self: Any, i: int) -> int:
    start = time.time()
    _log_execution("noop", self.request.id, start)
    return i


@app.task(name="peer.fanout", bind=True)
def fanout(self: Any, n: int) -> list[str]:
    """Submit n no-op subtasks (a Celery group) and return their task ids."""
    start = time.time()
    result = group(noop.s(i) for i in range(n)).apply_async()
    _log_execution("fanout", self.request.id, start)
    return [r.id for r in result.results]


@app.task(name="peer.hop", bind=True)
def hop(self: Any, hops: int) -> int:
    """One link of a chain: counts the hops so far; its start time goes to the execution log."""
    start = time.time()
    _log_execution("hop", self.request.id, start)
    return hops + 1
