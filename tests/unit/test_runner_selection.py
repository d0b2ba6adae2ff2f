"""How a runner selects its work: which registered class runs a submitted (name, version), and which lanes
(its cluster's queues per task identifier) it asks the orchestrator for and polls (docs/architecture.md,
"Queue protocol"). Against an in-memory orchestrator and SQS; no network."""

from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from taskfleet import ApiUnavailableError, DuplicateTaskError, ExecutionContext, Task
from taskfleet_runner.lanes import Lanes, Receipt
from taskfleet_runner.runner import LANE_REFRESH_IDLE_SECONDS, LANE_REFRESH_SECONDS, LONG_POLL_SECONDS, TaskRunner


def make(version: str, name: str = "V") -> type[Task]:
    class V(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return name, version

        def execute(self, context: ExecutionContext) -> None:
            pass

    V.__qualname__ = f"{name}{version}"
    return V


def test_a_runner_runs_older_minor_versions_of_its_one_registered_version():
    runner = TaskRunner.__new__(TaskRunner)
    runner._registry = {}
    v15 = make("v1.5")
    runner.register(v15)
    runner.register(v15)  # the same class again changes nothing
    assert runner.task_class_for("V", "v1.0") is v15
    assert runner.task_class_for("V", "v1.5") is v15
    assert runner.task_class_for("V", "v1.6") is None
    assert runner.task_class_for("V", "v2.0") is None
    assert runner.task_class_for("V", "v0.9") is None
    assert runner.task_class_for("W", "v1.0") is None
    # one version per task name: another version of V is refused, and the registration stays as it was
    for other in (make("v1.2"), make("v2.0")):
        with pytest.raises(DuplicateTaskError, match="share the task name 'V'"):
            runner.register(other)
    assert runner._registry == {"V": [("v1.5", v15)]}


# --- registration: the lanes a runner asks for --------------------------------------------------------------


def lane(slug: str, name: str, version: str) -> dict[str, str]:
    return {"name": name, "version": version, "url": f"http://127.0.0.1:4566/123456789012/tf-{slug}--{name}{version}"}


class FakeApi:
    """The orchestrator's routes a connecting runner calls, answering `lanes` for POST /runner/<slug>/lanes (or
    raising `fail`); every request is recorded."""

    base_url = "http://127.0.0.1:8000"

    def __init__(self, slug: str, lanes: list[dict[str, str]]) -> None:
        self.slug = slug
        self.lanes = lanes
        self.requests: list[tuple[str, str, Any]] = []
        self.fail: Exception | None = None

    def request(self, method: str, path: str, body: Any = None, query: Any = None) -> Any:
        self.requests.append((method, path, body))
        if (method, path) == ("GET", "/config"):
            return {"region": "us-east-1", "local": True, "lease_seconds": 30}
        if (method, path) == ("GET", f"/clusters/{self.slug}"):
            return {"slug": self.slug, "name": self.slug}
        if (method, path) == ("POST", f"/runner/{self.slug}/lanes"):
            if self.fail is not None:
                raise self.fail
            return {"cluster": self.slug, "lanes": list(self.lanes)}
        raise AssertionError(f"unexpected request {method} {path}")

    def registrations(self) -> list[tuple[str, Any]]:
        return [(path, body) for method, path, body in self.requests if path.endswith("/lanes")]


def connected(cluster: str, tasks: list[type[Task]], lanes: list[dict[str, str]]) -> tuple[TaskRunner, FakeApi]:
    api = FakeApi(cluster or "default", lanes)
    client: Any = SimpleNamespace(transport=api)
    runner = TaskRunner(client, cluster, tasks, runner_id="runner-1", install_signal_handlers=False)
    runner._connect()
    return runner, api


@pytest.mark.parametrize(("cluster", "slug"), [("images", "images"), ("", "default")])
def test_a_connecting_runner_registers_every_identifier_it_can_run_and_polls_the_lanes_it_gets(cluster, slug):
    # Given a runner of V v1.5 and W v0.3, on a cluster whose orchestrator knows these lanes
    answered = [lane(slug, "V", "v1.5"), lane(slug, "V", "v1.0"), lane(slug, "W", "v0.3")]
    runner, api = connected(cluster, [make("v1.5"), make("v0.3", "W")], answered)
    # Then it asked its own cluster's route once, naming every registered identifier
    ((path, body),) = api.registrations()
    assert path == f"/runner/{slug}/lanes"
    assert body["runner_id"] == "runner-1"
    assert sorted(map(tuple, body["tasks"])) == [("V", "v1.5"), ("W", "v0.3")]
    # and it polls exactly the lanes the orchestrator answered (older minors included), through SQS at their host
    assert runner._lanes is not None
    assert runner._lanes.urls == [item["url"] for item in answered]
    assert runner._sqs.meta.endpoint_url == "http://127.0.0.1:4566"


def test_a_runner_looks_for_lanes_created_since_now_and_then_and_keeps_its_lanes_when_it_cannot():
    first = [lane("c", "V", "v1.5")]
    runner, api = connected("c", [make("v1.5")], first)
    assert runner._lanes is not None
    older = lane("c", "V", "v1.1")  # an older minor version, submitted for the first time since
    api.lanes = [older, *first]

    def checked_ago(seconds: float) -> None:
        runner._lanes_checked = time.monotonic() - seconds

    # A runner at work asks again only after LANE_REFRESH_SECONDS
    checked_ago(LANE_REFRESH_IDLE_SECONDS + 1)
    runner._refresh_lanes(falling_idle=False)
    assert len(api.registrations()) == 1
    # one that falls idle, once LANE_REFRESH_IDLE_SECONDS have passed, and then polls the new lane too
    runner._refresh_lanes(falling_idle=True)
    assert len(api.registrations()) == 2
    assert runner._lanes.urls == [first[0]["url"], older["url"]]
    runner._refresh_lanes(falling_idle=True)
    assert len(api.registrations()) == 2  # not again within the minute
    checked_ago(LANE_REFRESH_SECONDS + 1)
    runner._refresh_lanes(falling_idle=False)
    assert len(api.registrations()) == 3
    assert runner._lanes.urls == [first[0]["url"], older["url"]]  # each lane once
    # When the orchestrator cannot be reached, the runner keeps polling the lanes it knows, and waits as long
    # again before it asks (no request per receive while the orchestrator is down)
    api.fail = ApiUnavailableError("orchestrator unreachable")
    checked_ago(LANE_REFRESH_SECONDS + 1)
    runner._refresh_lanes(falling_idle=False)
    assert len(api.registrations()) == 4
    assert runner._lanes.urls == [first[0]["url"], older["url"]]
    runner._refresh_lanes(falling_idle=True)
    assert len(api.registrations()) == 4


# --- selection among what the lanes deliver -----------------------------------------------------------------


class FakeSqs:
    """Several lanes: queued bodies per lane URL; visibility changes and receives are recorded. A receive on an
    empty lane is a long poll: it returns (empty) only once `release` is set."""

    def __init__(self, lanes: dict[str, list[dict[str, Any]]]) -> None:
        self.queued = {url: [json.dumps(b) for b in bodies] for url, bodies in lanes.items()}
        self.received_from: list[str] = []
        self.hidden: list[tuple[str, str, int]] = []  # (lane, receipt handle, seconds)
        self.release = threading.Event()

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int, WaitTimeSeconds: int, **_: Any) -> Any:
        self.received_from.append(QueueUrl)
        bodies = self.queued[QueueUrl][:MaxNumberOfMessages]
        del self.queued[QueueUrl][:MaxNumberOfMessages]
        if not bodies and WaitTimeSeconds:
            self.release.wait(timeout=30)
        return {"Messages": [{"ReceiptHandle": f"{QueueUrl}#{i}", "Body": b} for i, b in enumerate(bodies)]}

    def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.hidden.append((QueueUrl, ReceiptHandle, VisibilityTimeout))

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> None:
        self.hidden.extend((QueueUrl, e["ReceiptHandle"], e["VisibilityTimeout"]) for e in Entries)


