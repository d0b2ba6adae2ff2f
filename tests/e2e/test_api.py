"""The API's contract: typed 4xx JSON errors for bad input, no state change, idempotent submit."""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

import pytest
import urllib3
from taskfleet import ConflictError, InvalidRequestError, NotFoundError, TaskValidationError

from tests.e2e.workflows import Noop

http = urllib3.PoolManager()

TOKEN = secrets.token_urlsafe(32)  # a well-formed lease token that holds no lease
REPORT = {"task_id": "t", "job_id": "j", "attempt": 1, "lease": TOKEN, "outcome": "computed"}
EXTEND = {"runner_id": "r", "task_id": "t", "job_id": "j", "attempt": 1, "lease": TOKEN}


def raw(stack, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    resp = http.request(method, stack.url + path, body=body, headers={"content-type": "application/json"})
    return resp.status, json.loads(resp.data)


def job_count(client) -> int:
    return len(client.jobs().list(limit=10_000))


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/jobs", b"{not json", "InvalidJson"),
        ("/jobs", b"[1, 2]", "InvalidRequest"),
        ("/jobs", b"{}", "InvalidRequest"),
        ("/jobs", json.dumps({"name": "x", "tasks": []}).encode(), "InvalidRequest"),
        ("/jobs", json.dumps({"name": "x", "tasks": [{"name": "T", "version": "1.0"}]}).encode(), "InvalidRequest"),
        ("/jobs", json.dumps({"name": "x", "tasks": [{"name": "T", "depends_on": [0]}]}).encode(), "InvalidRequest"),
        ("/jobs", json.dumps({"name": "x", "tasks": [{"name": "T", "input": "x" * 70000}]}).encode(), "InvalidRequest"),
        (
            "/jobs",
            json.dumps({"name": "x", "tasks": [{"name": "T"}], "max_retries": 10**12}).encode(),
            "InvalidRequest",
        ),
        ("/jobs", json.dumps({"name": "x", "tasks": [{"name": "T"}], "extra": 1}).encode(), "InvalidRequest"),
        (
            "/jobs",
            json.dumps({"name": "x", "tasks": [{"name": "T", "cluster": "nope-000000"}]}).encode(),
            "ClusterNotFound",
        ),
        ("/clusters", json.dumps({"name": ""}).encode(), "InvalidRequest"),
        ("/runner/default/next", json.dumps({"runner_id": "r", "report": {"task_id": "t"}}).encode(), "InvalidRequest"),
        *[
            (
                "/runner/default/next",
                json.dumps({"runner_id": "r", "claim": {"job_id": "j", "task_id": "t", "lease": TOKEN, "ref": ref}}),
                "InvalidRequest",
            )
            for ref in (["p", 1], ["", 1, 2], ["p", -1, 0], ["p", 1, 10**6], "p/1/2")
        ],
        # batches: one form each, at most 10 of each, distinct tasks
        *[
            ("/runner/default/next", json.dumps({"runner_id": "r", **fields}), "InvalidRequest")
            for fields in (
                {"claim": {"job_id": "j", "task_id": "t", "lease": TOKEN}, "claims": []},
                {"report": REPORT, "reports": [REPORT]},
                {"claims": [{"job_id": "j", "task_id": "t", "lease": TOKEN}] * 2},
                {"claims": [{"job_id": "j", "task_id": f"t{i}", "lease": TOKEN} for i in range(11)]},
                {"reports": [REPORT, REPORT]},
                {"reports": [{**REPORT, "task_id": f"t{i}"} for i in range(11)]},
                {"claims": {"job_id": "j", "task_id": "t", "lease": TOKEN}},
                {"reports": [{**REPORT, "unstarted": True}]},  # only a released task can be unstarted
            )
        ],
        # a lease token is 32-128 url-safe characters, in every claim, report and heartbeat
        *[
            ("/runner/default/next", json.dumps({"runner_id": "r", "claim": claim}), "InvalidRequest")
            for claim in (
                {"job_id": "j", "task_id": "t"},
                {"job_id": "j", "task_id": "t", "lease": TOKEN[:31]},
                {"job_id": "j", "task_id": "t", "lease": "a" * 129},
                {"job_id": "j", "task_id": "t", "lease": TOKEN[:40] + "+/="},
                {"job_id": "j", "task_id": "t", "lease": 10**40},
            )
        ],
        (
            "/runner/default/next",
            json.dumps({"runner_id": "r", "report": {**REPORT, "lease": None}}),
            "InvalidRequest",
        ),
        # progress: at most 1,000 distinct labels of at most 100 characters, counts non-negative
        *[
            (
                "/runner/default/next",
                json.dumps({"runner_id": "r", "report": {**REPORT, "progress": p}}),
                "InvalidRequest",
            )
            for p in (
                [{"label": f"l{i}", "total": 1, "done": 0} for i in range(1_001)],
                [{"label": "x", "total": 1, "done": 0}, {"label": "x", "total": 2, "done": 0}],
                [{"label": "x" * 101, "total": 1, "done": 0}],
                [{"label": "x", "total": -1, "done": 0}],
                [{"label": "x", "total": 2**60, "done": 0}],
            )
        ],
        (
            "/jobs",
            json.dumps({"name": "x", "tasks": [{"name": "T", "optional": "maybe"}]}).encode(),
            "InvalidRequest",
        ),
        ("/runner/default/extend", json.dumps({"runner_id": "r", "task_id": "t", "attempt": 1}), "InvalidRequest"),
        ("/runner/default/extend", json.dumps(EXTEND), "LeaseLost"),
        # the cluster is the path's: it must be a slug
        ("/runner/a--b/next", json.dumps({"runner_id": "r", "report": REPORT}), "InvalidRequest"),
        ("/runner/Default/extend", json.dumps(EXTEND), "InvalidRequest"),
        # registration: at least one valid identifier, on a cluster that exists
        ("/runner/default/lanes", json.dumps({"runner_id": "r", "tasks": []}), "InvalidRequest"),
        ("/runner/default/lanes", json.dumps({"runner_id": "r", "tasks": [["T", "1.0"]]}), "InvalidRequest"),
        ("/runner/default/lanes", json.dumps({"runner_id": "r", "tasks": [["T"]]}), "InvalidRequest"),
        ("/runner/nope-000000/lanes", json.dumps({"runner_id": "r", "tasks": [["T", "v1.0"]]}), "ClusterNotFound"),
        # runners of the protocol before lanes and lease tokens are told to upgrade
        ("/runner/next", json.dumps({"runner_id": "r", "claim": {"job_id": "j", "task_id": "t"}}), "RunnerTooOld"),
        ("/runner/extend", json.dumps({"runner_id": "r", "task_id": "t", "attempt": 1}), "RunnerTooOld"),
    ],
)
def test_bad_requests_get_a_typed_json_error_and_change_nothing(stack, client, path, body, code):
    before = job_count(client)
    status, payload = raw(stack, "POST", path, body.encode() if isinstance(body, str) else body)
    assert 400 <= status < 500
    assert payload["error"]["code"] == code and payload["error"]["message"]
    assert job_count(client) == before


