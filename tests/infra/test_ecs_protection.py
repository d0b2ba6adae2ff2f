"""ECS task scale-in protection, against a fake ECS agent endpoint on 127.0.0.1.

Unit level: EcsTaskProtection's transitions, renewals and failure handling. Runner level: a real runner
subprocess (the local stack, the e2e task classes) protects its task while it executes it, releases the
protection when idle, and on SIGTERM drains within the container's stop timeout.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from taskfleet_runner.ecs_protection import EcsTaskProtection, from_environment

from tests.support.observe import marked, open_gate
from tests.support.waits import job_done, wait_until

# ECS's container stop timeout for the runner (infra: STOP_TIMEOUT_SECONDS); SIGKILL follows it.
STOP_TIMEOUT_SECONDS = 120


class FakeAgent:
    """Records `PUT /task-protection/v1/state` bodies; answers like the ECS agent (or fails on demand)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        self.delay = 0.0
        self.failure: dict[str, str] | None = None
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                agent.calls.append({"path": self.path, "body": body, "t": time.monotonic()})
                time.sleep(agent.delay)
                if agent.status != 200:
                    payload = {"error": {"Code": "ServerException", "Message": "boom"}}
                elif agent.failure:
                    payload = {"failure": agent.failure}
                else:
                    payload = {
                        "protection": {
                            "ProtectionEnabled": body["ProtectionEnabled"],
                            "TaskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/abc",
                        }
                    }
                data = json.dumps(payload).encode()
                self.send_response(agent.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def states(self) -> list[bool]:
        return [c["body"]["ProtectionEnabled"] for c in self.calls]


@pytest.fixture
def agent() -> Iterator[FakeAgent]:
    fake = FakeAgent()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_protection_is_enabled_on_idle_to_busy_and_released_on_busy_to_idle(agent: FakeAgent) -> None:
    protection = EcsTaskProtection(agent.url, minutes=30)
    protection.idle()  # already idle: no call
    protection.busy()
    protection.busy()  # a second task right after the first: still busy, no call
    protection.idle()
    protection.idle()
    assert [c["path"] for c in agent.calls] == ["/task-protection/v1/state"] * 2
    assert [c["body"] for c in agent.calls] == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 30},
        {"ProtectionEnabled": False},
    ]


def test_protection_is_renewed_while_the_runner_stays_busy(agent: FakeAgent) -> None:
    protection = EcsTaskProtection(agent.url, minutes=1)
    protection.minutes = 0.02  # type: ignore[assignment]  # renew every 0.6 s for the test
    protection.busy()
    wait_until(lambda: len(agent.calls) >= 3, timeout=10, what="two renewals")
    protection.idle()
    settled = len(agent.calls)
    time.sleep(1.0)
    assert len(agent.calls) == settled, "no renewal after going idle"
    assert agent.states[:3] == [True, True, True] and agent.states[-1] is False


@pytest.mark.parametrize("failure", ["http-error", "failure-body", "unreachable", "timeout"])
def test_agent_failures_are_logged_and_never_raised(
    agent: FakeAgent, failure: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = agent.url
    if failure == "http-error":
        agent.status = 500
    elif failure == "failure-body":
        agent.failure = {"Arn": "arn:aws:ecs:::task/x", "Reason": "TASK_NOT_VALID"}
    elif failure == "unreachable":
        agent.server.shutdown()
        agent.server.server_close()
    else:
        agent.delay = 1.0
    protection = EcsTaskProtection(url, minutes=10, timeout=0.3)
    started = time.monotonic()
    protection.busy()
    protection.idle()
    assert time.monotonic() - started < 5
    assert "ECS task protection" in caplog.text
    assert not protection.protected  # the state machine still follows the runner


def test_without_an_agent_uri_there_is_no_protection_object_and_no_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    assert from_environment() is None
    silent = EcsTaskProtection(None)
    silent.busy()
    silent.idle()  # nothing to call, nothing raised


def test_from_environment_reads_the_agent_uri_and_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_AGENT_URI", "http://169.254.170.2/api/abc-123/")
    monkeypatch.setenv("TASKFLEET_ECS_PROTECTION_MINUTES", "5000")
    protection = from_environment()
    assert protection is not None
    assert protection.agent_uri == "http://169.254.170.2/api/abc-123"
    assert protection.minutes == 2880  # clamped to the ECS maximum


# --- a real runner process -------------------------------------------------------------------------


@pytest.fixture
def ecs_agent(agent: FakeAgent, monkeypatch: pytest.MonkeyPatch) -> FakeAgent:
    """The fake agent, announced to runner subprocesses as ECS does (ECS_AGENT_URI)."""
    monkeypatch.setenv("ECS_AGENT_URI", agent.url)
    return agent


def test_a_running_runner_holds_protection_only_while_it_executes_a_task(
    client: Any, cluster: str, runners: Any, tmp_path: Path, ecs_agent: FakeAgent
) -> None:
    from tests.e2e.workflows import Gated

    agent = ecs_agent
    runner = runners.start(cluster, "Gated")
    job = client.jobs().submit("protected", Gated("p"), cluster=cluster)
    wait_until(lambda: marked(tmp_path, "started-p-1"), what="task start")
    assert agent.states == [True], "protected before the task's code runs"
    open_gate(tmp_path, "p")
    assert wait_until(job_done(client, job), what="job").state == "COMPLETED"
    wait_until(lambda: agent.states == [True, False], what="protection released when idle")
    assert runner.poll() is None  # still running, idle, unprotected: free to be scaled in


def test_sigterm_drains_the_task_and_releases_protection_within_the_stop_timeout(
    client: Any, cluster: str, runners: Any, tmp_path: Path, ecs_agent: FakeAgent
) -> None:
    from tests.e2e.workflows import Gated

    agent = ecs_agent
    grace = 3.0
    runner = runners.start(cluster, "Gated", grace=grace)
    job = client.jobs().submit("drained", Gated("d"), cluster=cluster)
    wait_until(lambda: marked(tmp_path, "started-d-1"), what="task start")
    signalled = time.monotonic()
    runner.send_signal(signal.SIGTERM)
    # The task outlives the grace period: the runner gives it back, releases protection, exits.
    assert runner.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
    elapsed = time.monotonic() - signalled
    assert elapsed < STOP_TIMEOUT_SECONDS and elapsed >= grace
    assert agent.states == [True, False]
    assert agent.calls[-1]["t"] - signalled < elapsed + 0.5
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.retry_count) == ("QUEUED", 0)  # given back, not failed
    open_gate(tmp_path, "d")