def polling(lanes: dict[str, list[dict[str, Any]]]) -> tuple[TaskRunner, FakeSqs]:
    sqs = FakeSqs(lanes)
    runner = TaskRunner(cast(Any, None), "c", [make("v1.5"), make("v0.1", "W")], install_signal_handlers=False)
    runner._sqs, runner.lease_seconds = sqs, 30
    runner._lanes, runner._lanes_checked = Lanes(sqs, list(lanes)), time.monotonic()
    return runner, sqs


def ticket(name: str, version: str, task: str) -> dict[str, Any]:
    return {"job": "j", "task": task, "name": name, "version": version, "attempt": 1}


def test_a_ticket_in_any_lane_is_taken_while_the_long_polls_of_the_others_are_still_open():
    # Given a runner of two lanes, and a ticket only in the second one
    runner, sqs = polling({"lane-v": [], "lane-w": [ticket("W", "v0.1", "t1")]})
    try:
        # When it receives with a long poll (the empty lane's poll stays open until released)
        started = time.monotonic()
        candidate = runner._receive_runnable(LONG_POLL_SECONDS)
        # Then it got that ticket without waiting for the other lane, with the receipt of its own lane
        assert time.monotonic() - started < LONG_POLL_SECONDS / 2
        assert candidate is not None and candidate["ticket"]["task"] == "t1"
        assert candidate["receipt"] == Receipt("lane-w", "lane-w#0")
        assert sorted(sqs.received_from) == ["lane-v", "lane-w"]
    finally:
        sqs.release.set()
    # and the open poll is not abandoned: a stopping runner waits for it and gets what it delivered
    assert runner._lanes is not None and runner._lanes.drain(10) == []
    assert runner._lanes._inflight == {}


def test_a_ticket_the_runner_cannot_run_is_hidden_for_a_lease_and_never_taken(caplog):
    # Exact lanes never deliver one; should a lane ever do (a ticket sent to the wrong lane), the runner
    # must neither run it nor spin on it: it hides it for a lease and goes on with what it can run.
    runner, sqs = polling({"lane-v": [ticket("V", "v1.6", "newer"), ticket("V", "v1.4", "mine")]})
    runner._average_seconds = 0.01  # prefetch: both tickets in one receive
    with caplog.at_level(logging.WARNING, logger="taskfleet.runner"):
        candidate = runner._receive_runnable(0)
    assert candidate is not None and candidate["ticket"]["task"] == "mine"
    assert list(runner._buffer) == []
    assert sqs.hidden == [("lane-v", "lane-v#0", 30)]
    assert "which this runner cannot run" in caplog.text
