"""The four orchestrator functions, each with its own least-privilege role.

| function | handler | data it touches |
| --- | --- | --- |
| jobs | handlers.jobs | table read/write incl. GSI1 and GSI2; lanes: create (on submit), send tickets |
| clusters | handlers.clusters | table read/write; DLQs: create, delete; lanes: count, delete (with the cluster) |
| runner | handlers.runner | table read/write; lanes: create (on a report or a runner's registration), send |
| sweeper | handlers.sweeper | table read/write incl. GSI2; DLQs: drain; lanes: create, send, read counts |
| connect | handlers.connect | Tilebox SDK clients: the jobs' and clusters' data, and lanes: receive, hide, delete |

Queue grants name patterns, not queues: lanes (`<prefix>-<slug>--<key>.fifo`, one per task identifier
in a cluster) are created at run time by whichever function first needs one, and so are the DLQs of
clusters created at run time (`POST /clusters`). `<prefix>-*--*.fifo` matches every lane of this
deployment and no DLQ (`<prefix>-<slug>-dlq.fifo`: neither prefix nor slug contains "--"),
`<prefix>-*-dlq.fifo` every DLQ and no lane (a lane's key is hex), so each function gets on each kind
only the actions its code paths call (functions/taskfleet_functions/dal/queues.py):
- creating a lane: GetQueueUrl and CreateQueue with tags (so TagQueue) on the lane, GetQueueAttributes
  (its QueueArn, for the RedrivePolicy) on the cluster's DLQ; resolving a configured cluster not yet in
  the table: GetQueueUrl on its DLQ (the stack's);
- the sweeper's backlog metric: GetQueueAttributes (message counts) on every lane.

Runner URLs (`runner_function_url`, on by default): the runner function has no unqualified URL. Each
declared cluster gets an alias `cluster-<slug>` of it (on `$LATEST`, so a deployment never has to move
it) with an AWS_IAM function URL; a cluster's runner policy may invoke that alias only, and the runner
function refuses a path of another cluster than its alias's (handlers/runner.py `runner_cluster`), so the
URL is bound to the cluster as the API routes are. The clusters function gets the runner function's name
(TASKFLEET_RUNNER_FUNCTION) and the declared clusters' URLs (TASKFLEET_RUNNER_URLS, JSON), and makes the
alias and URL of a cluster created at run time itself (dal/runner_urls.py), with the grants below.

Every function gets TASKFLEET_RETENTION_DAYS (the table's TTL, state.py) and its reserved concurrency
(config.py, DEFAULT_RESERVED_CONCURRENCY); the clusters function TASKFLEET_MAX_CLUSTERS.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from aws_cdk import ArnFormat, CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct
from taskfleet_functions.dal.runner_urls import ALIAS_PREFIX, alias_name

from .bundle import build_bundle
from .config import DeploymentConfig
from .nag import acknowledge
from .state import StateTable

HANDLER_MODULE = "taskfleet_functions.handlers"
# API Gateway HTTP APIs give up on an integration after 30 s; a handler must answer before.
API_TIMEOUT = Duration.seconds(29)
# One sweep a minute: a sweep that cannot finish within a minute hands over to the next one.
SWEEPER_TIMEOUT = Duration.seconds(55)

# What the clusters function calls to give a cluster created at run time its runner URL, and to take it
# away with the cluster (functions/taskfleet_functions/dal/runner_urls.py), by the resource IAM matches
# (Service Authorization Reference, Lambda; Lambda developer guide, "Resources and conditions for Lambda
# actions"):
# - CreateAlias, DeleteAlias: resource type `function`, the UNQUALIFIED function ARN (the alias name is a
#   parameter, not part of the resource). IAM cannot narrow these to `cluster-*` aliases: they reach every
#   alias of the runner function, and of no other function.
# - CreateFunctionUrlConfig, DeleteFunctionUrlConfig, GetFunctionUrlConfig with `Qualifier=<alias>`: the
#   QUALIFIED alias ARN `<runner>:cluster-*` (a grant on the unqualified ARN would not match them, and
#   would reach the unqualified function's URL instead). Creating is conditioned on
#   lambda:FunctionUrlAuthType=AWS_IAM: no public URL.
RUNNER_ALIAS_ACTIONS = ("lambda:CreateAlias", "lambda:DeleteAlias")
RUNNER_ALIAS_URL_ACTIONS = ("lambda:DeleteFunctionUrlConfig", "lambda:GetFunctionUrlConfig")
RUNNER_ALIAS_URL_CREATE = "lambda:CreateFunctionUrlConfig"

# DynamoDB data-plane actions the orchestrator uses (dal/dynamo.py): single-item reads and conditional
# writes, batches, queries. No Scan, no table management.
TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
]
INDEX_ACTIONS = ["dynamodb:Query"]


# A lane is created (GetQueueUrl, then CreateQueue with tags) and tickets are sent to it.
LANE_CREATE_AND_SEND = ("sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:TagQueue", "sqs:SendMessage")
# Creating a lane reads its cluster's DLQ ARN; resolving a configured cluster finds its DLQ's URL.
DLQ_LOOKUP = ("sqs:GetQueueUrl", "sqs:GetQueueAttributes")


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    indexes: tuple[str, ...]  # GSIs it queries
    lane_actions: tuple[str, ...]  # on `<prefix>-*--*.fifo`
    dlq_actions: tuple[str, ...]  # on `<prefix>-*-dlq.fifo`
    timeout: Duration
    description: str

    @property
    def queue_actions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.lane_actions + self.dlq_actions))


SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "jobs",
        ("GSI1", "GSI2"),
        LANE_CREATE_AND_SEND,
        DLQ_LOOKUP,
        API_TIMEOUT,
        "taskfleet jobs API: submit, list, inspect, cancel, retry",
    ),
    FunctionSpec(
        "clusters",
        (),
        # GET /clusters/<slug>/backlog counts the tickets in the cluster's lanes; DELETE /clusters/<slug> too
        # (a busy cluster is kept unless forced), then deletes them
        ("sqs:GetQueueAttributes", "sqs:DeleteQueue"),
        ("sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:DeleteQueue"),  # a runtime cluster's DLQ
        API_TIMEOUT,
        "taskfleet clusters API and client configuration",
    ),
    FunctionSpec(
        "runner",
        (),
        LANE_CREATE_AND_SEND,
        DLQ_LOOKUP,
        API_TIMEOUT,
        "taskfleet runner hot path: report, claim, extend, lanes",
    ),
    FunctionSpec(
        "automations",
        ("GSI1",),  # deleting with cancel_jobs finds the automation's jobs
        LANE_CREATE_AND_SEND,  # a firing submits a job
        DLQ_LOOKUP,
        API_TIMEOUT,
        "taskfleet automations: API, cron firings (EventBridge Scheduler), S3 object-created events",
    ),
    FunctionSpec(
        "sweeper",
        ("GSI2",),
        (*LANE_CREATE_AND_SEND, "sqs:GetQueueAttributes"),  # redrive and resume; the Backlog metric
        ("sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"),  # drains the DLQs
        SWEEPER_TIMEOUT,
        "taskfleet sweeper: overdue dispatches, dead-lettered tickets, backlog metric",
    ),
    FunctionSpec(
        "connect",
        ("GSI1", "GSI2"),
        # what the jobs and clusters functions do, and the runner's part of the queue protocol for Tilebox SDK
        # runners, which never see SQS: NextTask receives a ticket, hides it for the lease, deletes it when done
        (
            *LANE_CREATE_AND_SEND,
            "sqs:GetQueueAttributes",
            "sqs:DeleteQueue",
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
        ),
        ("sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:CreateQueue", "sqs:DeleteQueue"),
        API_TIMEOUT,
        "taskfleet Connect endpoint for Tilebox SDK clients (API keys): jobs, clusters, task runners",
    ),
)


class OrchestratorFunctions(Construct):
    """Lambda functions (python3.11, arm64) from one locally built bundle, with Powertools settings."""

    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig, state: StateTable) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.config = config
        self.code = lambda_.Code.from_asset(str(build_bundle(tracing=config.tracing)))
        self.lane_arn_pattern = stack.format_arn(
            service="sqs", resource=config.lane_pattern("*") + ".fifo", arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        self.dlq_arn_pattern = stack.format_arn(
            service="sqs", resource=config.dlq_name("*"), arn_format=ArnFormat.NO_RESOURCE_NAME
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        environment = {
            "TASKFLEET_TABLE": state.table.table_name,
            "TASKFLEET_RETENTION_DAYS": str(config.retention_days),
            "TASKFLEET_QUEUE_PREFIX": config.queue_prefix,
            "TASKFLEET_LEASE_SECONDS": str(config.lease_seconds),
            "TASKFLEET_CLUSTERS": ",".join(config.cluster_slugs),
            # One service name for all four functions: the custom metrics (JobsSubmitted, ...) carry the
            # dimension service=<name> whichever function emits them, so the dashboard finds them.
            "POWERTOOLS_SERVICE_NAME": config.name,
            "POWERTOOLS_LOG_LEVEL": config.log_level,
            "POWERTOOLS_METRICS_NAMESPACE": config.metrics_namespace,
        }
        if config.tracing:
            environment["TASKFLEET_TRACING"] = "1"  # the handlers construct Powertools' Tracer
        else:
            environment["POWERTOOLS_TRACE_DISABLED"] = "true"
        for spec in SPECS:
            self.functions[spec.name] = self._function(spec, environment, state)
        self.jobs = self.functions["jobs"]
        self.clusters = self.functions["clusters"]
        self.runner = self.functions["runner"]
        self.sweeper = self.functions["sweeper"]
        self.automations = self.functions["automations"]
        self.connect = self.functions["connect"]

        # Both create clusters: the clusters API, and CreateCluster over Connect. Only the clusters function gives
        # a cluster it creates a runner URL (below); one created over Connect has none, and taskfleet runners of
        # it call the API's runner routes (docs/architecture.md, "Tilebox SDK clients").
        for function in (self.clusters, self.connect):
            function.add_environment("TASKFLEET_MAX_CLUSTERS", str(config.max_clusters))

        # The runners' hot path: SigV4-signed calls straight to the function, no API Gateway charge; one
        # URL per cluster, on the cluster's alias. Nothing here refers to the clusters function, so the
        # runner function, its aliases and URLs come first and the clusters function after them.
        self.runner_aliases: dict[str, lambda_.Alias] = {}
        self.runner_urls: dict[str, lambda_.FunctionUrl] = {}
        if config.runner_function_url:
            for slug in config.cluster_slugs:
                alias = lambda_.Alias(
                    self,
                    f"runner-{slug}",
                    alias_name=alias_name(slug),
                    version=self.runner.latest_version,
                    description=f"taskfleet {config.name}: the runners of cluster '{slug}'",
                )
                self.runner_aliases[slug] = alias
                self.runner_urls[slug] = alias.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
            # GET /clusters/<slug> tells a cluster's runners its URL.
            self.clusters.add_environment("TASKFLEET_RUNNER_FUNCTION", self.runner.function_name)
            self.clusters.add_environment(
                "TASKFLEET_RUNNER_URLS", stack.to_json_string({slug: url.url for slug, url in self.runner_urls.items()})
            )
            self._grant_runtime_runner_urls(self.clusters)

    def runner_alias_arn(self, slug: str) -> str:
        """The ARN of cluster `slug`'s alias of the runner function (`slug` may be a policy variable)."""
        return f"{self.runner.function_arn}:{alias_name(slug)}"

    def _grant_runtime_runner_urls(self, function: lambda_.Function) -> None:
        """A function that creates clusters makes and removes the alias and URL of a cluster created at run time."""
        aliases = self.runner_alias_arn("*")
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RunnerAliases", actions=list(RUNNER_ALIAS_ACTIONS), resources=[self.runner.function_arn]
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(sid="RunnerAliasUrls", actions=list(RUNNER_ALIAS_URL_ACTIONS), resources=[aliases])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                sid="RunnerAliasUrlCreate",
                actions=[RUNNER_ALIAS_URL_CREATE],
                resources=[aliases],
                conditions={"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
            )
        )
        runner_id = Stack.of(self).get_logical_id(typing.cast(CfnElement, self.runner.node.default_child))
        acknowledge(
            function.role or function,
            f"AwsSolutions-IAM5[Resource::<{runner_id}.Arn>:{ALIAS_PREFIX}*]",
            "Clusters created through the API get their runner alias and URL at run time, so no template "
            "names them; the pattern covers the per-cluster aliases of this deployment's runner function "
            "only, and creating a URL is conditioned on AWS_IAM authentication.",
        )

    def _function(self, spec: FunctionSpec, environment: dict[str, str], state: StateTable) -> lambda_.Function:
        config = self.config
        log_group = logs.LogGroup(
            self,
            f"{spec.name}-logs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{spec.name}-role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"taskfleet {spec.name} function: least privilege",
        )
        # Instead of AWSLambdaBasicExecutionRole (logs:CreateLogGroup on *): write to its own group only.
        log_group.grant_write(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Table",
                actions=TABLE_ACTIONS,
                resources=[state.table.table_arn],
            )
        )
        if spec.indexes:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="Indexes",
                    actions=INDEX_ACTIONS,
                    resources=[state.index_arn(name) for name in spec.indexes],
                )
            )
        queue_grants = (
            ("Lanes", "lanes", spec.lane_actions, self.lane_arn_pattern, config.lane_pattern("*") + ".fifo"),
            ("DeadLetterQueues", "DLQs", spec.dlq_actions, self.dlq_arn_pattern, config.dlq_name("*")),
        )
        for sid, what, actions, arn, pattern in queue_grants:
            if not actions:
                continue
            role.add_to_policy(iam.PolicyStatement(sid=sid, actions=list(actions), resources=[arn]))
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:{pattern}]",
                "Lanes (a queue per task identifier in a cluster) and the DLQs of clusters created through "
                "the API are created at run time, so no template names them; the pattern covers this "
                f"deployment's {what} only, and FIFO queues only.",
            )
        function = lambda_.Function(
            self,
            spec.name,
            description=spec.description,
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"{HANDLER_MODULE}.{spec.name}.lambda_handler",
            code=self.code,
            role=role,
            memory_size=config.function_memory_mb if spec.name != "sweeper" else 512,
            timeout=spec.timeout,
            environment=dict(environment),
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE if config.tracing else lambda_.Tracing.DISABLED,
            # None: unreserved (config.py, DEFAULT_RESERVED_CONCURRENCY says why these numbers)
            reserved_concurrent_executions=config.reserved.get(spec.name),
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "The python3.11 runtime is part of taskfleet's contract with its handlers (the bundle is "
            "byte-compiled for 3.11 and its wheels are cp311); moving runtimes is a deliberate upgrade.",
        )
        if config.tracing:
            acknowledge(
                role,
                "AwsSolutions-IAM5[Resource::*]",
                "Tracing is on: X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level "
                "permissions, so CDK grants them on '*'.",
            )
        self.log_groups[spec.name] = log_group
        return function


def _retention_name(days: int) -> str:
    names = {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        120: "FOUR_MONTHS",
        150: "FIVE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
        400: "THIRTEEN_MONTHS",
        545: "EIGHTEEN_MONTHS",
        731: "TWO_YEARS",
        1096: "THREE_YEARS",
        1827: "FIVE_YEARS",
        2192: "SIX_YEARS",
        2557: "SEVEN_YEARS",
        2922: "EIGHT_YEARS",
        3288: "NINE_YEARS",
        3653: "TEN_YEARS",
    }
    return names[days]


def retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[_retention_name(days)]
