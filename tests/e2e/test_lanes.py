"""Task selection by lanes (docs/architecture.md, "Queue protocol"), with real runner subprocesses: a
runner finds its work whatever else waits in its cluster, run_all() returns only when nothing it can run
is left, a stopping runner leaves no ticket in flight, and a rolling upgrade runs each version on a
runner that can run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.workflows import Noop, OtherNoop, Pipeline, UpgradeNew, UpgradeOld
from tests.support.fleet import E2E
from tests.support.observe import executions
from tests.support.waits import job_done, wait_until

FOREIGN = 150


def start_logged(stack: Any, cluster: str, workdir: Path, log_name: str, *tasks: str) -> subprocess.Popen[bytes]:
    """A runner subprocess whose log (INFO) goes to a file the test reads."""
    env = {
        **os.environ,
        "TASKFLEET_TEST_DIR": str(workdir),
        "TASKFLEET_LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(E2E), os.environ.get("PYTHONPATH", "")]),
    }
    log = open(workdir / log_name, "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "taskfleet_runner", "--url", stack.url, "--cluster", cluster, "--grace", "5"]
        + [f"workflows:{t}" for t in tasks],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc


def idle_spells(workdir: Path, log_name: str) -> int:
    """How often the runner said it is idle with its receives under way."""
    path = workdir / log_name
    return path.read_text(errors="replace").count("idle: waiting for tickets") if path.exists() else 0


def receive_counts(stack: Any, url: str) -> list[int]:
    """Receive the visible tickets of a lane once (10 at a time) and say how often each had been received
    (SQS's ApproximateReceiveCount, this receive included); hands them back at once."""
    sqs = stack.boto_client("sqs")
    counts: list[int] = []
    resp = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )
    for message in resp.get("Messages", []):
        counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return counts


def test_a_runner_finds_its_tasks_behind_a_foreign_backlog_and_never_touches_it(
    stack, client, cluster, runners, tmp_path: Path
):
    # Given a cluster whose queue holds 150 tickets of a task no running runner can execute
    foreign = client.jobs().submit("foreign", [OtherNoop(f"f{i}") for i in range(FOREIGN)], cluster=cluster)
    # When a runner for another task starts beside them and 8 tasks of its own are submitted
    runners.start(cluster, "Noop")
    own = client.jobs().submit("own", [Noop(f"n{i}") for i in range(8)], cluster=cluster)
    # Then it runs all 8
    assert wait_until(job_done(client, own), timeout=60, what="own job").state == "COMPLETED"
    assert sorted(e["label"] for e in executions(tmp_path)) == sorted(f"n{i}" for i in range(8))
    # and never received a foreign ticket: each is received here for the first time
    lane = stack.orchestrator.clusters.lane_url(cluster, "OtherNoop", "v0.0")
    counts = receive_counts(stack, lane)
    assert counts and set(counts) == {1}
    assert client.jobs().find(foreign).state == "SUBMITTED"
    client.jobs().cancel(foreign)


def test_sequential_run_all_on_runners_with_different_task_sets(stack, client, cluster, runners, tmp_path: Path):
    # Given the distributed example: one runner downloads, one processes, both register the workflow
    job = client.jobs().submit("pipeline", Pipeline("p"), cluster=cluster)
    # When the downloading runner runs until idle, and then the processing one
    first = runners.start(cluster, "Pipeline", "Download", until_idle=True)
    assert first.wait(timeout=60) == 0
    after_first = sorted(e["label"] for e in executions(tmp_path))
    second = runners.start(cluster, "Pipeline", "Process", until_idle=True)
    assert second.wait(timeout=60) == 0
    # Then the first ran the workflow and the download, and left the processing to the second,
    # which ran it although the first had just looked at the cluster
    assert after_first == ["p", "p.download"]
    runs = {e["label"]: e["pid"] for e in executions(tmp_path)}
    assert runs == {"p": first.pid, "p.download": first.pid, "p.process": second.pid}
    assert client.jobs().find(job).state == "COMPLETED"


