"""Shared fixtures: one local stack per test session (short leases so crash recovery is quick), a
fresh cluster per test (so tests do not see each other's tickets), and runner subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
E2E = Path(__file__).resolve().parent / "e2e"

os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

LEASE_SECONDS = 3


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from taskfleet_local import LocalStack

    with LocalStack(lease_seconds=LEASE_SECONDS, sweep_interval=0.5, outbox_grace_seconds=1.0,
                    submit_lock_seconds=3.0) as s:
        yield s


@pytest.fixture
def client(stack: Any) -> Any:
    return stack.client()


@pytest.fixture
def cluster(client: Any, request: pytest.FixtureRequest) -> str:
    return str(client.clusters().create(request.node.name[:20]).slug)


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll an observable condition (not a sleep standing in for one); fail loudly on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Runners:
    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, cluster: str, *tasks: str, grace: float = 20.0, until_idle: bool = False
    ) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TASKFLEET_TEST_DIR": str(self.workdir),
               "PYTHONPATH": os.pathsep.join([str(E2E), os.environ.get("PYTHONPATH", "")])}
        args = [sys.executable, "-m", "taskfleet_runner", "--url", self.url, "--cluster", cluster,
                "--grace", str(grace)]
        if until_idle:
            args.append("--until-idle")
        proc = subprocess.Popen([*args, *[f"workflows:{t}" for t in tasks]], env=env)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)


@pytest.fixture
def runners(stack: Any, tmp_path: Path) -> Iterator[Runners]:
    r = Runners(stack.url, tmp_path)
    yield r
    r.stop_all()


def executions(workdir: Path) -> list[dict[str, Any]]:
    log = workdir / "executions.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def open_gate(workdir: Path, name: str) -> None:
    (workdir / f"gate-{name}").write_text("open")


def marked(workdir: Path, name: str) -> bool:
    return (workdir / f"mark-{name}").exists()


def queue_depth(stack: Any, slug: str) -> int:
    """Visible plus in-flight messages in a cluster's queue."""
    sqs = stack.boto_client("sqs")
    url = stack.orchestrator.cluster(slug)["queue_url"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def job_done(client: Any, job: Any) -> Callable[[], Any]:
    def check() -> Any:
        current = client.jobs().find(job)
        return current if current.state in ("COMPLETED", "FAILED", "CANCELED") else None

    return check
