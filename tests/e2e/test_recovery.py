"""Behaviours 7 (crash recovery, graceful shutdown) and 8 (nothing is stuck after a handler crash)."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest
from taskfleet import Client, ServerError
from taskfleet.http import Transport
from taskfleet_functions import faults

from tests.e2e.workflows import FanOut, Gated, Noop
from tests.support.observe import executions, marked, open_gate
from tests.support.waits import job_done, wait_until


@pytest.fixture(autouse=True)
def _disarm():
    faults.disarm_all()
    yield
    faults.disarm_all()


def test_sigkilled_runner_loses_its_lease_and_another_runner_completes_the_task(
    client, cluster, runners, tmp_path: Path
):
    victim = runners.start(cluster, "Gated", "Noop")
    job = client.jobs().submit("crash", Gated("g", 1), cluster=cluster, max_retries=0)
    wait_until(lambda: marked(tmp_path, "started-g-1"), what="first attempt to start")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    open_gate(tmp_path, "g")
    runners.start(cluster, "Gated", "Noop")
    assert wait_until(job_done(client, job), timeout=60, what="job after crash").state == "COMPLETED"
    root = next(t for t in client.jobs().tasks(job) if t.parent_id is None)
    # re-queued automatically, not counted against max_retries (which was 0)
    assert (root.state, root.attempt, root.lease_losses, root.retry_count) == ("COMPUTED", 2, 1, 0)
    starts = [e for e in executions(tmp_path) if e["label"] == "g" and e["phase"] == "start"]
    assert [e["attempt"] for e in starts] == [1, 2] and starts[0]["pid"] != starts[1]["pid"]


def test_sigterm_lets_the_running_task_finish_within_the_grace_period(client, cluster, runners, tmp_path: Path):
    runner = runners.start(cluster, "Gated", grace=30)
    job = client.jobs().submit("drain", Gated("g"), cluster=cluster)
    wait_until(lambda: marked(tmp_path, "started-g-1"), what="task start")
    runner.send_signal(signal.SIGTERM)
    open_gate(tmp_path, "g")
    assert runner.wait(timeout=30) == 0
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.attempt) == ("COMPUTED", 1)
    assert client.jobs().find(job).state == "COMPLETED"


def test_sigterm_past_the_grace_period_gives_the_task_back_without_counting_a_retry(
    client, cluster, runners, tmp_path: Path
):
    runner = runners.start(cluster, "Gated", grace=0.5)
    job = client.jobs().submit("give-back", Gated("g"), cluster=cluster)
    wait_until(lambda: marked(tmp_path, "started-g-1"), what="task start")
    runner.send_signal(signal.SIGTERM)
    assert runner.wait(timeout=30) == 0
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.retry_count, task.lease_losses) == ("QUEUED", 0, 0)
    open_gate(tmp_path, "g")
    runners.start(cluster, "Gated")
    assert wait_until(job_done(client, job), what="job after give-back").state == "COMPLETED"
    (task,) = client.jobs().tasks(job)
    assert (task.state, task.attempt, task.retry_count) == ("COMPUTED", 2, 0)


def test_handler_crash_between_commit_and_ticket_send_is_repaired(client, cluster, runners, tmp_path: Path):
    # Given the completion handler dies after recording the parent COMPUTED, before sending the
    # subtasks' tickets, every time, so the reporting runner gives up
    faults.arm("complete.after_commit", times=1_000)
    first = runners.start(cluster, "FanOut", "Noop")
    job = client.jobs().submit("crash-after-commit", FanOut("p", 5), cluster=cluster)
    wait_until(lambda: faults.hits("complete.after_commit") >= 1, what="the injected crash")
    parent = next(t for t in client.jobs().tasks(job) if t.parent_id is None)
    assert parent.state == "COMPUTED"  # the write happened; the send did not
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    faults.disarm_all()
    # When another runner comes along, the parent's ticket reappears and its claim repairs the state
    runners.start(cluster, "FanOut", "Noop")
    assert wait_until(job_done(client, job), timeout=60, what="repaired job").state == "COMPLETED"
    runs = Counter(e["label"] for e in executions(tmp_path))
    assert runs == {"p": 1, **{f"p.{i}": 1 for i in range(5)}}


def test_submit_crash_before_dispatch_is_repaired_by_the_sweeper(stack, client, cluster, runners, tmp_path: Path):
    runners.start(cluster, "Noop")
    faults.arm("submit.after_write", times=1)
    no_retry = Client(stack.url)
    no_retry.transport = Transport(stack.url, retries=0)
    with pytest.raises(ServerError):
        no_retry.jobs().submit("crash-submit", [Noop("a"), Noop("b")], cluster=cluster, client_token="crash-1")
    # The job exists (written before the crash), but no ticket was sent; the sweeper finds it
    (job,) = client.jobs().list(name="crash-submit", limit=1)
    assert wait_until(job_done(client, job), timeout=30, what="sweeper repair").state == "COMPLETED"
    assert Counter(e["label"] for e in executions(tmp_path)) == {"a": 1, "b": 1}
    assert stack.sweeps > 0


def test_dependency_dispatch_crash_is_repaired_by_the_ticket_of_the_completing_task(
    client, cluster, runners, tmp_path: Path
):
    # The fan-in's ticket is sent when the last fan-out child completes; crash right before that send
    faults.arm("propagate.before_dispatch", times=1_000)
    first = runners.start(cluster, "FanOut", "Noop", "OtherNoop")
    job = client.jobs().submit("crash-propagate", FanOut("p", 1, ""), cluster=cluster)
    wait_until(lambda: faults.hits("propagate.before_dispatch") >= 1, what="the injected crash")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    faults.disarm_all()
    runners.start(cluster, "FanOut", "Noop", "OtherNoop")
    assert wait_until(job_done(client, job), timeout=60, what="repaired job").state == "COMPLETED"
    assert Counter(e["label"] for e in executions(tmp_path)) == {"p": 1, "p.0": 1, "p.fanin": 1}
