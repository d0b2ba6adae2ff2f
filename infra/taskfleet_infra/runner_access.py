"""What a runner of one cluster may do, as one IAM managed policy per cluster.

ECS runners get it through their task role; on-prem runners through a role they assume or a user whose
access key you create (docs/deploy.md). A runner needs:
- the API: GET /config, GET /clusters/<its slug>, POST /runner/<its slug>/next, .../extend, .../lanes
  (the functions take the cluster from the path and refuse a task of another cluster, so these ARNs
  bind the credentials to the cluster);
- the runner function URL (the hot path, the same runner routes without API Gateway):
  lambda:InvokeFunctionUrl and lambda:InvokeFunction (both are required for function URLs created since
  October 2025); IAM cannot condition them on the URL's path, so they are not bound to the cluster
  (`runner_function_url: false` in the configuration removes the URL; docs/deploy.md);
- its cluster's lanes, `<prefix>-<slug>--*` (no other cluster's lanes, no DLQ: slugs contain no "--"):
  ReceiveMessage, DeleteMessage, ChangeMessageVisibility (the ticket protocol; the batch calls need
  the same actions) and GetQueueAttributes (run_all's last look at the lanes' counts).
Nothing else: no table, no other cluster's lanes, no DLQ, no job or cluster management.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from .api import Api
from .config import DeploymentConfig, ExternalCompute
from .functions import OrchestratorFunctions
from .nag import acknowledge

RUNNER_QUEUE_ACTIONS = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
]


def runner_api_requests(slug: str) -> list[tuple[str, str]]:
    return [
        ("GET", "/config"),
        ("GET", f"/clusters/{slug}"),
        ("POST", f"/runner/{slug}/next"),
        ("POST", f"/runner/{slug}/extend"),
        ("POST", f"/runner/{slug}/lanes"),
    ]


class RunnerAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        api: Api,
        functions: OrchestratorFunctions,
    ) -> None:
        super().__init__(scope, id)
        self.policies: dict[str, iam.ManagedPolicy] = {}
        self.roles: dict[str, iam.Role] = {}
        self.users: dict[str, iam.User] = {}
        runner_fn = functions.runner.function_arn
        for cluster in config.clusters:
            slug = cluster.slug
            lanes = config.lane_pattern(slug)
            statements = [
                iam.PolicyStatement(
                    sid="Api",
                    actions=["execute-api:Invoke"],
                    resources=[api.execute_api_arn(m, p) for m, p in runner_api_requests(slug)],
                ),
                iam.PolicyStatement(
                    sid="ClusterLanes",
                    actions=RUNNER_QUEUE_ACTIONS,
                    resources=[
                        Stack.of(self).format_arn(service="sqs", resource=lanes, arn_format=ArnFormat.NO_RESOURCE_NAME)
                    ],
                ),
            ]
            if functions.runner_url is not None:
                # The function URL is not yet bound to the cluster: these two admit any /runner/<slug>/ path.
                statements += [
                    iam.PolicyStatement(
                        sid="RunnerFunctionUrl",
                        actions=["lambda:InvokeFunctionUrl"],
                        resources=[runner_fn],
                        conditions={"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}},
                    ),
                    iam.PolicyStatement(
                        sid="RunnerFunctionViaUrl",
                        actions=["lambda:InvokeFunction"],
                        resources=[runner_fn],
                        conditions={"Bool": {"lambda:InvokedViaFunctionUrl": "true"}},
                    ),
                ]
            policy = iam.ManagedPolicy(
                self,
                f"{slug}-policy",
                description=f"taskfleet {config.name}: a task runner of cluster '{slug}'",
                statements=statements,
            )
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:{lanes}]",
                f"The lanes of cluster '{slug}' (a queue per task identifier) are created at run time, so no "
                "template can name them; the pattern matches this cluster's lanes only: no other cluster's "
                "lanes and no dead-letter queue, since slugs cannot contain '--'.",
            )
            self.policies[slug] = policy
            if not isinstance(cluster.compute, ExternalCompute):
                continue
            if config.onprem.trusted_principals:
                role = iam.Role(
                    self,
                    f"{slug}-onprem-role",
                    description=f"taskfleet {config.name}: on-prem runners of cluster '{slug}'",
                    assumed_by=iam.CompositePrincipal(*[_principal(p) for p in config.onprem.trusted_principals]),
                    managed_policies=[policy],
                    max_session_duration=Duration.hours(12),
                )
                self.roles[slug] = role
            if config.onprem.create_users:
                user = iam.User(self, f"{slug}-onprem-user", managed_policies=[policy])
                self.users[slug] = user


def _principal(value: str) -> iam.IPrincipal:
    if value.isdigit() and len(value) == 12:
        return iam.AccountPrincipal(value)
    if value.startswith("arn:"):
        return iam.ArnPrincipal(value)
    raise ValueError(f"onprem.trusted_principals: {value!r} is neither an account id nor an ARN")
