"""What a runner of one cluster may do, as one IAM managed policy per cluster.

ECS runners get it through their task role; on-prem runners through a role they assume or a user whose
access key you create (docs/deploy.md). A runner needs:
- the API: GET /config, GET /clusters/<its slug>, POST /runner/next, POST /runner/extend;
- the runner function URL (the hot path, the same two runner routes without API Gateway):
  lambda:InvokeFunctionUrl and lambda:InvokeFunction (both are required for function URLs created since
  October 2025), each conditioned on the function-URL path;
- its cluster's queue: ReceiveMessage, DeleteMessage, ChangeMessageVisibility (the ticket protocol).
Nothing else: no table, no other cluster's queue, no job or cluster management.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from .api import Api
from .config import DeploymentConfig, ExternalCompute
from .functions import OrchestratorFunctions
from .queues import ClusterQueues

RUNNER_QUEUE_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]


def runner_api_requests(slug: str) -> list[tuple[str, str]]:
    return [("GET", "/config"), ("GET", f"/clusters/{slug}"), ("POST", "/runner/next"), ("POST", "/runner/extend")]


class RunnerAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: DeploymentConfig,
        api: Api,
        functions: OrchestratorFunctions,
        queues: ClusterQueues,
    ) -> None:
        super().__init__(scope, id)
        self.policies: dict[str, iam.ManagedPolicy] = {}
        self.roles: dict[str, iam.Role] = {}
        self.users: dict[str, iam.User] = {}
        runner_fn = functions.runner.function_arn
        for cluster in config.clusters:
            slug = cluster.slug
            policy = iam.ManagedPolicy(
                self,
                f"{slug}-policy",
                description=f"taskfleet {config.name}: a task runner of cluster '{slug}'",
                statements=[
                    iam.PolicyStatement(
                        sid="Api",
                        actions=["execute-api:Invoke"],
                        resources=[api.execute_api_arn(m, p) for m, p in runner_api_requests(slug)],
                    ),
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
                    iam.PolicyStatement(
                        sid="ClusterQueue",
                        actions=RUNNER_QUEUE_ACTIONS,
                        resources=[queues.by_slug[slug].queue.queue_arn],
                    ),
                ],
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
