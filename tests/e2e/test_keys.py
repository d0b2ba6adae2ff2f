"""Bearer API keys end to end on the local stack: `taskfleet keys create|list|revoke` as a user runs them
(real subprocesses, plain output and `--json`, one-line errors with exit status 1), the SDK's
`client.keys()`, and the admin API's 4xx answers (nothing is made by a refused request)."""

from __future__ import annotations

import json
import re

import pytest
from taskfleet import InvalidRequestError, NotFoundError
from taskfleet_functions.orchestrator.errors import Unauthenticated

from tests.e2e.test_api import raw
from tests.e2e.test_cli_jobs import cli

TOKEN = re.compile(r"tfk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


def key_ids(stack) -> set[str]:
    return {k.key_id for k in stack.orchestrator.keys.all()}


def test_a_runner_key_for_a_new_cluster_is_created_listed_without_its_secret_and_revoked(stack, client):
    slug = client.clusters().create("keys e2e").slug
    out = cli(
        stack, "keys", "create", "--role", "runner", "--cluster", slug, "--lease", "600", "--description", "rack 4"
    )
    assert out.returncode == 0, out.stderr
    head, token, note = out.stdout.strip().splitlines()
    match = TOKEN.fullmatch(token)
    assert match, out.stdout
    key_id = match.group(1)
    assert head == f"created runner key {key_id} (cluster {slug}, lease 600 s)"
    assert "shown only now" in note
    secret = token[len(f"tfk_{key_id}_") :]

    # the token is the key: the API's own orchestrator takes it
    key = stack.orchestrator.keys.verify(token)
    assert (key.key_id, key.role, key.cluster, key.lease_seconds, key.description) == (
        key_id,
        "runner",
        slug,
        600,
        "rack 4",
    )

    listed = cli(stack, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split("\t") == ["key id", "role", "cluster", "lease", "description", "created (UTC)", "revoked"]
    (row,) = [r.split("\t") for r in rows if r.startswith(key_id)]
    assert row[:5] == [key_id, "runner", slug, "600", "rack 4"] and row[6] == ""
    as_json = json.loads(cli(stack, "keys", "list", "--json").stdout)
    (entry,) = [k for k in as_json if k["key_id"] == key_id]
    assert set(entry) == {
        "key_id",
        "role",
        "cluster",
        "lease_seconds",
        "description",
        "created_at",
        "revoked_at",
        "revoked",
    }
    assert entry["revoked"] is False and entry["revoked_at"] is None
    for text in (listed.stdout, json.dumps(as_json)):
        assert secret not in text and token not in text

    revoked = cli(stack, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"revoked runner key {key_id} at ")
    with pytest.raises(Unauthenticated, match="is revoked"):
        stack.orchestrator.keys.verify(token)  # at once: the API's process dropped its cached answer
    again = json.loads(cli(stack, "keys", "revoke", key_id, "--json").stdout)
    (after,) = [k for k in json.loads(cli(stack, "keys", "list", "--json").stdout) if k["key_id"] == key_id]
    assert again == after and after["revoked"] is True and after["revoked_at"]


def test_keys_create_json_holds_the_token_once(stack):
    out = cli(stack, "keys", "create", "--role", "submitter", "--json")
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert TOKEN.fullmatch(created["token"]) and created["role"] == "submitter" and created["cluster"] is None
    listed = json.loads(cli(stack, "keys", "list", "--json").stdout)
    assert [k for k in listed if k["key_id"] == created["key_id"]] == [
        {k: v for k, v in created.items() if k != "token"}
    ]


def test_keys_commands_refuse_bad_arguments_in_one_line_with_exit_status_1(stack, cluster):
    before = key_ids(stack)
    cases = [
        (("keys", "create", "--role", "boss"), "taskfleet keys create: role 'boss' must be one of"),
        (("keys", "create", "--role", "runner"), "a runner key needs a cluster"),
        (("keys", "create", "--role", "runner", "--cluster", "nope-000000"), "cluster 'nope-000000' does not exist"),
        (("keys", "create", "--role", "runner", "--cluster", "Not A Slug"), "cluster slug"),
        (("keys", "create", "--role", "runner", "--cluster", cluster, "--lease", "43201"), "12-hour"),
        (("keys", "create", "--role", "reader", "--cluster", cluster), "takes no cluster"),
        (("keys", "create", "--role", "admin", "--description", "x" * 201), "description"),
        (("keys", "revoke", "0123456789abcdef"), "API key '0123456789abcdef' does not exist"),
        (("keys", "revoke", "../jobs"), "does not exist"),
    ]
    for args, message in cases:
        out = cli(stack, *args)
        assert out.returncode == 1, (args, out.stdout, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
        assert "Traceback" not in out.stderr and out.stdout == ""
    assert key_ids(stack) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "InvalidJson"),
        (b"[]", "InvalidRequest"),
        (b"{}", "InvalidRequest"),
        (json.dumps({"role": "boss"}).encode(), "InvalidRole"),
        (json.dumps({"role": "reader", "token": "tfk_x"}).encode(), "InvalidRequest"),
        (json.dumps({"role": "runner"}).encode(), "InvalidRequest"),
        (json.dumps({"role": "runner", "cluster": "default", "lease_seconds": 0}).encode(), "InvalidRequest"),
        (json.dumps({"role": "runner", "cluster": "default", "lease_seconds": 43_201}).encode(), "InvalidRequest"),
        (json.dumps({"role": "runner", "cluster": "default", "lease_seconds": "soon"}).encode(), "InvalidRequest"),
        (json.dumps({"role": "runner", "cluster": "a--b"}).encode(), "InvalidRequest"),
        (json.dumps({"role": "submitter", "lease_seconds": 60}).encode(), "InvalidRequest"),
        (json.dumps({"role": "admin", "description": "x" * 201}).encode(), "InvalidRequest"),
    ],
)
def test_bad_key_bodies_are_400_and_make_no_key(stack, body, code):
    before = key_ids(stack)
    status, answer = raw(stack, "POST", "/keys", body)
    assert (status, answer["error"]["code"]) == (400, code), answer
    assert key_ids(stack) == before


