"""A runner's credentials reach its own cluster's lanes, runner routes and runner URL only: no other
cluster's lanes, no dead-letter queue, no other cluster's routes or alias, the runner function itself
never unqualified, no job or cluster admin route, no table, no wildcard action; besides, the deployment's
job cache (objects under `jobs/` of the cache bucket, shared by all clusters since a job's tasks may run on
several: tests/infra/test_job_cache.py). Checked on the synthesized
template for the on-prem role and user of an external cluster (reliability issue 4), for the managed
policy of every declared cluster, and for the policy of clusters created at run time, bound by the
principal tag `taskfleet-cluster`."""

from __future__ import annotations

import fnmatch
from typing import Any

from taskfleet_functions.orchestrator.clusters import lane_key
from taskfleet_functions.settings import Settings

from .conftest import (
    Synth,
    as_list,
    policy_by_description,
    ref_id,
    render,
    runner_alias_arn,
    runner_policies,
    statements,
)

SQS_ARN = "arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:"


def runner_routes(slug: str) -> set[str]:
    return {
        "GET/config",
        f"GET/clusters/{slug}",
        f"POST/runner/{slug}/next",
        f"POST/runner/{slug}/extend",
        f"POST/runner/{slug}/lanes",
    }


def _onprem_statements(s: Synth) -> tuple[str, list[list[dict[str, Any]]]]:
    roles = [k for k, r in s.of_type("AWS::IAM::Role").items() if "on-prem" in r["Properties"].get("Description", "")]
    (role,) = roles
    granted = [_attached(s, s.resources[role])]
    for user in s.of_type("AWS::IAM::User").values():
        granted.append(_attached(s, user))
    description = s.resources[role]["Properties"]["Description"]
    (slug,) = [c.slug for c in s.config.clusters if f"'{c.slug}'" in description]
    return slug, granted


