"""The DynamoDB table, defined from the functions' own table module so code and table cannot drift."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct
from taskfleet_functions.dal import table as table_module
from taskfleet_functions.dal.repository import EXPIRES

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
    "INCLUDE": dynamodb.ProjectionType.INCLUDE,
}


class StateTable(Construct):
    """On-demand table, point-in-time recovery, AWS-owned encryption, configurable deletion protection,
    time to live on `expires_at`.

    Keys, attribute types and indexes (with their projections) are read from the functions' own
    `taskfleet_functions.dal.table.table_spec` (and a test checks the synthesized template against
    it). CloudFormation adds or removes at most one global secondary index per update: add indexes
    there one deployment at a time.

    Retention: TTL is on, on the attribute the functions' `Table` writes (`repository.EXPIRES`): every
    write of a job's items sets it to TASKFLEET_RETENTION_DAYS from now, and DynamoDB deletes expired items
    within days, at no cost (no write units). Clusters and lanes never carry it. With `retention_days: 0`
    the functions write no expiry and TTL, still on, deletes nothing: switching retention on later needs no
    table update (CloudFormation changes TTL at most once an hour per table and cannot rename its attribute
    in one step).
    """

    def __init__(self, scope: Construct, id: str, *, deletion_protection: bool) -> None:
        super().__init__(scope, id)
        spec = table_module.table_spec("unused")
        types = {a["AttributeName"]: _ATTRIBUTE_TYPES[a["AttributeType"]] for a in spec["AttributeDefinitions"]}

        def key(schema: list[dict[str, str]], kind: str) -> dynamodb.Attribute | None:
            names = [k["AttributeName"] for k in schema if k["KeyType"] == kind]
            return dynamodb.Attribute(name=names[0], type=types[names[0]]) if names else None

        if spec["BillingMode"] != "PAY_PER_REQUEST":
            raise ValueError("the table spec asks for provisioned capacity; the stack only does on-demand")
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=key(spec["KeySchema"], "HASH"),
            sort_key=key(spec["KeySchema"], "RANGE"),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            time_to_live_attribute=EXPIRES,
            # With deletion protection the data outlives the stack; without it (test stacks) it goes.
            removal_policy=RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY,
        )
        self.index_names: list[str] = []
        for index in spec.get("GlobalSecondaryIndexes", []):
            projection = index["Projection"]
            self.table.add_global_secondary_index(
                index_name=index["IndexName"],
                partition_key=key(index["KeySchema"], "HASH"),
                sort_key=key(index["KeySchema"], "RANGE"),
                projection_type=_PROJECTIONS[projection["ProjectionType"]],
                non_key_attributes=projection.get("NonKeyAttributes"),
            )
            self.index_names.append(index["IndexName"])
        self.jobs_index = table_module.JOBS_INDEX
        self.outbox_index = table_module.OUTBOX_INDEX

    def index_arn(self, name: str) -> str:
        if name not in self.index_names:
            raise KeyError(f"no index {name!r} on the table")
        return f"{self.table.table_arn}/index/{name}"