def test_a_well_formed_report_that_holds_no_lease_is_answered_lease_lost(stack):
    # the shape the refusals above differ from: accepted, and refused in the answer
    status, payload = raw(
        stack, "POST", "/runner/default/next", json.dumps({"runner_id": "r", "report": REPORT}).encode()
    )
    assert (status, payload["report"]["status"]) == (200, "lease_lost")


def test_older_runners_are_told_to_upgrade(stack):
    for path in ("/runner/next", "/runner/extend"):
        status, payload = raw(stack, "POST", path, b"{}")
        assert (status, payload["error"]["code"]) == (410, "RunnerTooOld")
        assert "upgrade" in payload["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/jobs/00000000-0000-0000-0000-000000000000", 404),
        ("GET", "/jobs/x/tasks", 404),
        ("POST", "/jobs/nope/cancel", 404),
        ("GET", "/clusters/NOT_A_SLUG", 400),
        ("GET", "/clusters/a--b", 400),  # "--" separates a cluster's slug from its lanes' keys in queue names
        ("GET", "/clusters/zz-missing", 404),
        ("DELETE", "/clusters/default", 409),
        ("GET", "/nothing-here", 404),
        ("GET", "/jobs?limit=0", 400),
        ("GET", "/jobs?state=DONE", 400),
        ("GET", "/jobs?cursor=%%%", 400),
    ],
)
def test_unknown_resources_and_bad_parameters(stack, method, path, status):
    got, payload = raw(stack, method, path)
    assert got == status and payload["error"]["code"]