def _attached(s: Synth, principal: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for inline in principal["Properties"].get("Policies", []):
        found += statements(inline["PolicyDocument"])
    for arn in principal["Properties"].get("ManagedPolicyArns", []):
        found += statements(s.resources[ref_id(arn)]["Properties"]["PolicyDocument"])
    return found


def _runner_policies(s: Synth) -> dict[str, list[dict[str, Any]]]:
    return {slug: statements(props["PolicyDocument"]) for slug, (_, props) in runner_policies(s).items()}


def _queue_names_of(s: Synth, slug: str) -> list[str]:
    """Names of queues that exist or may exist: every cluster's lanes (one made-up identifier each) and
    DLQs, the configured ones and one created at run time."""
    settings = Settings(table_name="unused", queue_prefix=s.config.queue_prefix)
    key = lane_key("mypackage.tasks:Detect", "1.0")
    return [settings.lane_name(slug, key), settings.dlq_name(slug)]


def _check_runner_statements(s: Synth, slug: str, sts: list[dict[str, Any]]) -> None:
    (api_id,) = s.of_type("AWS::ApiGatewayV2::Api")
    others = [c for c in s.config.cluster_slugs if c != slug] + ["runtime-cluster-1a2b3c"]
    own_lane, own_dlq = _queue_names_of(s, slug)
    assert sts, "the credentials have a policy"
    seen = set()
    for st in sts:
        assert st["Effect"] == "Allow"
        actions = as_list(st["Action"])
        resources = [render(r) for r in as_list(st["Resource"])]
        assert all("*" not in a for a in actions), actions
        assert all(r != "*" for r in resources), st
        services = {a.split(":")[0] for a in actions}
        assert services <= {"sqs", "execute-api", "lambda", "s3"}, actions  # no dynamodb, iam, ...
        seen |= services
        if "s3" in services:
            assert st["Sid"] in ("JobCacheObjects", "JobCacheList"), st
            assert resources in ([f"<{_cache_bucket(s)}.Arn>/jobs/*"], [f"<{_cache_bucket(s)}.Arn>"]), resources
        if "sqs" in services:
            assert resources == [f"{SQS_ARN}{s.config.queue_prefix}-{slug}--*"]
            (pattern,) = (r.removeprefix(SQS_ARN) for r in resources)
            assert fnmatch.fnmatchcase(own_lane, pattern)
            assert not fnmatch.fnmatchcase(own_dlq, pattern)
            for other in others:
                for name in _queue_names_of(s, other):
                    assert not fnmatch.fnmatchcase(name, pattern), (slug, name)
        if "execute-api" in services:
            routes = {r.split(f"<{api_id}>/$default/", 1)[1] for r in resources}
            assert routes == runner_routes(slug), routes
            assert not any(other in route for route in routes for other in others)
        if "lambda" in services:
            assert resources == [runner_alias_arn(s, slug)], resources  # its own alias, qualified
            for other in others:
                assert runner_alias_arn(s, other) not in resources
    assert {"sqs", "execute-api", "lambda", "s3"} <= seen


def _cache_bucket(s: Synth) -> str:
    (bucket,) = s.of_type("AWS::S3::Bucket")
    return bucket


def test_onprem_runner_credentials_cannot_touch_other_clusters_or_admin_routes(full_synth: Synth) -> None:
    slug, granted = _onprem_statements(full_synth)
    for sts in granted:
        _check_runner_statements(full_synth, slug, sts)


def test_each_runner_policy_names_its_own_lanes_and_routes_only(synth: Synth) -> None:
    policies = _runner_policies(synth)
    assert set(policies) == set(synth.config.cluster_slugs)
    assert len(policies) >= 2, "the configuration under test has several clusters"
    for slug, sts in policies.items():
        _check_runner_statements(synth, slug, sts)


def test_a_runner_policy_does_not_reach_a_cluster_whose_slug_starts_with_its_own(full_synth: Synth) -> None:
    """ "gpu" and "gpu-a10" may both exist: `<prefix>-gpu--*` must not match "gpu-a10"'s lanes or DLQ."""
    s = full_synth
    prefix = s.config.queue_prefix
    pattern = f"{prefix}-gpu--*"
    for name in _queue_names_of(s, "gpu-a10"):
        assert not fnmatch.fnmatchcase(name, pattern)
    assert fnmatch.fnmatchcase(_queue_names_of(s, "gpu")[0], pattern)


TAG = "${aws:PrincipalTag/taskfleet-cluster}"


def test_the_runtime_cluster_policy_is_the_runner_policy_of_the_cluster_its_principal_tag_names(synth: Synth) -> None:
    """For clusters created at run time: the same grants as a declared cluster's runner policy, with the slug
    replaced by the caller's principal tag in every resource, and only for a principal that has the tag."""
    _, runtime = policy_by_description(synth, "its principal tag taskfleet-cluster names")
    sts = statements(runtime["PolicyDocument"])
    _check_runner_statements(synth, TAG, sts)
    for st in sts:
        assert st["Condition"]["Null"] == {"aws:PrincipalTag/taskfleet-cluster": "false"}, st["Sid"]
        for resource in (render(r) for r in as_list(st["Resource"])):
            # the job cache is the deployment's, not a cluster's (see the module's docstring)
            cache = st["Sid"].startswith("JobCache")
            assert TAG in resource or resource.endswith("/$default/GET/config") or cache, resource
    # Statement for statement a declared cluster's policy ("default" is also the stage's name: take another).
    declared = next(slug for slug in _runner_policies(synth) if slug != "default")

    def shape(found: list[dict[str, Any]], slug: str) -> list[tuple[str, list[str], list[str]]]:
        return sorted(
            (
                st["Sid"],
                sorted(as_list(st["Action"])),
                sorted(render(r).replace(slug, "SLUG") for r in as_list(st["Resource"])),
            )
            for st in found
        )

    assert shape(sts, TAG) == shape(_runner_policies(synth)[declared], declared)


def test_runtime_cluster_policy_does_not_reach_a_cluster_whose_slug_starts_with_the_tag(full_synth: Synth) -> None:
    """A principal tagged "gpu" must not reach cluster "gpu-a10": every grant ends the slug with a separator."""
    _, runtime = policy_by_description(full_synth, "its principal tag taskfleet-cluster names")
    for st in statements(runtime["PolicyDocument"]):
        for resource in (render(r) for r in as_list(st["Resource"])):
            if TAG in resource:
                after = resource.split(TAG, 1)[1]
                assert after == "" or after[0] in "/-", resource
                if after.startswith("-"):
                    assert after.startswith("--"), resource  # the lanes' separator, never a DLQ or a longer slug


def test_no_runner_principal_may_pass_session_tags(synth: Synth) -> None:
    """Session tags override a role's tags in aws:PrincipalTag: no role of the stack lets its principals
    pass them (sts:TagSession), and no policy grants it."""
    for k, role in synth.of_type("AWS::IAM::Role").items():
        for st in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            assert "sts:TagSession" not in as_list(st["Action"]), k
    for kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        for k, policy in synth.of_type(kind).items():
            for st in statements(policy["Properties"]["PolicyDocument"]):
                assert not [a for a in as_list(st["Action"]) if a.startswith("sts:") or a.startswith("iam:Tag")], k
