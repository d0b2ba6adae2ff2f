"""The API's users get one of three managed policies (reader, submitter, admin), each naming exactly its
routes; none reaches a runner route. Checked by matching each policy's execute-api resources, as IAM
does (`*` spans any characters, `/` included), against a concrete request of every route of the API."""

from __future__ import annotations

import fnmatch
import re

import pytest
from taskfleet_infra.api import ROUTES
from taskfleet_infra.api_access import ADMIN, READER, SUBMITTER

from .conftest import ROOT, Synth, as_list, policy_by_description, render, statements

JOB, SLUG = "8c1f0f6e-2f1e-4d2a-9b1c-5a3e7d9f0a11", "gpu-a10"
EXPECTED = {
    "reader": {
        ("GET", "/jobs"),
        ("GET", "/jobs/{job_id}"),
        ("GET", "/jobs/{job_id}/tasks"),
        ("GET", "/config"),
        ("GET", "/clusters"),
        ("GET", "/clusters/{slug}"),
        ("GET", "/clusters/{slug}/backlog"),
        ("GET", "/automations"),
        ("GET", "/automations/{automation_id}"),
    },
    "submitter": {
        ("POST", "/jobs"),
        ("GET", "/jobs"),
        ("GET", "/jobs/{job_id}"),
        ("GET", "/jobs/{job_id}/tasks"),
        ("GET", "/config"),
        ("GET", "/clusters"),
        ("GET", "/clusters/{slug}"),
        ("GET", "/clusters/{slug}/backlog"),
        ("GET", "/automations"),
        ("GET", "/automations/{automation_id}"),
    },
}
EXPECTED["admin"] = EXPECTED["submitter"] | {
    ("POST", "/clusters"),
    ("PATCH", "/clusters/{slug}"),
    ("DELETE", "/clusters/{slug}"),
    ("POST", "/jobs/{job_id}/cancel"),
    ("POST", "/jobs/{job_id}/retry"),
    ("POST", "/automations"),
    ("DELETE", "/automations/{automation_id}"),
    ("POST", "/keys"),  # bearer API keys: the admin's alone, listing them too
    ("GET", "/keys"),
    ("DELETE", "/keys/{key_id}"),
}


def _request(method: str, path: str) -> str:
    """A concrete request of a route, as execute-api names it after the stage."""
    return f"{method}" + path.replace("{job_id}", JOB).replace("{slug}", SLUG)


def _patterns(s: Synth, role: str) -> list[str]:
    _, policy = policy_by_description(s, f": API {role}:")
    (api_id,) = s.of_type("AWS::ApiGatewayV2::Api")
    (st,) = statements(policy["PolicyDocument"])
    assert st["Effect"] == "Allow" and st["Action"] == "execute-api:Invoke"
    assert "Condition" not in st
    prefix = f"arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{api_id}>/$default/"
    found = []
    for resource in as_list(st["Resource"]):
        rendered = render(resource)
        assert rendered.startswith(prefix), rendered  # this API's stage, no other API
        found.append(rendered.removeprefix(prefix))
    return found


def _reached(patterns: list[str]) -> set[tuple[str, str]]:
    return {(m, p) for m, p, _ in ROUTES if any(fnmatch.fnmatchcase(_request(m, p), pat) for pat in patterns)}


def test_the_roles_are_what_the_docs_promise() -> None:
    assert {"reader": READER, "submitter": SUBMITTER, "admin": ADMIN} == EXPECTED
    assert READER < SUBMITTER < ADMIN


@pytest.mark.parametrize("role", ["reader", "submitter", "admin"])
def test_each_role_reaches_exactly_its_routes_and_no_runner_route(synth: Synth, role: str) -> None:
    patterns = _patterns(synth, role)
    assert _reached(patterns) == EXPECTED[role]
    for pattern in patterns:
        assert not pattern.split("/", 1)[1].startswith("runner"), pattern
        assert pattern.count("*") <= 1 and not pattern.endswith("/*/*"), pattern
    # a runner route of any cluster, old or new protocol, is out of reach
    for runner in ("POST/runner/default/next", "POST/runner/x/extend", "POST/runner/next", "POST/runner/y/lanes"):
        assert not any(fnmatch.fnmatchcase(runner, p) for p in patterns), (role, runner)


def test_only_admins_change_clusters_or_stop_jobs(synth: Synth) -> None:
    for role in ("reader", "submitter"):
        reached = _reached(_patterns(synth, role))
        assert not [r for r in reached if r[0] == "DELETE" or r[1].endswith(("/cancel", "/retry"))], role
        assert ("POST", "/clusters") not in reached
    assert not [r for r in _reached(_patterns(synth, "reader")) if r[0] != "GET"]


def test_no_documented_grant_covers_the_whole_api() -> None:
    """The docs name the three policies instead of `execute-api:Invoke` on `.../$default/*`."""
    for path in ("README.md", "docs/deploy.md"):
        text = (ROOT / path).read_text()
        assert not re.search(r"\$default/\*", text), path
        for output in ("SubmitterPolicyArn", "ReaderPolicyArn", "AdminPolicyArn"):
            assert output in text, (path, output)