def test_sdk_raises_named_exceptions(client):
    with pytest.raises(NotFoundError):
        client.jobs().find("00000000-0000-0000-0000-000000000000")
    with pytest.raises(TaskValidationError, match="at least one task"):
        client.jobs().submit("empty", [])
    with pytest.raises(TaskValidationError, match="not JSON-serializable"):
        client.jobs().submit("bad", Noop(cast(Any, object())))
    with pytest.raises(InvalidRequestError):
        client.clusters().create("")
    job = client.jobs().submit("to-cancel", Noop("x"), cluster="default")
    client.jobs().cancel(job)
    assert client.jobs().cancel(job).state == "CANCELED"  # idempotent
    with pytest.raises(ConflictError):
        client.clusters().delete("default")


def test_submit_with_a_client_token_is_idempotent(client, cluster):
    first = client.jobs().submit("once", Noop("a"), cluster=cluster, client_token="tok-123")
    again = client.jobs().submit("once", Noop("a"), cluster=cluster, client_token="tok-123")
    assert first.id == again.id
    assert len(client.jobs().list(name="once")) == 1
    with pytest.raises(ConflictError, match="client token"):
        client.jobs().submit("different", Noop("a"), cluster=cluster, client_token="tok-123")
    client.jobs().cancel(first)


def test_clusters_can_be_created_found_listed_and_deleted(client):
    created = client.clusters().create("Image Processing")
    assert created.slug.startswith("image-processing-") and created.name == "Image Processing"
    assert client.clusters().find(created.slug) == created
    assert {"default", created.slug} <= {c.slug for c in client.clusters().all()}
    client.clusters().delete(created.slug)
    with pytest.raises(NotFoundError):
        client.clusters().find(created.slug)


def test_a_cluster_name_never_makes_a_slug_with_a_double_dash(client):
    created = client.clusters().create("a -- b__c")
    assert "--" not in created.slug and created.slug.startswith("a-b-c-")
    client.clusters().delete(created.slug)


def test_jobs_list_filters_and_paginates_newest_first(client, cluster):
    name = f"paged-{cluster}"  # a name no other test's job contains (the filter matches part of a name)
    jobs = [client.jobs().submit(name, Noop(str(i)), cluster=cluster) for i in range(7)]
    page = client.transport.request("GET", "/jobs", query={"name": name, "limit": 3})
    listed = client.jobs().list(name=name)
    assert [j.id for j in listed] == [j.id for j in reversed(jobs)]
    assert page["next_cursor"]
    for job in jobs:
        client.jobs().cancel(job)
    assert {j.id for j in client.jobs().list(state="CANCELED", name=name)} == {j.id for j in jobs}


def test_a_body_over_the_lambda_payload_limit_answers_413_and_changes_nothing(stack, client):
    before = job_count(client)
    body = json.dumps({"name": "big", "tasks": [{"name": "T", "input": "x" * (6 * 1024 * 1024)}]}).encode()
    status, payload = raw(stack, "POST", "/jobs", body)
    assert status == 413
    assert payload["error"]["code"] == "TooLarge" and "bytes" in payload["error"]["message"]
    assert job_count(client) == before


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
def test_the_local_api_refuses_what_a_web_page_could_post_and_changes_nothing(stack, client, content_type):
    before = job_count(client)
    body = json.dumps({"name": "from-a-page", "tasks": [{"name": "T"}]}).encode()
    headers = {"content-type": content_type} if content_type else {}
    resp = http.request("POST", stack.url + "/jobs", body=body, headers=headers)
    assert resp.status == 415
    assert json.loads(resp.data)["error"]["code"] == "UnsupportedMediaType"
    assert job_count(client) == before


def test_the_local_api_refuses_host_names_that_are_not_loopback(stack):
    # a DNS-rebinding page reaches 127.0.0.1 under its own host name
    resp = http.request("GET", stack.url + "/jobs", headers={"host": "attacker.example:8000"})
    assert resp.status == 403
    assert json.loads(resp.data)["error"]["code"] == "HostNotAllowed"
    assert http.request("GET", stack.url + "/jobs", headers={"host": "localhost"}).status == 200
