"""Runner prefetch against the local stack: fewer receives than tasks, every task once, work still spread over
runners, and buffered tickets handed back (not left hidden for the visibility timeout)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.workflows import Gated, Noop, Sleepy
from tests.support.observe import executions, lane_urls, marked, open_gate
from tests.support.waits import job_done, wait_until


def visible(stack: Any, slug: str) -> int:
    """Messages of a cluster's lanes that a receive would return now."""
    sqs = stack.boto_client("sqs")
    total = 0
    for url in lane_urls(stack, slug):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        total += int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    return total


def connected_runners(stack: Any) -> int:
    """Runners look their cluster up (GET /clusters/<slug>) and then ask for its lanes, right before their
    first receive."""
    return stack.request_counts().get("api:GET /clusters", 0)


def test_short_tasks_take_far_fewer_receives_than_tasks_and_run_once(
    stack, client, cluster, runners, tmp_path: Path, *, monkeypatch: pytest.MonkeyPatch
):
    # The stack's sweeper receives from every cluster's DLQ; count its receives to leave them out.
    sweeper_receives = Counter[str]()
    receive = stack.orchestrator.queues.receive

    def counted(*args: Any, **kwargs: Any) -> Any:
        sweeper_receives["n"] += 1
        return receive(*args, **kwargs)

    monkeypatch.setattr(stack.orchestrator.queues, "receive", counted)
    # Given two runners on a fresh cluster
    for _ in range(2):
        runners.start(cluster, "Noop")
    # When a job of 80 no-op tasks runs
    stack.emulator.reset_counts()
    sweeper_receives.clear()
    job = client.jobs().submit("prefetch", [Noop(f"n{i}") for i in range(80)], cluster=cluster)
    assert wait_until(job_done(client, job), timeout=120, what="job").state == "COMPLETED"
    runner_receives = stack.request_counts().get("sqs:ReceiveMessage", 0) - sweeper_receives["n"]
    # Then the runners made far fewer ReceiveMessage requests than there were tasks (one each without prefetch)
    assert runner_receives < 0.5 * 80, runner_receives
    # and every task ran exactly once, in its first attempt
    assert Counter(e["label"] for e in executions(tmp_path)) == {f"n{i}": 1 for i in range(80)}
    assert {t.attempt for t in client.jobs().tasks(job)} == {1}


def test_short_tasks_still_spread_over_four_runners(stack, client, cluster, runners, tmp_path: Path):
    # Given four runners, all polling the cluster
    before = connected_runners(stack)
    procs = [runners.start(cluster, "Sleepy") for _ in range(4)]
    wait_until(lambda: connected_runners(stack) - before >= 4, timeout=60, what="four runners connected")
    # When 60 tasks of 100 ms run (a runner prefetches several of them at a time)
    job = client.jobs().submit("spread", [Sleepy(f"s{i}", 0.1) for i in range(60)], cluster=cluster)
    assert wait_until(job_done(client, job), timeout=120, what="job").state == "COMPLETED"
    # Then each ran exactly once, and every runner ran a fair share (15 each if perfectly even)
    starts = [e for e in executions(tmp_path) if e["phase"] == "start"]
    assert Counter(e["label"] for e in starts) == {f"s{i}": 1 for i in range(60)}
    per_runner = Counter(e["pid"] for e in starts)
    assert set(per_runner) == {p.pid for p in procs}, per_runner
    assert min(per_runner.values()) >= 5, per_runner


@pytest.mark.parametrize("trigger", ["sigterm", "long task"])
def test_buffered_tickets_are_handed_back_at_once(
    stack, client, cluster, runners, tmp_path: Path, *, monkeypatch: pytest.MonkeyPatch, trigger: str
):
    # Given a runner that ran a quick task first (so it prefetches), then received six gated tasks at once: all
    # of one lane, so that its first receive (one ticket, before any measurement) takes the quick one
    open_gate(tmp_path, "quick")
    quick = client.jobs().submit("quick", Gated("quick"), cluster=cluster)
    gated = client.jobs().submit("gated", [Gated(f"g{i}") for i in range(6)], cluster=cluster)
    # (received tickets stay hidden for 60 s here unless the runner hands them back)
    (lane,) = lane_urls(stack, cluster)
    stack.boto_client("sqs").set_queue_attributes(QueueUrl=lane, Attributes={"VisibilityTimeout": "60"})
    # a task that runs longer than the window hands the buffer back: the SIGTERM case uses a long window
    monkeypatch.setenv("TASKFLEET_PREFETCH_WINDOW", "30" if trigger == "sigterm" else "3")
    first = runners.start(cluster, "Gated", grace=30)
    monkeypatch.delenv("TASKFLEET_PREFETCH_WINDOW")
    assert wait_until(job_done(client, quick), what="quick job").state == "COMPLETED"
    running = wait_until(lambda: [f"g{i}" for i in range(6) if marked(tmp_path, f"started-g{i}-1")], what="a start")
    assert visible(stack, cluster) == 0  # one running, five buffered by that runner
    # When it is told to stop (or its task outlasts the prefetch window)
    if trigger == "sigterm":
        first.send_signal(signal.SIGTERM)
    since = time.monotonic()
    # Then the five buffered tickets are visible again long before their visibility timeout, the task still running
    wait_until(lambda: visible(stack, cluster) == 5, timeout=20, what="buffered tickets handed back")
    assert first.poll() is None and not (tmp_path / f"gate-{running[0]}").exists()
    # and another runner runs them
    second = runners.start(cluster, "Gated")
    for i in range(6):
        open_gate(tmp_path, f"g{i}")
    assert wait_until(job_done(client, gated), timeout=40, what="gated job").state == "COMPLETED"
    assert time.monotonic() - since < 45  # well inside the 60 s a hidden ticket would have waited
    starts = [e for e in executions(tmp_path) if e.get("phase") == "start" and e["label"] != "quick"]
    assert Counter(e["label"] for e in starts) == {f"g{i}": 1 for i in range(6)}  # each once, no takeover
    assert {t.attempt for t in client.jobs().tasks(gated)} == {1}
    if trigger == "sigterm":
        assert first.wait(timeout=30) == 0
        assert {e["label"] for e in starts if e["pid"] == second.pid} == {f"g{i}" for i in range(6)} - set(running)
