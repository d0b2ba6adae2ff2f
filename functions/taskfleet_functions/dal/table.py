"""The one definition of taskfleet's DynamoDB table: the local stack creates it from here and the CDK
stack is tested against it, so code and infrastructure cannot drift apart."""

from __future__ import annotations

from typing import Any

PARTITION_KEY = "PK"
SORT_KEY = "SK"

# GSI1: jobs newest first (GSI1PK is the constant "JOBS"). Written once per job state change.
JOBS_INDEX = "GSI1"
# GSI2: sparse; jobs whose dispatch (submit, retry) is not confirmed yet. Read by the sweeper.
OUTBOX_INDEX = "GSI2"

INDEXES: dict[str, tuple[str, str]] = {
    JOBS_INDEX: ("GSI1PK", "GSI1SK"),
    OUTBOX_INDEX: ("GSI2PK", "GSI2SK"),
}

# What each index carries besides its keys. GSI1 carries only what a job listing shows, so that the
# frequent job-item updates (the roots latch) do not rewrite the index entry.
JOBS_INDEX_ATTRIBUTES = ["job_id", "name", "state", "cluster", "submitted_at", "finished_at"]
PROJECTIONS: dict[str, dict[str, object]] = {
    JOBS_INDEX: {"ProjectionType": "INCLUDE", "NonKeyAttributes": JOBS_INDEX_ATTRIBUTES},
    OUTBOX_INDEX: {"ProjectionType": "KEYS_ONLY"},
}


def table_spec(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable (on-demand billing)."""
    attributes = {PARTITION_KEY, SORT_KEY}
    for pk, sk in INDEXES.values():
        attributes.update((pk, sk))
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": PROJECTIONS[name],
            }
            for name, (pk, sk) in INDEXES.items()
        ],
    }
