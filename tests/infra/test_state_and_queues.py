"""The table matches the handlers' own table definition and expires a job's items on the attribute the
functions write; each configured cluster's DLQ (its lanes are created at run time) matches what the
functions create for a cluster of their own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from taskfleet_functions.dal import queues as dal_queues
from taskfleet_functions.dal.repository import EXPIRES
from taskfleet_functions.dal.table import table_spec
from taskfleet_functions.settings import Settings

from .conftest import Synth, ref_id


def _table(s: Synth) -> dict[str, Any]:
    (table,) = s.of_type("AWS::DynamoDB::Table").values()
    return table


def _normalized_indexes(indexes: list[dict[str, Any]]) -> dict[str, Any]:
    return {i["IndexName"]: (i["KeySchema"], i["Projection"]) for i in indexes}


def test_table_keys_attributes_and_indexes_equal_the_code_table_spec(synth: Synth) -> None:
    props = _table(synth)["Properties"]
    spec = table_spec("ignored")
    assert props["KeySchema"] == spec["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        spec["AttributeDefinitions"], key=lambda a: a["AttributeName"]
    )
    assert _normalized_indexes(props["GlobalSecondaryIndexes"]) == _normalized_indexes(spec["GlobalSecondaryIndexes"])
    assert props["BillingMode"] == spec["BillingMode"]
    assert "LocalSecondaryIndexes" not in props


def test_table_has_point_in_time_recovery(synth: Synth) -> None:
    pitr = _table(synth)["Properties"]["PointInTimeRecoverySpecification"]
    assert pitr["PointInTimeRecoveryEnabled"] is True


def test_the_table_expires_items_on_the_attribute_the_functions_write(synth: Synth) -> None:
    """Retention: TTL on `expires_at`, the attribute the functions' Table sets on a job's items (and never on
    clusters and lanes); on even with retention_days 0, when the functions write no expiry."""
    ttl = _table(synth)["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": EXPIRES, "Enabled": True}
    assert EXPIRES == "expires_at"


def test_the_functions_read_the_retention_and_cluster_cap_the_stack_passes(
    synth: Synth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clusters function's environment, as synthesized, gives Settings the configured retention (which
    the Table turns into each write's `expires_at`) and cap on created clusters."""
    (clusters,) = [
        f
        for f in synth.of_type("AWS::Lambda::Function").values()
        if f["Properties"].get("Handler") == "taskfleet_functions.handlers.clusters.lambda_handler"
    ]
    env = {k: v for k, v in clusters["Properties"]["Environment"]["Variables"].items() if isinstance(v, str)}
    for key, value in {**env, "TASKFLEET_TABLE": "t", "TASKFLEET_RUNNER_URLS": "{}"}.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env()
    assert settings.retention_days == synth.config.retention_days
    assert settings.max_clusters == synth.config.max_clusters


def test_deletion_protection_follows_the_configuration(cli_synth: Synth, full_synth: Synth) -> None:
    assert cli_synth.config.deletion_protection is True
    protected = _table(cli_synth)
    assert protected["Properties"]["DeletionProtectionEnabled"] is True
    assert protected["DeletionPolicy"] == "Retain"
    assert full_synth.config.deletion_protection is False
    unprotected = _table(full_synth)
    assert unprotected["Properties"].get("DeletionProtectionEnabled", False) is False
    assert unprotected["DeletionPolicy"] == "Delete"


def _queues_by_name(s: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    return {q["Properties"]["QueueName"]: (k, q["Properties"]) for k, q in s.of_type("AWS::SQS::Queue").items()}


def test_the_only_queue_of_a_cluster_in_the_template_is_its_dlq(synth: Synth) -> None:
    """Lanes (a queue per task identifier) are created at run time; no per-cluster ticket queue exists."""
    config = synth.config
    triggers_dlq = f"{config.queue_prefix}-automations-dlq"  # the automations' (infra/automations.py)
    assert set(_queues_by_name(synth)) == {config.dlq_name(slug) for slug in config.cluster_slugs} | {triggers_dlq}
    for name, (_, q) in _queues_by_name(synth).items():
        assert name.endswith("-dlq.fifo") or name == triggers_dlq
        assert "--" not in name  # no lane is declared (and no name the runners' `<prefix>-<slug>--*` matches)
        assert "RedrivePolicy" not in q  # nothing redrives a DLQ


def test_dlq_attributes_equal_what_the_functions_give_the_dlq_of_a_runtime_cluster(synth: Synth) -> None:
    """DLQs of configured clusters (CDK) and of clusters created through the API (dal/queues.py
    `ensure_dlq`) agree: FIFO, retention, SSE."""
    created: dict[str, Any] = {}

    class _Recorder:
        class exceptions:
            class QueueDoesNotExist(Exception):
                pass

        def get_queue_url(self, QueueName: str) -> dict[str, str]:
            raise self.exceptions.QueueDoesNotExist()

        def create_queue(self, QueueName: str, Attributes: dict[str, str], **_: Any) -> dict[str, str]:
            created[QueueName] = Attributes
            return {"QueueUrl": f"https://sqs/{QueueName}"}

    queues = dal_queues.Queues(_Recorder(), visibility_seconds=synth.config.lease_seconds)
    for name, (_, q) in _queues_by_name(synth).items():
        if name == f"{synth.config.queue_prefix}-automations-dlq":
            continue  # the automations' triggers DLQ, a standard queue of the stack's own
        queues.ensure_dlq(name)
        runtime = created[name]
        assert (runtime["FifoQueue"], q["FifoQueue"]) == ("true", True)
        assert int(runtime["MessageRetentionPeriod"]) == q["MessageRetentionPeriod"] == dal_queues.RETENTION_SECONDS
        assert (runtime["SqsManagedSseEnabled"], q["SqsManagedSseEnabled"]) == ("true", True)
        assert "ContentBasedDeduplication" not in q and "VisibilityTimeout" not in q


def test_every_queue_denies_requests_without_tls(synth: Synth) -> None:
    guarded: set[str] = set()
    for policy in synth.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            insecure = statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            if statement["Effect"] == "Deny" and insecure:
                guarded |= {ref_id(q) for q in policy["Properties"]["Queues"]}
    assert guarded == set(synth.of_type("AWS::SQS::Queue"))


def test_queue_names_in_the_template_are_literal(synth: Synth) -> None:
    """The functions derive queue names from TASKFLEET_QUEUE_PREFIX; CloudFormation must not rename them."""
    for name in _queues_by_name(synth):
        assert isinstance(name, str) and name.startswith(f"{synth.config.queue_prefix}-"), json.dumps(name)


def test_dlqs_keep_their_logical_ids(synth: Synth) -> None:
    """A DLQ is named, so CloudFormation cannot replace it (the new one would take the old one's name):
    its construct path, and so its logical id, stays what it was beside the per-cluster queue."""
    for name, (logical, _) in _queues_by_name(synth).items():
        if name == f"{synth.config.queue_prefix}-automations-dlq":
            continue  # the automations' triggers DLQ: no cluster's
        slug = name.removeprefix(f"{synth.config.queue_prefix}-").removesuffix("-dlq.fifo")
        assert logical.startswith("Queues" + slug.replace("-", "") + "dlq"), (name, logical)
