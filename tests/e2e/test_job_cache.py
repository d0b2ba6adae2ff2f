"""Job caches end to end: runner processes (`taskfleet runner`, which takes TASKFLEET_CACHE_BUCKET) share
the S3 cache on the local stack's emulated S3; two jobs running at once, whose tasks write and read the
same key names, each see their own values only; a runner without a cache fails a task that touches
`context.job_cache`, saying to pass `cache=`.

The runners import the tasks below from this module (`tests.e2e.test_job_cache:...`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from taskfleet import ExecutionContext, Task

from tests.support import ROOT
from tests.support.waits import job_done, wait_until

PARTS = 6


class CacheJob(Task):
    """Root: writes the job's label, fans out writers of the same key names, then a checker after them."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        context.job_cache["label"] = self.label.encode()
        writers = context.submit_subtasks([WritePart(self.label, i) for i in range(PARTS)])
        context.submit_subtask(CheckParts(self.label), depends_on=writers)


class WritePart(Task):
    label: str
    index: int

    def execute(self, context: ExecutionContext) -> None:
        cache = context.job_cache
        # the root's value, written before this task was submitted
        if cache["label"] != self.label.encode():
            raise AssertionError(f"{self.label}: read label {cache['label']!r}")
        cache["last-writer"] = f"{self.label}-{self.index}".encode()  # one key name, written by every task
        cache.group("parts")[f"p{self.index}"] = f"{self.label}:{self.index}".encode()


class CheckParts(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        cache = context.job_cache
        parts = dict(cache.group("parts").items())
        expected = {f"p{i}": f"{self.label}:{i}".encode() for i in range(PARTS)}
        if parts != expected:
            raise AssertionError(f"{self.label}: parts {parts!r}")
        last = cache["last-writer"].decode()
        if not last.startswith(f"{self.label}-"):
            raise AssertionError(f"{self.label}: last-writer {last!r}")
        context.current_task.display = f"{self.label}: {sorted(cache)} + {len(parts)} parts"


class TouchesCache(Task):
    def execute(self, context: ExecutionContext) -> None:
        context.job_cache["k"] = b"v"


def start_runner(url: str, cluster: str, tasks: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "taskfleet_runner", "--url", url, "--cluster", cluster, "--grace", "5"]
        + [f"tests.e2e.test_job_cache:{t}" for t in tasks],
        cwd=ROOT,
        env={**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])},
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    for proc in procs:
        proc.wait(timeout=10)


def without_cache(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in ("TASKFLEET_CACHE_BUCKET", "AWS_ENDPOINT_URL_S3")}


def test_concurrent_jobs_writing_the_same_keys_see_only_their_own_values(
    stack: Any, client: Any, cluster: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    # Given two jobs submitted together, and three runner processes with the S3 cache of the local stack
    jobs = {label: client.jobs().submit(f"cache-{label}", CacheJob(label), cluster=cluster) for label in ("a", "b")}
    env = {**os.environ, **stack.cache_env()}
    for _ in range(3):
        processes.append(start_runner(stack.url, cluster, ["CacheJob", "WritePart", "CheckParts"], env))
    # When they run
    done = {label: wait_until(job_done(client, job), timeout=120, what=f"job {label}") for label, job in jobs.items()}
    # Then each job completed, and its checker saw its own values only
    for label, job in done.items():
        assert job.state == "COMPLETED", job.failure
        (check,) = [t for t in client.jobs().tasks(job) if t.name == "CheckParts"]
        assert check.display == f"{label}: ['label', 'last-writer'] + {PARTS} parts"
    # And the objects live under jobs/<job id>/ in the stack's cache bucket, each job's with its own values
    listed = stack.cache_client().list_objects_v2(Bucket=stack.cache_bucket, Prefix="jobs/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    for label, job in jobs.items():
        mine = [k.removeprefix(f"jobs/{job.id}/") for k in keys if k.startswith(f"jobs/{job.id}/")]
        assert sorted(mine) == sorted(["label", "last-writer"] + [f"parts/p{i}" for i in range(PARTS)])
        cache = stack.cache().group(job.id)
        assert cache["label"] == label.encode()
        assert {v.decode().split(":")[0] for _, v in cache.group("parts").items()} == {label}


def test_a_runner_without_a_cache_fails_the_task_saying_to_pass_cache(
    stack: Any, client: Any, cluster: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    job = client.jobs().submit("no-cache", TouchesCache(), cluster=cluster)
    processes.append(start_runner(stack.url, cluster, ["TouchesCache"], without_cache(dict(os.environ))))
    assert wait_until(job_done(client, job), timeout=60, what="the job").state == "FAILED"
    (task,) = client.jobs().tasks(job)
    assert task.state == "FAILED"
    assert task.failure["message"].startswith("NoCacheConfiguredError: ")
    assert "cache=" in task.failure["message"]


def test_taskfleet_dev_names_its_cache_bucket_and_how_runners_reach_it() -> None:
    dev = subprocess.Popen(
        [sys.executable, "-m", "taskfleet.cli", "dev", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert dev.stdout is not None
        banner = [dev.stdout.readline() for _ in range(6)]
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.communicate(timeout=60)
    text = "".join(banner)
    assert "Job cache bucket: taskfleet-cache" in text
    (export,) = [line for line in banner if "TASKFLEET_CACHE_BUCKET=" in line]
    assert "TASKFLEET_CACHE_BUCKET=taskfleet-cache" in export and "AWS_ENDPOINT_URL_S3=http://127.0.0.1:" in export


def test_the_cache_reads_the_endpoint_from_aws_endpoint_url(stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a runner outside the stack's process does: AmazonS3Cache(bucket) with the standard environment."""
    from taskfleet.cache import AmazonS3Cache

    env = stack.cache_env()
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL_S3"])
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, env[key])
    cache = AmazonS3Cache(env["TASKFLEET_CACHE_BUCKET"]).group("endpoint-check")
    cache["k"] = b"v"
    assert stack.cache().group("endpoint-check")["k"] == b"v"
