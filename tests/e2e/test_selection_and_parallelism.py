"""Behaviours 1 (task selection: a runner runs the compatible versions of what it registered, each task kind
on a runner of that kind) and 3 (parallelism, exactly-once claims). Selection behind a foreign backlog, run_all
and rolling upgrades: tests/e2e/test_lanes.py."""

from __future__ import annotations

import concurrent.futures
import itertools
import secrets
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from taskfleet import Task

from tests.e2e.workflows import Noop, OtherNoop, Sleepy
from tests.support.observe import executions, queue_depth
from tests.support.waits import job_done, wait_until


def versioned(version: str) -> Callable[[str], Task]:
    class Versioned(Task):
        label: str

        @staticmethod
        def identifier() -> tuple[str, str]:
            return "Versioned", version

    return Versioned


def states(client: Any, job: Any) -> dict[str, str]:
    return {t.display: t.state for t in client.jobs().tasks(job)}


def test_runner_runs_only_compatible_versions_of_registered_tasks(client, cluster, runners, tmp_path: Path):
    # Given tasks of Versioned in four versions queued on this cluster (each in its lane), and one elsewhere
    jobs = {
        v: client.jobs().submit(f"v-{v}", versioned(v)(v), cluster=cluster) for v in ("v1.2", "v1.3", "v1.5", "v2.0")
    }
    other = client.jobs().submit("other-cluster", versioned("v1.3")("elsewhere"))  # default cluster
    # When a runner that registered Versioned v1.3 starts on this cluster
    runners.start(cluster, "VersionedOld")
    # Then same-major tasks with minor <= 3 run on it
    for v in ("v1.2", "v1.3"):
        assert wait_until(job_done(client, jobs[v]), what=f"{v} job").state == "COMPLETED"
    ran = {e["label"]: e["runner_version"] for e in executions(tmp_path)}
    assert ran == {"v1.2": "v1.3", "v1.3": "v1.3"}
    # and newer minors, other majors and other clusters stay queued
    for v in ("v1.5", "v2.0"):
        assert client.jobs().find(jobs[v]).state == "SUBMITTED"
        assert [t.state for t in client.jobs().tasks(jobs[v])] == ["QUEUED"]
    assert [t.state for t in client.jobs().tasks(other)] == ["QUEUED"]
    # When a runner with v1.5 joins, the v1.5 task runs; v2.0 still waits for a v2 runner
    runners.start(cluster, "VersionedNew")
    assert wait_until(job_done(client, jobs["v1.5"]), what="v1.5 job").state == "COMPLETED"
    assert {e["label"]: e["runner_version"] for e in executions(tmp_path)}["v1.5"] == "v1.5"
    assert [t.state for t in client.jobs().tasks(jobs["v2.0"])] == ["QUEUED"]
    client.jobs().cancel(other)


def test_runners_with_different_task_sets_both_make_progress(client, cluster, runners, tmp_path: Path):
    # Given two runners on one cluster that registered different task sets
    runners.start(cluster, "Noop")
    runners.start(cluster, "OtherNoop")
    # When tasks of both kinds are interleaved in one job (their tickets go to the lanes of their kinds)
    labels = [f"n{i}" if i % 2 else f"o{i}" for i in range(20)]
    tasks: list[Task] = [Noop(label) if label[0] == "n" else OtherNoop(label) for label in labels]
    job = client.jobs().submit("mixed", tasks, cluster=cluster)
    # Then every task runs, each on the runner that can run it
    assert wait_until(job_done(client, job), timeout=60, what="mixed job").state == "COMPLETED"
    runs = executions(tmp_path)
    assert sorted(e["label"] for e in runs) == sorted(labels)
    pid_by_name = {(e["name"], e["pid"]) for e in runs}
    assert len({pid for _, pid in pid_by_name}) == 2
    assert all(sum(1 for n, _ in pid_by_name if n == name) == 1 for name in ("Noop", "OtherNoop"))


def test_several_runners_share_a_cluster_and_run_each_task_once(stack, client, cluster, runners, tmp_path: Path):
    # Given three runner processes on one cluster
    for _ in range(3):
        runners.start(cluster, "Sleepy")
    # When a job of 24 tasks of 0.2 s each is submitted
    job = client.jobs().submit("parallel", [Sleepy(f"s{i}", 0.2) for i in range(24)], cluster=cluster)
    assert wait_until(job_done(client, job), timeout=60, what="parallel job").state == "COMPLETED"
    # Then each task was executed exactly once, and the work was shared
    starts = [e for e in executions(tmp_path) if e["phase"] == "start"]
    assert Counter(e["label"] for e in starts) == {f"s{i}": 1 for i in range(24)}
    assert len({e["pid"] for e in starts}) >= 2
    # and runs overlapped in time (they did not take turns)
    spans = sorted((e["t"], e["t"] + 0.2) for e in starts)
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))
    assert queue_depth(stack, cluster) == 0  # every ticket was consumed


def test_racing_claims_hand_each_attempt_to_exactly_one_runner(stack, client, cluster):
    # Given 40 queued tasks, and no runner process at all
    job = client.jobs().submit("race", [Noop(f"r{i}") for i in range(40)], cluster=cluster)
    task_ids = [t.id for t in client.jobs().tasks(job)]
    transport = client.transport

    def claim(args: tuple[str, int]) -> tuple[str, str]:
        task_id, runner = args
        lease = secrets.token_urlsafe(32)  # each claim with its own secret, as runners make them
        body = {"runner_id": f"racer-{runner}", "claim": {"job_id": job.id, "task_id": task_id, "lease": lease}}
        return task_id, transport.request("POST", f"/runner/{cluster}/next", body)["claim"]["status"]

    # When 8 racers claim every task concurrently through the API (each task 8 times)
    attempts = [(t, r) for t in task_ids for r in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(claim, attempts))
    # Then each task was handed out exactly once; everyone else was told it is busy
    wins = Counter(task_id for task_id, status in results if status == "run")
    assert wins == {t: 1 for t in task_ids}
    assert Counter(status for _, status in results) == {"run": 40, "busy": 280}
    assert {t.state for t in client.jobs().tasks(job)} == {"RUNNING"}
    assert {t.attempt for t in client.jobs().tasks(job)} == {1}
    client.jobs().cancel(job)
