"""The Connect endpoint on the wire, as the Tilebox SDK speaks it (gzip protobuf in, application/proto or a
JSON error out), without the SDK: what its runner depends on (idempotent reports answered 200, idle answers
with a pause, lease = recommended wait) and what a bad caller gets (typed Connect errors)."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
from taskfleet_functions.connect.proto import workflows_core_pb2 as core
from taskfleet_functions.connect.proto import workflows_diagram_pb2 as diagram_pb
from taskfleet_functions.connect.proto import workflows_job_pb2 as job_pb
from taskfleet_functions.connect.proto import workflows_task_pb2 as task_pb
from taskfleet_functions.connect.proto import workflows_workflows_pb2 as workflows_pb
from taskfleet_functions.connect.proto.tilebox_id_pb2 import ID

pytestmark = pytest.mark.e2e

JOBS, CLUSTERS, TASKS = "/workflows.v1.JobService/", "/workflows.v1.WorkflowsService/", "/workflows.v1.TaskService/"


class Answer:
    def __init__(self, status: int, content_type: str, body: bytes) -> None:
        self.status, self.content_type, self.body = status, content_type, body

    def message(self, kind: Any) -> Any:
        assert self.status == 200, (self.status, self.body)
        assert self.content_type == "application/proto"
        out = kind()
        out.ParseFromString(self.body)
        return out

    def error(self) -> dict[str, Any]:
        assert self.content_type == "application/json", self.content_type
        return dict(json.loads(self.body))


def call(
    url: str, path: str, message: Any, token: str | None, *, gzipped: bool = True, raw: bytes | None = None
) -> Answer:
    data = raw if raw is not None else message.SerializeToString()
    headers = {"content-type": "application/proto", "connect-protocol-version": "1"}
    if gzipped:
        data = gzip.compress(data)
        headers["content-encoding"] = "gzip"
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, response.headers["content-type"], response.read())
    except urllib.error.HTTPError as err:
        return Answer(err.code, err.headers["content-type"], err.read())


def submissions(*tasks: tuple[str, str, bytes], cluster: str = "") -> core.TaskSubmissions:
    """One group of tasks (name, version, input) on one cluster."""
    idents = list(dict.fromkeys((n, v) for n, v, _ in tasks))
    return core.TaskSubmissions(
        identifier_lookup=[core.TaskIdentifier(name=n, version=v) for n, v in idents],
        cluster_slug_lookup=[cluster],
        display_lookup=[""],
        task_groups=[
            core.TaskSubmissionGroup(
                inputs=[i for _, _, i in tasks],
                identifier_pointers=[idents.index((n, v)) for n, v, _ in tasks],
                cluster_slug_pointers=[0] * len(tasks),
                display_pointers=[0] * len(tasks),
            )
        ],
    )


def wanted(cluster: str, *identifiers: tuple[str, str]) -> task_pb.NextTaskToRun:
    return task_pb.NextTaskToRun(
        cluster_slug=cluster, identifiers=[core.TaskIdentifier(name=n, version=v) for n, v in identifiers]
    )


@pytest.fixture
def keys(stack: Any, cluster: str) -> dict[str, str]:
    engine = stack.orchestrator
    return {
        "admin": engine.keys.create("admin")[1],
        "reader": engine.keys.create("reader")[1],
        "runner": engine.keys.create("runner", cluster=cluster)[1],
        "other": engine.keys.create("runner", cluster="default")[1],
    }


def _submit(stack: Any, keys: dict[str, str], cluster: str, *tasks: tuple[str, str, bytes]) -> core.Job:
    answer = call(
        stack.url,
        JOBS + "SubmitJob",
        job_pb.SubmitJobRequest(tasks=submissions(*tasks, cluster=cluster), job_name="wire"),
        keys["admin"],
    )
    return answer.message(core.Job)


def _next(
    stack: Any, token: str, cluster: str, *identifiers: tuple[str, str], computed: Any = None
) -> task_pb.NextTaskResponse:
    request = task_pb.NextTaskRequest(next_task_to_run=wanted(cluster, *identifiers))
    if computed is not None:
        request.computed_task.CopyFrom(computed)
    return call(stack.url, TASKS + "NextTask", request, token).message(task_pb.NextTaskResponse)


def test_errors_are_connect_json_with_the_codes_the_sdk_maps(stack: Any, keys: dict[str, str]) -> None:
    request = job_pb.GetJobRequest(job_id=ID(uuid=bytes(range(16))))
    assert call(stack.url, JOBS + "GetJob", request, None).error()["code"] == "unauthenticated"
    assert (
        call(stack.url, JOBS + "GetJob", request, "tfk_0123456789abcdef_" + "x" * 43).error()["code"]
        == "unauthenticated"
    )
    missing = call(stack.url, JOBS + "GetJob", request, keys["reader"])
    assert (missing.status, missing.error()["code"]) == (404, "not_found")
    assert call(stack.url, JOBS + "CloneJob", request, keys["admin"]).error()["code"] == "unimplemented"
    assert call(stack.url, "/workflows.v1.AutomationService/ListAutomations", request, keys["admin"]).status == 501
    garbage = call(stack.url, JOBS + "GetJob", None, keys["reader"], raw=b"\xff\xff\xff")
    assert (garbage.status, garbage.error()["code"]) == (400, "invalid_argument")
    not_gzip = call(stack.url, JOBS + "GetJob", None, keys["reader"], gzipped=False, raw=b"\x1f\x8b\x08garbage")
    assert not_gzip.status in (400, 404)  # identity body: read as protobuf, never a 5xx
    bad_id = call(stack.url, JOBS + "GetJob", job_pb.GetJobRequest(job_id=ID(uuid=b"short")), keys["reader"])
    assert bad_id.error()["code"] == "invalid_argument"


def test_roles_are_enforced_per_rpc(stack: Any, keys: dict[str, str], cluster: str) -> None:
    submit = job_pb.SubmitJobRequest(tasks=submissions(("Leaf", "v1.0", b"1"), cluster=cluster), job_name="roles")
    assert call(stack.url, JOBS + "SubmitJob", submit, keys["reader"]).error()["code"] == "permission_denied"
    assert call(stack.url, JOBS + "SubmitJob", submit, keys["runner"]).error()["code"] == "permission_denied"
    poll = task_pb.NextTaskRequest(next_task_to_run=wanted(cluster, ("Leaf", "v1.0")))
    assert call(stack.url, TASKS + "NextTask", poll, keys["admin"]).error()["code"] == "permission_denied"
    other = call(stack.url, TASKS + "NextTask", poll, keys["other"])  # a runner key of another cluster
    assert other.error()["code"] == "permission_denied"
    own = call(stack.url, CLUSTERS + "GetCluster", workflows_pb.GetClusterRequest(cluster_slug=cluster), keys["runner"])
    assert own.message(workflows_pb.Cluster).slug == cluster
    default = call(stack.url, CLUSTERS + "GetCluster", workflows_pb.GetClusterRequest(cluster_slug=""), keys["runner"])
    assert default.error()["code"] == "permission_denied"


def test_a_claim_rewrites_the_identifier_and_its_lease_is_the_wait_before_extending(
    stack: Any, keys: dict[str, str], cluster: str
) -> None:
    submitted = _submit(stack, keys, cluster, ("Leaf", "v1.3", b'{"n": 7}'))
    # a runner that registers v1.5 and v2.0: it runs the v1.3 task as its own v1.5
    got = _next(stack, keys["runner"], cluster, ("Leaf", "v2.0"), ("Leaf", "v1.5"))
    task = got.next_task
    assert (task.identifier.name, task.identifier.version) == ("Leaf", "v1.5")
    assert json.loads(task.input) == {"n": 7}
    assert task.job.id.uuid == submitted.id.uuid and task.job.name == "wire"
    assert task.lease.lease.seconds == task.lease.recommended_wait_until_next_extension.seconds == 1800
    # nothing else to run: an idle answer, always with a pause
    idle = _next(stack, keys["runner"], cluster, ("Leaf", "v1.5"))
    assert not idle.HasField("next_task") and idle.idling.suggested_idling_duration.ToMilliseconds() > 0
    # a v2.0-only runner never gets a v1 task
    assert not _next(stack, keys["runner"], cluster, ("Leaf", "v2.0")).HasField("next_task")


def test_a_completion_sent_twice_is_answered_twice_and_recorded_once(
    stack: Any, keys: dict[str, str], cluster: str
) -> None:
    submitted = _submit(stack, keys, cluster, ("Fan", "v1.0", b"3"))
    task = _next(stack, keys["runner"], cluster, ("Fan", "v1.0"), ("Leaf", "v1.0")).next_task
    computed = task_pb.ComputedTask(
        id=task.id, display="fanned", sub_tasks=submissions(*[("Leaf", "v1.0", str(i).encode()) for i in range(3)])
    )
    first = _next(stack, keys["runner"], cluster, ("Fan", "v1.0"), ("Leaf", "v1.0"), computed=computed)
    again = call(stack.url, TASKS + "NextTask", task_pb.NextTaskRequest(computed_task=computed), keys["runner"])
    assert again.status == 200
    leaves = [first.next_task] if first.HasField("next_task") else []
    while len(leaves) < 4:
        got = _next(stack, keys["runner"], cluster, ("Leaf", "v1.0"))
        if not got.HasField("next_task"):
            break
        leaves.append(got.next_task)
    assert len(leaves) == 3  # three subtasks, not six
    for leaf in leaves:
        done = task_pb.NextTaskRequest(computed_task=task_pb.ComputedTask(id=leaf.id))
        assert call(stack.url, TASKS + "NextTask", done, keys["runner"]).status == 200
    found = call(stack.url, JOBS + "GetJob", job_pb.GetJobRequest(job_id=submitted.id), keys["reader"]).message(
        core.Job
    )
    assert found.state == core.JOB_STATE_COMPLETED
    assert found.execution_stats.total_tasks == 4


def test_failures_retry_fail_the_job_and_a_runner_error_gives_the_task_back(
    stack: Any, keys: dict[str, str], cluster: str
) -> None:
    tasks = submissions(("Flaky", "v1.0", b"1"), cluster=cluster)
    tasks.task_groups[0].max_retries_values.append(1)
    submitted = call(
        stack.url, JOBS + "SubmitJob", job_pb.SubmitJobRequest(tasks=tasks, job_name="fails"), keys["admin"]
    ).message(core.Job)
    # the runner could not run it (was_workflow_error false): queued again, no retry used
    first = _next(stack, keys["runner"], cluster, ("Flaky", "v1.0")).next_task
    given_back = task_pb.TaskFailedRequest(task_id=first.id, display="Flaky", was_workflow_error=False)
    state = call(stack.url, TASKS + "TaskFailed", given_back, keys["runner"]).message(task_pb.TaskStateResponse)
    assert state.state == core.TASK_STATE_QUEUED
    # it raised twice: one retry, then the job fails
    for expected_retries in (0, 1):
        attempt = _next(stack, keys["runner"], cluster, ("Flaky", "v1.0")).next_task
        assert attempt.id.uuid == first.id.uuid and attempt.retry_count == expected_retries
        failed = task_pb.TaskFailedRequest(
            task_id=attempt.id, display="Flaky\nValueError('boom')", was_workflow_error=True
        )
        assert call(stack.url, TASKS + "TaskFailed", failed, keys["runner"]).status == 200
    # a report of a task no longer held (here: a second failure) is still answered 200
    stale = task_pb.TaskFailedRequest(task_id=first.id, display="late", was_workflow_error=True)
    assert (
        call(stack.url, TASKS + "TaskFailed", stale, keys["runner"]).message(task_pb.TaskStateResponse).state
        == core.TASK_STATE_FAILED
    )
    found = call(stack.url, JOBS + "GetJob", job_pb.GetJobRequest(job_id=submitted.id), keys["reader"]).message(
        core.Job
    )
    assert found.state == core.JOB_STATE_FAILED
    retried = call(stack.url, JOBS + "RetryJob", job_pb.RetryJobRequest(job_id=submitted.id), keys["admin"])
    assert retried.message(job_pb.RetryJobResponse).num_tasks_rescheduled == 1
    # the job's diagram, as `jobs().visualize` asks for it: an SVG with its task and its name
    drawn = call(
        stack.url,
        JOBS + "VisualizeJob",
        job_pb.VisualizeJobRequest(job_id=submitted.id, include_job_name=True),
        keys["reader"],
    ).message(diagram_pb.Diagram)
    svg = drawn.svg.decode()
    assert svg.lstrip().startswith(("<svg", "<?xml")) and "Flaky" in svg and "fails" in svg


def test_otlp_exports_are_accepted_with_a_key_and_refused_without(stack: Any, keys: dict[str, str]) -> None:
    for path in ("/v1/traces", "/v1/logs"):
        request = urllib.request.Request(
            stack.url + path,
            data=b"",
            method="POST",
            headers={"content-type": "application/x-protobuf", "authorization": f"Bearer {keys['runner']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        anonymous = urllib.request.Request(
            stack.url + path, data=b"", method="POST", headers={"content-type": "application/x-protobuf"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(anonymous, timeout=10)
        assert refused.value.code == 401


def test_query_jobs_pages_and_filters_as_the_reference_does(stack: Any, keys: dict[str, str], cluster: str) -> None:
    tag = cluster.upper()  # names unique to this test, matched case-insensitively by part
    since = time.time() - 1  # every query is bounded by time (a key condition), or it pages through the session
    ids = []
    for i in range(5):
        request = job_pb.SubmitJobRequest(
            tasks=submissions(("Leaf", "v1.0", str(i).encode()), cluster=cluster), job_name=f"Query {tag} {i}"
        )
        ids.append(call(stack.url, JOBS + "SubmitJob", request, keys["admin"]).message(core.Job).id.uuid)
    # the first job completes: COMPUTED is then among its task states, QUEUED among the others'
    first = _next(stack, keys["runner"], cluster, ("Leaf", "v1.0")).next_task
    done = task_pb.NextTaskRequest(computed_task=task_pb.ComputedTask(id=first.id))
    assert call(stack.url, TASKS + "NextTask", done, keys["runner"]).status == 200

    def query(**filters: Any) -> list[bytes]:
        seen: list[bytes] = []
        page = None
        if "time_interval" not in filters:
            filters["time_interval"] = {
                "start_time": {"seconds": int(since)},
                "end_time": {"seconds": int(time.time()) + 60},
            }
        for _ in range(20):
            request = job_pb.QueryJobsRequest(filters=job_pb.QueryFilters(name=cluster.lower(), **filters))
            request.page.limit = 2
            if page is not None:
                request.page.starting_after.CopyFrom(page)
            answer = call(stack.url, JOBS + "QueryJobs", request, keys["reader"]).message(job_pb.QueryJobsResponse)
            assert len(answer.jobs) <= 2
            seen.extend(j.id.uuid for j in answer.jobs)
            if not answer.next_page.HasField("starting_after"):
                return seen
            assert answer.next_page.limit == 2
            page = answer.next_page.starting_after
        raise AssertionError("paging did not end")

    assert query() == ids[::-1]  # newest first, over three pages
    assert query(cluster_slugs=[cluster]) == ids[::-1]
    assert set(query(task_states=[core.TASK_STATE_COMPUTED])) == {ids[0]}
    assert len(query(task_states=[core.TASK_STATE_RUNNING])) == 4  # not finished: queued or running
    assert query(cluster_slugs=["default"]) == []
    completed = query(states=[core.JOB_STATE_COMPLETED])
    running = set(query(states=[core.JOB_STATE_SUBMITTED, core.JOB_STATE_RUNNING]))
    assert completed == [ids[0]] and running == set(ids[1:])
    window = job_pb.QueryFilters(name=cluster).time_interval
    window.start_time.FromMilliseconds(0)
    window.end_time.FromMilliseconds(1)
    assert query(time_interval=window) == []
    refused = job_pb.QueryJobsRequest(filters=job_pb.QueryFilters(id_interval={"start_id": {"uuid": ids[0]}}))
    assert call(stack.url, JOBS + "QueryJobs", refused, keys["reader"]).error()["code"] == "invalid_argument"


def test_a_full_key_submits_and_runs_on_every_cluster(stack: Any, keys: dict[str, str], cluster: str) -> None:
    full = stack.orchestrator.keys.create("full")[1]
    call(
        stack.url,
        JOBS + "SubmitJob",
        job_pb.SubmitJobRequest(tasks=submissions(("Any", "v1.0", b"1"), cluster=cluster), job_name="full"),
        full,
    ).message(core.Job)
    got = _next(stack, full, cluster, ("Any", "v1.0"))
    assert got.HasField("next_task")
    done = task_pb.NextTaskRequest(computed_task=task_pb.ComputedTask(id=got.next_task.id))
    assert call(stack.url, TASKS + "NextTask", done, full).status == 200
    assert not _next(stack, full, "default", ("Any", "v1.0")).HasField("next_task")  # another cluster: allowed
    missing = call(
        stack.url,
        TASKS + "NextTask",
        task_pb.NextTaskRequest(next_task_to_run=wanted("no-such-cluster", ("Any", "v1.0"))),
        full,
    )
    assert missing.error()["code"] == "not_found"
    assert (
        call(
            stack.url,
            CLUSTERS + "DeleteCluster",
            workflows_pb.DeleteClusterRequest(cluster_slug="no-such-cluster"),
            full,
        ).error()["code"]
        == "not_found"
    )


def test_a_next_task_that_crashed_after_its_claim_is_answered_by_the_retry(
    stack: Any, keys: dict[str, str], cluster: str
) -> None:
    """The function dies after the claim's write (before the job is marked RUNNING): the ticket goes back at
    once, and the retried NextTask is recognised as the same claim (same message, same lease token): the task
    runs now as the same attempt, not after the Tilebox lease of 30 minutes."""
    from taskfleet_functions import faults

    submitted = _submit(stack, keys, cluster, ("Crash", "v1.0", b"1"))
    faults.arm("claim.before_job_running")
    try:
        poll = task_pb.NextTaskRequest(next_task_to_run=wanted(cluster, ("Crash", "v1.0")))
        crashed = call(stack.url, TASKS + "NextTask", poll, keys["runner"])
        assert crashed.status == 502 and faults.hits("claim.before_job_running") == 1
    finally:
        faults.disarm_all()
    retried = _next(stack, keys["runner"], cluster, ("Crash", "v1.0"))
    assert retried.HasField("next_task") and retried.next_task.retry_count == 0
    done = task_pb.NextTaskRequest(computed_task=task_pb.ComputedTask(id=retried.next_task.id))
    assert call(stack.url, TASKS + "NextTask", done, keys["runner"]).status == 200
    (task,) = stack.client().jobs().tasks(str(uuid.UUID(bytes=submitted.id.uuid)))
    assert (task.state, task.attempt, task.lease_losses) == ("COMPUTED", 1, 0)


def test_an_unexpected_error_is_connect_internal_never_a_502(
    stack: Any, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK survives only "internal" (its runner retries it); a 502 would read as "unavailable" and stop it."""

    def broken() -> list[Any]:
        raise RuntimeError("the table is on fire")

    monkeypatch.setattr(stack.orchestrator, "list_clusters", broken)
    answer = call(stack.url, CLUSTERS + "ListClusters", workflows_pb.ListClustersRequest(), keys["reader"])
    assert answer.status == 500
    assert answer.error() == {"code": "internal", "message": "internal error; the request can be retried"}


def test_hostile_bodies_get_a_connect_error_never_a_5xx(stack: Any, keys: dict[str, str]) -> None:
    """Random bytes, gzipped or not, to every RPC a reader or a runner key may call: a 4xx in Connect's JSON or
    a 200 (bytes that happen to parse, asking for nothing harmful), never a 5xx."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    paths = [
        (JOBS + "GetJob", keys["reader"]),
        (JOBS + "QueryJobs", keys["reader"]),
        (JOBS + "VisualizeJob", keys["reader"]),
        (CLUSTERS + "GetCluster", keys["reader"]),
        (TASKS + "NextTask", keys["runner"]),
        (TASKS + "TaskFailed", keys["runner"]),
        (TASKS + "ExtendTaskLease", keys["runner"]),
    ]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(paths), st.binary(max_size=300), st.booleans())
    def check(target: tuple[str, str], data: bytes, gzipped: bool) -> None:
        path, token = target
        answer = call(stack.url, path, None, token, raw=data, gzipped=gzipped)
        assert answer.status < 500, (path, data, answer.status, answer.body[:200])
        if answer.status != 200:
            assert answer.error()["code"] in (
                "invalid_argument",
                "not_found",
                "permission_denied",
                "failed_precondition",
            )

    check()