def test_unknown_clusters_and_key_ids_are_404(stack):
    before = key_ids(stack)
    status, answer = raw(stack, "POST", "/keys", json.dumps({"role": "runner", "cluster": "nope-000000"}).encode())
    assert (status, answer["error"]["code"]) == (404, "ClusterNotFound")
    for key_id in ("0123456789abcdef", "NOT-A-KEY"):
        status, answer = raw(stack, "DELETE", f"/keys/{key_id}")
        assert (status, answer["error"]["code"]) == (404, "KeyNotFound"), answer
    assert key_ids(stack) == before


def test_the_sdk_creates_lists_and_revokes_keys_with_typed_errors(stack, client, cluster):
    created = client.keys().create("runner", cluster=client.clusters().find(cluster), lease_seconds=30)
    assert TOKEN.fullmatch(created["token"]) and (created["cluster"], created["lease_seconds"]) == (cluster, 30)
    assert stack.orchestrator.keys.verify(created["token"]).key_id == created["key_id"]
    (listed,) = [k for k in client.keys().all() if k["key_id"] == created["key_id"]]
    assert "token" not in listed and listed["revoked"] is False
    revoked = client.keys().revoke(created["key_id"])
    assert revoked["revoked"] is True and client.keys().revoke(created["key_id"]) == revoked
    with pytest.raises(InvalidRequestError, match="must be one of"):
        client.keys().create("root")
    with pytest.raises(NotFoundError, match="does not exist"):
        client.keys().revoke("0123456789abcdef")
    with pytest.raises(NotFoundError):
        client.keys().create("runner", cluster="nope-000000")
