"""Job caches (sdk/taskfleet/cache.py): the one API of the three implementations, their scoping and layout,
name validation, and how the runner hands a job's scope to its tasks. S3 runs against moto in-process."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from taskfleet import ExecutionContext, Task, TaskfleetError
from taskfleet.cache import (
    AmazonS3Cache,
    CacheError,
    InMemoryCache,
    InvalidCacheKeyError,
    JobCache,
    LocalFileSystemCache,
    NoCacheConfiguredError,
)
from taskfleet.task import CurrentTask, JobRef
from taskfleet_runner.executor import Failure, Success, execute

BUCKET = "cache-test"
JOB_A = "0190f1e2-0000-7000-8000-00000000000a"
JOB_B = "0190f1e2-0000-7000-8000-00000000000b"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def object_keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.fixture(params=["memory", "files", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> JobCache:
    """A runner's cache (its root), of each kind in turn."""
    if request.param == "memory":
        return InMemoryCache()
    if request.param == "files":
        return LocalFileSystemCache(tmp_path / "cache")
    return AmazonS3Cache(BUCKET, session=request.getfixturevalue("s3"))


# --- the API, the same for all three -------------------------------------------------------------------


def test_a_value_written_is_read_back_and_a_missing_key_is_a_key_error(root: JobCache) -> None:
    cache = root.group(JOB_A)
    cache["scene"] = b"\x00\x01 bytes"
    assert cache["scene"] == b"\x00\x01 bytes"
    assert "scene" in cache
    assert "other" not in cache
    with pytest.raises(KeyError, match="other"):
        cache["other"]
    cache["scene"] = bytearray(b"new")  # overwritten; bytes-like values are stored as bytes
    assert cache["scene"] == b"new"
    assert type(cache["scene"]) is bytes


def test_values_must_be_bytes(root: JobCache) -> None:
    with pytest.raises(TypeError, match="bytes"):
        root.group(JOB_A)["k"] = "text"  # type: ignore[assignment]
    assert "k" not in root.group(JOB_A)


def test_iteration_yields_the_scopes_own_keys_sorted_and_items_their_values(root: JobCache) -> None:
    cache = root.group(JOB_A)
    assert list(cache) == []
    for key in ("b", "a", "c-1"):
        cache[key] = key.encode()
    cache.group("tiles")["t0"] = b"tile"  # a group's keys are not the scope's
    assert list(cache) == ["a", "b", "c-1"]
    assert dict(cache.items()) == {"a": b"a", "b": b"b", "c-1": b"c-1"}
    assert list(cache.group("tiles")) == ["t0"]
    assert list(cache.group("empty")) == []


def test_groups_are_nested_scopes_with_the_same_api(root: JobCache) -> None:
    cache = root.group(JOB_A)
    cache["x"] = b"top"
    tiles = cache.group("tiles")
    tiles["x"] = b"tile"
    tiles.group("z3")["x"] = b"deep"
    assert (cache["x"], tiles["x"], cache.group("tiles").group("z3")["x"]) == (b"top", b"tile", b"deep")
    assert "x" not in cache.group("other")
    assert list(root.group(JOB_A).group("tiles")) == ["x"]  # the same scope, however reached


def test_no_job_sees_another_jobs_keys(root: JobCache) -> None:
    a, b = root.group(JOB_A), root.group(JOB_B)
    a["result"] = b"A"
    a.group("g")["k"] = b"A/g"
    b["result"] = b"B"
    assert (a["result"], b["result"]) == (b"A", b"B")
    assert "k" not in b.group("g")
    assert list(b) == ["result"]
    assert list(root) == []  # the jobs are groups of the root, not keys


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "/a", "..", ".", ".hidden", "a\\b", "nul\x00", "tab\tkey", "x" * 256, "é" * 128],
)
def test_names_that_could_leave_their_scope_are_refused(root: JobCache, name: str) -> None:
    cache = root.group(JOB_A)
    with pytest.raises(InvalidCacheKeyError):
        cache[name] = b"v"
    with pytest.raises(InvalidCacheKeyError):
        cache[name]
    with pytest.raises(InvalidCacheKeyError):
        _ = name in cache
    with pytest.raises(InvalidCacheKeyError):
        cache.group(name)
    assert list(cache) == []


def test_a_name_is_not_a_str_is_refused(root: JobCache) -> None:
    with pytest.raises(InvalidCacheKeyError, match="str"):
        root.group(JOB_A)[b"bytes"] = b"v"  # type: ignore[index]
    with pytest.raises(InvalidCacheKeyError):
        root.group(3)  # type: ignore[arg-type]


