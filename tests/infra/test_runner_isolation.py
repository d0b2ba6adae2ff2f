"""The on-prem runner credentials (role and user of an external cluster) reach their own cluster's queue
and the runner routes only: no other cluster's queue or dead-letter queue, no job or cluster admin
route, no table, no wildcard. Checked on the synthesized template (reliability issue 4)."""

from __future__ import annotations

from typing import Any

from .conftest import Synth, as_list, logical_id, ref_id, render, role_statements, statements

RUNNER_ROUTES = {"GET/config", "POST/runner/next", "POST/runner/extend"}


def _onprem_statements(s: Synth) -> tuple[str, list[list[dict[str, Any]]]]:
    roles = [k for k, r in s.of_type("AWS::IAM::Role").items() if "on-prem" in r["Properties"].get("Description", "")]
    (role,) = roles
    granted = [role_statements(s, role)]
    for user in s.of_type("AWS::IAM::User").values():
        found: list[dict[str, Any]] = []
        for arn in user["Properties"].get("ManagedPolicyArns", []):
            found += statements(s.resources[ref_id(arn)]["Properties"]["PolicyDocument"])
        granted.append(found)
    description = s.resources[role]["Properties"]["Description"]
    slug = next(c.slug for c in s.config.clusters if f"'{c.slug}'" in description or c.slug in description)
    return slug, granted


def test_onprem_runner_credentials_cannot_touch_other_clusters_or_admin_routes(full_synth: Synth) -> None:
    s = full_synth
    slug, granted = _onprem_statements(s)
    queues = {q["Properties"]["QueueName"]: k for k, q in s.of_type("AWS::SQS::Queue").items()}
    own_queue = queues[s.config.queue_name(slug)]
    others = {k for name, k in queues.items() if k != own_queue}
    assert others, "the deployment under test has other queues (other clusters, dead-letter queues)"
    (api_id,) = s.of_type("AWS::ApiGatewayV2::Api")
    runner_fn = next(
        k
        for k, f in s.of_type("AWS::Lambda::Function").items()
        if f["Properties"].get("Handler") == "taskfleet_functions.handlers.runner.lambda_handler"
    )
    for sts in granted:
        assert sts, "the credentials have a policy"
        for st in sts:
            assert st["Effect"] == "Allow"
            actions = as_list(st["Action"])
            resources = as_list(st["Resource"])
            assert all("*" not in a for a in actions), actions
            assert all(render(r) != "*" for r in resources), st
            services = {a.split(":")[0] for a in actions}
            assert services <= {"sqs", "execute-api", "lambda"}, actions  # no dynamodb, iam, ...
            if "sqs" in services:
                assert [logical_id(r) for r in resources] == [own_queue]
                assert not {logical_id(r) for r in resources} & others
            if "execute-api" in services:
                routes = {render(r).split(f"<{api_id}>/$default/", 1)[1] for r in resources}
                assert routes <= RUNNER_ROUTES | {f"GET/clusters/{slug}"}, routes
                assert not any(r.split("/", 1)[1].startswith("jobs") for r in routes)
            if "lambda" in services:
                assert {logical_id(r) for r in resources} == {runner_fn}
