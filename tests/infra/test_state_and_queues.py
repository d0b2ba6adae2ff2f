"""The table matches the handlers' own table definition; the cluster queues match their protocol."""

from __future__ import annotations

import json
from typing import Any

from taskfleet_functions.dal import queues as dal_queues
from taskfleet_functions.dal.table import table_spec

from .conftest import Synth, logical_id, ref_id


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


def test_every_cluster_has_a_fifo_queue_in_high_throughput_mode_with_a_dlq(synth: Synth) -> None:
    config = synth.config
    queues = _queues_by_name(synth)
    assert set(queues) == {n for slug in config.cluster_slugs for n in (config.queue_name(slug), config.dlq_name(slug))}
    for slug in config.cluster_slugs:
        _, q = queues[config.queue_name(slug)]
        dlq_id, dlq = queues[config.dlq_name(slug)]
        assert q["FifoQueue"] is True and dlq["FifoQueue"] is True
        assert q["ContentBasedDeduplication"] is False
        assert (q["DeduplicationScope"], q["FifoThroughputLimit"]) == ("messageGroup", "perMessageGroupId")
        assert q["VisibilityTimeout"] == config.lease_seconds
        assert q["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
        redrive = q["RedrivePolicy"]
        assert logical_id(redrive["deadLetterTargetArn"]) == dlq_id


def test_queue_retention_and_redrive_equal_what_the_clusters_function_creates_at_run_time(synth: Synth) -> None:
    """Queues of configured clusters (CDK) and of clusters created through the API (dal/queues.py) agree."""
    for _, q in _queues_by_name(synth).values():
        assert q["MessageRetentionPeriod"] == dal_queues.RETENTION_SECONDS
        if "RedrivePolicy" in q:
            assert q["RedrivePolicy"]["maxReceiveCount"] == dal_queues.MAX_RECEIVE_COUNT


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
