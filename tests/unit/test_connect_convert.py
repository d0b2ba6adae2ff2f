"""The pure conversions between the Tilebox SDK's messages and taskfleet's specs and items (connect/convert.py)."""

from __future__ import annotations

import gzip
import json

import pytest
from taskfleet import rules
from taskfleet_functions.connect import convert
from taskfleet_functions.connect.proto import workflows_core_pb2 as core
from taskfleet_functions.connect.proto.tilebox_id_pb2 import ID
from taskfleet_functions.connect.wire import ConnectError, failure, request_body, success, uuid_of


def _submissions() -> core.TaskSubmissions:
    """Three groups as the SDK builds them: two fetches, a merge that depends on both, a report on the merge."""
    return core.TaskSubmissions(
        identifier_lookup=[
            core.TaskIdentifier(name="Fetch", version="v1.0"),
            core.TaskIdentifier(name="Merge", version="v1.2"),
        ],
        cluster_slug_lookup=["", "gpu"],
        display_lookup=["Fetch", "Merge"],
        task_groups=[
            core.TaskSubmissionGroup(
                inputs=[b'"a"', b'"b"'],
                identifier_pointers=[0, 0],
                cluster_slug_pointers=[0, 0],
                display_pointers=[0, 0],
                max_retries_values=[2, 0],
                optional_values=[False, True],
            ),
            core.TaskSubmissionGroup(
                dependencies_on_other_groups=[0],
                inputs=[b'{"k": 1, "names": ["x"]}'],
                identifier_pointers=[1],
                cluster_slug_pointers=[1],
                display_pointers=[1],
            ),
            core.TaskSubmissionGroup(
                dependencies_on_other_groups=[1, 0],
                inputs=[b""],
                identifier_pointers=[0],
                cluster_slug_pointers=[0],
                display_pointers=[0],
            ),
        ],
    )


def test_grouped_submissions_become_specs_with_dependencies_on_every_task_of_the_named_groups() -> None:
    specs = convert.task_specs(_submissions(), default_cluster="parent-cluster")
    assert [(s.name, s.version, s.cluster) for s in specs] == [
        ("Fetch", "v1.0", "parent-cluster"),
        ("Fetch", "v1.0", "parent-cluster"),
        ("Merge", "v1.2", "gpu"),
        ("Fetch", "v1.0", "parent-cluster"),
    ]
    assert [s.depends_on for s in specs] == [(), (), (0, 1), (2, 0, 1)]
    assert [s.input for s in specs] == ["a", "b", {"k": 1, "names": ["x"]}, None]
    assert [(s.max_retries, s.optional) for s in specs] == [(2, False), (0, True), (0, False), (0, False)]
    # every dependency names an earlier task, as taskfleet's own rule demands
    for i, spec in enumerate(specs):
        rules.check_dependencies(i, list(spec.depends_on))


def test_malformed_submissions_are_rule_violations() -> None:
    later = _submissions()
    later.task_groups[0].dependencies_on_other_groups.append(2)  # a group may name earlier groups only
    with pytest.raises(rules.RuleViolation, match="only earlier groups"):
        convert.task_specs(later, default_cluster=None)
    short = _submissions()
    short.task_groups[0].identifier_pointers.pop()
    with pytest.raises(rules.RuleViolation, match="differ in length"):
        convert.task_specs(short, default_cluster=None)
    out_of_range = _submissions()
    out_of_range.task_groups[1].identifier_pointers[0] = 9
    with pytest.raises(rules.RuleViolation, match="out of its lookup's range"):
        convert.task_specs(out_of_range, default_cluster=None)
    protobuf_input = _submissions()
    protobuf_input.task_groups[1].inputs[0] = b"\x08\x96\x01"
    with pytest.raises(rules.RuleViolation, match="not JSON"):
        convert.task_specs(protobuf_input, default_cluster=None)


def test_inputs_round_trip_between_the_sdks_bytes_and_taskfleets_json_text() -> None:
    for data in (b'"x"', b"3", b'{"a": [1, 2]}', b"null"):
        value = convert.decode_input(data)
        assert json.loads(convert.encode_input(json.dumps(value)) or b"null") == json.loads(data)
    assert (
        convert.decode_input(b"") is None and convert.encode_input(None) == b"" and convert.encode_input("null") == b""
    )


