"""The DynamoDB table, defined from the functions' own table module so code and table cannot drift."""

from __future__ import annotations

import sys

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from . import FUNCTIONS_DIR

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

from taskfleet_functions.dal import table as table_module


class StateTable(Construct):
    """On-demand table, point-in-time recovery, AWS-owned encryption, configurable deletion protection.

    Keys and indexes come from `taskfleet_functions.dal.table` (a test checks the synthesized template
    against its `table_spec`). CloudFormation adds or removes at most one global secondary index per
    update: add indexes there one deployment at a time.
    """

    def __init__(self, scope: Construct, id: str, *, deletion_protection: bool) -> None:
        super().__init__(scope, id)
        string = dynamodb.AttributeType.STRING
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=table_module.PARTITION_KEY, type=string),
            sort_key=dynamodb.Attribute(name=table_module.SORT_KEY, type=string),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            # With deletion protection the data outlives the stack; without it (test stacks) it goes.
            removal_policy=RemovalPolicy.RETAIN if deletion_protection else RemovalPolicy.DESTROY,
        )
        self.index_names: dict[str, str] = {}
        for name, (pk, sk) in table_module.INDEXES.items():
            self.table.add_global_secondary_index(
                index_name=name,
                partition_key=dynamodb.Attribute(name=pk, type=string),
                sort_key=dynamodb.Attribute(name=sk, type=string),
                projection_type=dynamodb.ProjectionType.ALL,
            )
            self.index_names[name] = name
        self.jobs_index = table_module.JOBS_INDEX
        self.outbox_index = table_module.OUTBOX_INDEX

    def index_arn(self, name: str) -> str:
        if name not in self.index_names:
            raise KeyError(f"no index {name!r} on the table")
        return f"{self.table.table_arn}/index/{name}"