def test_long_and_unusual_names_within_the_rules_work(root: JobCache) -> None:
    cache = root.group(JOB_A)
    for name in ("x" * 255, "scène 1 (v2).tif", "a..b", "~user", "trailing."):
        cache[name] = name.encode()
        assert cache[name] == name.encode()


def test_invalid_cache_key_error_is_a_value_error_and_a_taskfleet_error() -> None:
    assert issubclass(InvalidCacheKeyError, ValueError)
    assert issubclass(InvalidCacheKeyError, TaskfleetError)
    assert issubclass(NoCacheConfiguredError, TaskfleetError)


# --- where each implementation keeps things --------------------------------------------------------------


def test_the_in_memory_cache_is_shared_by_everything_given_the_same_instance() -> None:
    cache = InMemoryCache()
    cache.group(JOB_A)["k"] = b"v"
    assert cache.group(JOB_A)["k"] == b"v"
    assert "k" not in InMemoryCache().group(JOB_A)


def test_the_file_cache_keeps_files_under_root_job_groups_key(tmp_path: Path) -> None:
    root = LocalFileSystemCache(tmp_path)
    root.group(JOB_A).group("tiles").group("z3")["t.png"] = b"png"
    assert (tmp_path / JOB_A / "tiles" / "z3" / "t.png").read_bytes() == b"png"
    # another process (a runner on the same file system) sees it
    assert LocalFileSystemCache(tmp_path).group(JOB_A).group("tiles").group("z3")["t.png"] == b"png"
    # a write leaves no temporary file behind
    assert sorted(p.name for p in (tmp_path / JOB_A / "tiles" / "z3").iterdir()) == ["t.png"]


def test_the_file_cache_lists_files_only_and_skips_dot_files(tmp_path: Path) -> None:
    root = LocalFileSystemCache(tmp_path)
    job = root.group(JOB_A)
    job["k"] = b"v"
    (tmp_path / JOB_A / ".DS_Store").write_bytes(b"finder")
    (tmp_path / JOB_A / "sub").mkdir()
    assert list(job) == ["k"]
    assert "sub" not in job
    with pytest.raises(KeyError):
        job["sub"]


def test_the_file_cache_cannot_hold_a_name_as_both_key_and_group(tmp_path: Path) -> None:
    job = LocalFileSystemCache(tmp_path).group(JOB_A)
    job.group("g")["k"] = b"v"
    with pytest.raises(CacheError, match="group"):
        job["g"] = b"v"
    job["f"] = b"v"
    with pytest.raises(CacheError, match="key of its parent"):
        job.group("f")["k"] = b"v"
    assert "k" not in job.group("f")
    with pytest.raises(KeyError):
        job.group("f")["k"]


def test_the_s3_cache_keeps_objects_under_prefix_job_groups_key(s3: Any) -> None:
    AmazonS3Cache(BUCKET, session=s3).group(JOB_A).group("tiles")["t.png"] = b"png"
    AmazonS3Cache(BUCKET, prefix="team/x/", session=s3).group(JOB_A)["k"] = b"v"
    AmazonS3Cache(BUCKET, prefix="", session=s3)["top"] = b"v"
    assert object_keys(s3) == [f"jobs/{JOB_A}/tiles/t.png", f"team/x/{JOB_A}/k", "top"]
    assert list(AmazonS3Cache(BUCKET, prefix="", session=s3)) == ["top"]


def test_the_s3_cache_lists_past_one_page(s3: Any) -> None:
    job = AmazonS3Cache(BUCKET, session=s3).group(JOB_A)
    for i in range(1005):
        s3.put_object(Bucket=BUCKET, Key=f"jobs/{JOB_A}/k{i:04d}", Body=b"")
    assert len(list(job)) == 1005


def test_the_s3_cache_takes_a_boto3_session_or_builds_its_own_client(s3: Any) -> None:
    AmazonS3Cache(BUCKET, session=boto3.session.Session(region_name="us-east-1")).group(JOB_A)["k"] = b"1"
    assert AmazonS3Cache(BUCKET).group(JOB_A)["k"] == b"1"  # the standard chain (moto's here)
    with pytest.raises(TypeError, match="session"):
        AmazonS3Cache(BUCKET, session=42).group(JOB_A)["k"]


def test_the_s3_prefix_is_checked_like_a_name() -> None:
    with pytest.raises(InvalidCacheKeyError):
        AmazonS3Cache(BUCKET, prefix="jobs/../other")
    with pytest.raises(CacheError):
        AmazonS3Cache("")


