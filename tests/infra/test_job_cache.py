"""The job caches' bucket (infra/taskfleet_infra/cache.py): private, encrypted, TLS only, unversioned, its
objects expiring after `cache_expiry_days`; every runner policy may read and write objects under `jobs/`
and list below it, nothing more; ECS runners get the bucket as TASKFLEET_CACHE_BUCKET; the stack outputs
its name."""

from __future__ import annotations

import re
from typing import Any

import pytest
from taskfleet.cache import DEFAULT_S3_PREFIX
from taskfleet_infra.cache import CACHE_PREFIX, OBJECT_ACTIONS
from taskfleet_infra.config import ConfigError, parse_config

from .conftest import ROOT, Synth, as_list, policy_by_description, ref_id, render, runner_policies, statements


def _bucket(s: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = s.of_type("AWS::S3::Bucket").items()
    return found


def test_the_cache_bucket_is_private_encrypted_and_unversioned(synth: Synth) -> None:
    _, bucket = _bucket(synth)
    props = bucket["Properties"]
    (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert props.get("VersioningConfiguration", {}).get("Status") != "Enabled"
    assert "BucketName" not in props  # CloudFormation names it: no clash between deployments
    # kept with its data like the table when deletion protection is on
    expected = "Retain" if synth.config.deletion_protection else "Delete"
    assert bucket["DeletionPolicy"] == expected


def test_the_cache_bucket_refuses_requests_without_tls(synth: Synth) -> None:
    bucket_id, _ = _bucket(synth)
    (policy,) = (
        p for p in synth.of_type("AWS::S3::BucketPolicy").values() if ref_id(p["Properties"]["Bucket"]) == bucket_id
    )
    denies = [st for st in statements(policy["Properties"]["PolicyDocument"]) if st["Effect"] == "Deny"]
    no_tls = [st for st in denies if st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}]
    assert len(no_tls) == 1
    assert sorted(render(r) for r in as_list(no_tls[0]["Resource"])) == [
        f"<{bucket_id}.Arn>",
        f"<{bucket_id}.Arn>/*",
    ]
    assert no_tls[0]["Principal"] == {"AWS": "*"} and no_tls[0]["Action"] == "s3:*"


def test_cache_objects_expire_after_the_configured_days(synth: Synth) -> None:
    _, bucket = _bucket(synth)
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    # the repository's cdk.json leaves the default; FULL_CONFIG sets 7
    assert synth.config.cache_expiry_days == {"taskfleet": 30, "tfci": 7}[synth.config.name]
    assert rules["expire-cache"]["ExpirationInDays"] == synth.config.cache_expiry_days
    assert rules["expire-cache"]["Status"] == "Enabled"
    assert "Prefix" not in rules["expire-cache"] and "Filter" not in rules["expire-cache"]  # the whole bucket
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_server_access_logging_is_acknowledged_with_a_reason(synth: Synth) -> None:
    _, bucket = _bucket(synth)
    suppressed = {r["id"]: r["reason"] for r in bucket["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert len(suppressed["AwsSolutions-S1"].split()) >= 8
    assert "LoggingConfiguration" not in bucket["Properties"]


def _cache_statements(sts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [st for st in sts if any(a.startswith("s3:") for a in as_list(st["Action"]))]


def _check_cache_grant(s: Synth, sts: list[dict[str, Any]], extra_condition: dict[str, Any] | None = None) -> None:
    bucket_id, _ = _bucket(s)
    by_sid = {st["Sid"]: st for st in _cache_statements(sts)}
    assert set(by_sid) == {"JobCacheObjects", "JobCacheList"}
    objects, listing = by_sid["JobCacheObjects"], by_sid["JobCacheList"]
    assert sorted(as_list(objects["Action"])) == sorted(OBJECT_ACTIONS) == ["s3:GetObject", "s3:PutObject"]
    assert [render(r) for r in as_list(objects["Resource"])] == [f"<{bucket_id}.Arn>/jobs/*"]
    assert objects.get("Condition") == extra_condition
    assert as_list(listing["Action"]) == ["s3:ListBucket"]
    assert [render(r) for r in as_list(listing["Resource"])] == [f"<{bucket_id}.Arn>"]
    assert listing["Condition"] == {**(extra_condition or {}), "StringLike": {"s3:prefix": ["jobs/*"]}}


def test_every_runner_policy_may_read_write_and_list_the_jobs_prefix_only(synth: Synth) -> None:
    policies = runner_policies(synth)
    assert set(policies) == set(synth.config.cluster_slugs)
    for _, props in policies.values():
        _check_cache_grant(synth, statements(props["PolicyDocument"]))
    _, runtime = policy_by_description(synth, "its principal tag taskfleet-cluster names")
    tag_present = {"Null": {"aws:PrincipalTag/taskfleet-cluster": "false"}}
    _check_cache_grant(synth, statements(runtime["PolicyDocument"]), tag_present)


def test_no_other_principal_is_granted_the_cache_bucket(synth: Synth) -> None:
    """The functions and the API's users have no business with the cache."""
    bucket_id, _ = _bucket(synth)
    runner = {k for k, _ in runner_policies(synth).values()}
    runner.add(policy_by_description(synth, "its principal tag taskfleet-cluster names")[0])
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
        for k, res in synth.of_type(kind).items():
            if k in runner:
                continue
            assert bucket_id not in repr(res["Properties"]), k


def test_ecs_runners_get_the_bucket_as_taskfleet_cache_bucket(synth: Synth) -> None:
    bucket_id, _ = _bucket(synth)
    containers = [
        c
        for task in synth.of_type("AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
    ]
    assert len(containers) == len([c for c in synth.config.clusters if c.runs_on_ecs])
    for container in containers:
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["TASKFLEET_CACHE_BUCKET"] == {"Ref": bucket_id}


def test_the_stack_outputs_the_cache_bucket_name(synth: Synth) -> None:
    bucket_id, _ = _bucket(synth)
    assert synth.template["Outputs"]["CacheBucketName"]["Value"] == {"Ref": bucket_id}


# --- the grant fits what AmazonS3Cache does --------------------------------------------------------------

# The IAM action behind each S3 call (HeadObject is authorized as s3:GetObject, ListObjectsV2 as s3:ListBucket).
S3_CALL_ACTIONS = {
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "put_object": "s3:PutObject",
    "list_objects_v2": "s3:ListBucket",
}


def test_the_s3_calls_of_the_cache_are_exactly_what_the_runner_policy_grants() -> None:
    source = (ROOT / "sdk" / "taskfleet" / "cache.py").read_text()
    calls = set(re.findall(r"\.client\.([a-z_0-9]+)\(", source))
    calls |= set(re.findall(r"get_paginator\(\"([a-z_0-9]+)\"\)", source))
    calls.discard("get_paginator")
    assert calls <= set(S3_CALL_ACTIONS), calls - set(S3_CALL_ACTIONS)
    assert {S3_CALL_ACTIONS[c] for c in calls} == {*OBJECT_ACTIONS, "s3:ListBucket"}


def test_the_granted_prefix_is_the_caches_default() -> None:
    assert CACHE_PREFIX == DEFAULT_S3_PREFIX == "jobs"


# --- configuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, "30", 1.5, True])
def test_cache_expiry_days_must_be_a_non_negative_integer(value: Any) -> None:
    with pytest.raises(ConfigError, match="cache_expiry_days"):
        parse_config({"cache_expiry_days": value})


def test_cache_expiry_days_defaults_to_30_and_0_means_never() -> None:
    from aws_cdk import App, Stack
    from aws_cdk.assertions import Template
    from taskfleet_infra.cache import CacheBucket

    assert parse_config({}).cache_expiry_days == 30
    stack = Stack(App(), "CacheOnly")
    CacheBucket(stack, "Cache", config=parse_config({"cache_expiry_days": 0, "deletion_protection": False}))
    (bucket,) = Template.from_stack(stack).find_resources("AWS::S3::Bucket").values()
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert [r["Id"] for r in rules] == ["abort-incomplete-uploads"]
    assert not any("ExpirationInDays" in r for r in rules)