def test_a_stopped_idle_runner_leaves_no_ticket_in_flight(stack, client, cluster, runners, tmp_path: Path):
    # Given two idle runners on one cluster, each with its long polls under way, on a lane whose visibility
    # timeout is a minute (a ticket a stopped runner's poll kept would be invisible that long)
    client.jobs().submit("warm-up", Noop("warm-up"), cluster=cluster)  # creates the lane
    lane = stack.orchestrator.clusters.lane_url(cluster, "Noop", "v0.0")
    stack.boto_client("sqs").set_queue_attributes(QueueUrl=lane, Attributes={"VisibilityTimeout": "60"})
    stopping = start_logged(stack, cluster, tmp_path, "a.log", "Noop")
    staying = start_logged(stack, cluster, tmp_path, "b.log", "Noop")
    wait_until(lambda: len(executions(tmp_path)) == 1, timeout=30, what="the warm-up task")
    wait_until(lambda: idle_spells(tmp_path, "a.log") and idle_spells(tmp_path, "b.log"), what="both idle")
    try:
        # When one gets SIGTERM and a job is submitted at once
        stopping.send_signal(signal.SIGTERM)
        job = client.jobs().submit("right-after-the-stop", Noop("after"), cluster=cluster)
        # Then the other runner runs it well within the visibility timeout (whichever poll got the ticket)
        assert wait_until(job_done(client, job), timeout=30, what="the job").state == "COMPLETED"
        assert [e["pid"] for e in executions(tmp_path) if e["label"] == "after"] == [staying.pid]
        # and the stopped runner exits cleanly once its open receive returned
        assert stopping.wait(timeout=40) == 0
    finally:
        for proc in (stopping, staying):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def test_rolling_upgrade_runs_each_version_on_a_runner_that_can(stack, client, cluster, runners, tmp_path: Path):
    # Given v1.2 and v1.3 tasks of one identifier queued together
    old = [client.jobs().submit(f"old{i}", UpgradeOld(f"old{i}"), cluster=cluster) for i in range(5)]
    new = [client.jobs().submit(f"new{i}", UpgradeNew(f"new{i}"), cluster=cluster) for i in range(5)]
    # When a v1.2 runner runs until idle
    v12 = runners.start(cluster, "UpgradeOld", until_idle=True)
    assert v12.wait(timeout=60) == 0
    # Then it ran exactly the v1.2 tasks, and the v1.3 ones still wait
    assert sorted((e["label"], e["runner_version"]) for e in executions(tmp_path)) == [
        (f"old{i}", "v1.2") for i in range(5)
    ]
    assert {client.jobs().find(j).state for j in new} == {"SUBMITTED"}
    # When a v1.3 runner (which may run both) then runs until idle, it runs the rest
    v13 = runners.start(cluster, "UpgradeNew", until_idle=True)
    assert v13.wait(timeout=60) == 0
    ran = sorted((e["label"], e["runner_version"], e["pid"]) for e in executions(tmp_path))
    assert [r for r in ran if r[0].startswith("new")] == [(f"new{i}", "v1.3", v13.pid) for i in range(5)]
    assert {client.jobs().find(j).state for j in old + new} == {"COMPLETED"}


def test_the_sweeper_sends_a_dead_lettered_ticket_back_to_its_lane(stack, client, cluster, runners, tmp_path: Path):
    # Given two lanes that dead-letter into the cluster's DLQ after 100 receives
    jobs = [
        client.jobs().submit("noop", Noop("dead-lettered"), cluster=cluster),
        client.jobs().submit("other", OtherNoop("other"), cluster=cluster),
    ]
    sqs = stack.boto_client("sqs")
    dlq = stack.orchestrator.cluster(cluster)["dlq_url"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lanes = [stack.orchestrator.clusters.lane_url(cluster, n, "v0.0") for n in ("Noop", "OtherNoop")]
    for lane in lanes:
        attributes = sqs.get_queue_attributes(QueueUrl=lane, AttributeNames=["RedrivePolicy", "Policy", "QueueArn"])
        attributes = attributes["Attributes"]
        assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 100}
        # and, like the stack's queues, refuse requests not made over TLS
        (deny,) = json.loads(attributes["Policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == attributes["QueueArn"]
    # When both tickets land in the DLQ (moved there by hand, as SQS would after too many receives)
    for lane in lanes:
        message = sqs.receive_message(QueueUrl=lane, MaxNumberOfMessages=1)["Messages"][0]
        sqs.send_message(
            QueueUrl=dlq, MessageBody=message["Body"], MessageGroupId="g", MessageDeduplicationId=message["MessageId"]
        )
        sqs.delete_message(QueueUrl=lane, ReceiptHandle=message["ReceiptHandle"])
    # Then the sweeper sends each back to its own lane, where the runners of that task run it
    runners.start(cluster, "Noop")
    runners.start(cluster, "OtherNoop")
    for job in jobs:
        assert wait_until(job_done(client, job), timeout=30, what="a redriven job").state == "COMPLETED"
    assert sorted(e["label"] for e in executions(tmp_path)) == ["dead-lettered", "other"]