class _ClientError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class DeniedS3:
    """S3 as a policy with ListBucket only under a prefix condition answers: 403 for a missing key."""

    def __init__(self, listed: list[str]) -> None:
        self.listed = listed

    def put_object(self, **kwargs: Any) -> None:  # marks this as an S3 client
        raise AssertionError("not used")

    def get_object(self, **kwargs: Any) -> Any:
        raise _ClientError("AccessDenied")

    def head_object(self, **kwargs: Any) -> Any:
        raise _ClientError("403")

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        return {"Contents": [{"Key": k} for k in self.listed if k.startswith(kwargs["Prefix"])][:1]}


def test_a_403_for_a_key_that_is_not_listed_means_missing() -> None:
    cache = AmazonS3Cache(BUCKET, session=DeniedS3(listed=[f"jobs/{JOB_A}/k-longer"])).group(JOB_A)
    with pytest.raises(KeyError):
        cache["k"]
    assert "k" not in cache


def test_a_403_for_a_key_that_exists_is_an_error() -> None:
    cache = AmazonS3Cache(BUCKET, session=DeniedS3(listed=[f"jobs/{JOB_A}/k"])).group(JOB_A)
    with pytest.raises(_ClientError):
        cache["k"]
    assert "k" in cache


# --- the runner hands each task its job's scope --------------------------------------------------------


def current_task(job_id: str = JOB_A) -> CurrentTask:
    return CurrentTask(
        id="t1",
        job=JobRef(job_id, "job"),
        identifier=("T", "v0.0"),
        retry_count=0,
        attempt=1,
        parent_id=None,
        cluster="c",
    )


def test_the_context_job_cache_is_the_runner_caches_group_of_the_job() -> None:
    cache = InMemoryCache()
    context = ExecutionContext(current_task(), cache=cache)
    context.job_cache["k"] = b"v"
    assert cache.group(JOB_A)["k"] == b"v"
    assert context.job_cache is context.job_cache
    assert "k" not in ExecutionContext(current_task(JOB_B), cache=cache).job_cache


def test_without_a_cache_the_context_says_to_pass_cache() -> None:
    context = ExecutionContext(current_task())
    with pytest.raises(NoCacheConfiguredError, match="cache="):
        context.job_cache  # noqa: B018 - the access itself raises


class UsesCache(Task):
    key: str

    def execute(self, context: ExecutionContext) -> None:
        context.job_cache[self.key] = b"seen"
        context.current_task.display = ",".join(context.job_cache)


def claim(job_id: str) -> dict[str, Any]:
    return {
        "id": "t1",
        "job_id": job_id,
        "name": "UsesCache",
        "version": "v0.0",
        "attempt": 1,
        "cluster": "c",
        "input": '"k"',
    }


def test_a_task_touching_the_job_cache_on_a_runner_without_one_fails_naming_cache() -> None:
    result = execute(UsesCache, claim(JOB_A))
    assert isinstance(result, Failure)
    assert result.error_type == "NoCacheConfiguredError"
    assert "cache=" in result.message


def test_the_executor_gives_the_task_its_jobs_scope_of_the_runners_cache() -> None:
    cache = InMemoryCache()
    result = execute(UsesCache, claim(JOB_A), None, cache)
    assert isinstance(result, Success) and result.display == "k"
    assert list(cache.group(JOB_A)) == ["k"]
    assert list(cache.group(JOB_B)) == []


def test_client_runner_passes_cache_to_the_task_runner() -> None:
    from taskfleet import Client

    cache = InMemoryCache()
    runner = Client("http://127.0.0.1:9").runner("default", [UsesCache], cache=cache, install_signal_handlers=False)
    assert runner.cache is cache


def test_the_runner_command_uses_the_bucket_in_taskfleet_cache_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    from taskfleet import cli, client

    seen: dict[str, Any] = {}

    class Stub:
        def run_all(self) -> None:
            pass

    def runner(self: Any, cluster: Any, tasks: Any, **options: Any) -> Stub:
        seen.update(options)
        return Stub()

    monkeypatch.setattr(client.Client, "runner", runner)
    args = argparse.Namespace(
        tasks=["tests.unit.test_cache:UsesCache"], url="http://127.0.0.1:9", cluster=None, grace=1.0, until_idle=True
    )
    monkeypatch.delenv("TASKFLEET_CACHE_BUCKET", raising=False)
    cli.cmd_runner(args)
    assert seen["cache"] is None
    monkeypatch.setenv("TASKFLEET_CACHE_BUCKET", "my-bucket")
    cli.cmd_runner(args)
    assert isinstance(seen["cache"], AmazonS3Cache)
    assert (seen["cache"].bucket, seen["cache"].prefix) == ("my-bucket", "jobs")