def test_the_runner_gets_its_own_registered_identifier() -> None:
    registered = [("Leaf", "v1.5"), ("Leaf", "v1.3"), ("Leaf", "v2.0"), ("Other", "v1.9")]
    assert convert.best_identifier(registered, "Leaf", "v1.3") == ("Leaf", "v1.3")  # exact first
    assert convert.best_identifier(registered, "Leaf", "v1.1") == ("Leaf", "v1.5")  # else the highest minor
    assert convert.best_identifier(registered, "Leaf", "v1.6") is None
    assert convert.best_identifier(registered, "Leaf", "v3.0") is None
    assert convert.best_identifier(registered, "Missing", "v1.0") is None


def test_a_job_carries_the_reference_enums_and_its_figures() -> None:
    item = {
        "job_id": "6f1f3a9e-2b10-4a57-9d0c-7d1e5c0a4b7e",
        "name": "j",
        "state": "COMPLETED",
        "submitted_at": 1_700_000_000_123,
    }
    figures = {
        "progress": [{"label": None, "total": 3, "done": 3}, {"label": "tiles", "total": 5, "done": 4}],
        "execution_stats": {
            "first_task_started_at": "2026-12-02T10:00:00.000Z",
            "last_task_stopped_at": "2026-12-02T10:00:02.500Z",
            "compute_time_ms": 1500,
            "elapsed_time_ms": 2500,
            "parallelism": 0.6,
            "total_tasks": 4,
            "tasks_by_state": {"COMPUTED": 3, "FAILED_OPTIONAL": 1},
        },
    }
    job = convert.job_message(item, figures)
    assert job.state == core.JOB_STATE_COMPLETED and job.submitted_at.ToMilliseconds() == 1_700_000_000_123
    assert [(p.label, p.total, p.done) for p in job.progress] == [("", 3, 3), ("tiles", 5, 4)]
    stats = job.execution_stats
    assert stats.last_task_stopped_at.ToMilliseconds() - stats.first_task_started_at.ToMilliseconds() == 2500
    assert (stats.compute_time.ToMilliseconds(), stats.elapsed_time.ToMilliseconds(), stats.total_tasks) == (
        1500,
        2500,
        4,
    )
    assert {(s.state, s.count) for s in stats.tasks_by_state} == {
        (core.TASK_STATE_COMPUTED, 3),
        (core.TASK_STATE_FAILED_OPTIONAL, 1),
    }
    for state, number in convert.JOB_STATES.items():  # every taskfleet state has a value the SDK knows
        assert core.JobState.Name(number).removeprefix("JOB_STATE_") == ("SUBMITTED" if state == "SUBMITTED" else state)


def test_a_claimed_task_has_equal_lease_and_wait_and_the_registered_identifier() -> None:
    payload = {
        "id": "0d4c1b1e-6c66-5b5e-9b43-1c2c8f0e8a11",
        "input": '{"n": 1}',
        "display": "Leaf 1",
        "retry_count": 2,
        "job_name": "j",
    }
    job = {"job_id": "6f1f3a9e-2b10-4a57-9d0c-7d1e5c0a4b7e", "name": "j", "state": "RUNNING"}
    task = convert.task_message(payload, job, ("Leaf", "v1.5"), 1800)
    assert (task.identifier.name, task.identifier.version, task.retry_count) == ("Leaf", "v1.5", 2)
    assert task.lease.lease.seconds == task.lease.recommended_wait_until_next_extension.seconds == 1800
    assert task.input == b'{"n": 1}' and task.state == core.TASK_STATE_RUNNING and task.job.name == "j"


def test_the_wire_inflates_gzip_and_answers_in_connects_forms() -> None:
    import base64

    body = ID(uuid=bytes(range(16))).SerializeToString()
    event = {
        "body": base64.b64encode(gzip.compress(body)).decode(),
        "isBase64Encoded": True,
        "headers": {"Content-Encoding": "gzip"},
    }
    assert request_body(event) == body
    bomb = {
        "body": base64.b64encode(gzip.compress(b"\0" * (7 * 1024 * 1024))).decode(),
        "isBase64Encoded": True,
        "headers": {"content-encoding": "gzip"},
    }
    with pytest.raises(ConnectError) as inflated:
        request_body(bomb)
    assert inflated.value.code == "resource_exhausted"
    with pytest.raises(ConnectError) as encoding:
        request_body({"body": "", "headers": {"content-encoding": "br"}})
    assert encoding.value.code == "unimplemented"
    ok = success(ID(uuid=b"x" * 16))
    assert ok["headers"] == {"content-type": "application/proto"} and ok["isBase64Encoded"]
    error = failure("not_found", "no job")
    assert (error["statusCode"], error["headers"]["content-type"]) == (404, "application/json")
    assert json.loads(error["body"]) == {"code": "not_found", "message": "no job"}
    with pytest.raises(ConnectError):
        uuid_of(ID(uuid=bytes(16)), "job_id")  # the nil UUID is "unset"
