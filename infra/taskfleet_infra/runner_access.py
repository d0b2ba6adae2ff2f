"""What a runner of one cluster may do, as one IAM managed policy per declared cluster, and one for the
runners of clusters created at run time, bound to their cluster by a principal tag.

ECS runners get their cluster's policy through their task role; on-prem runners through a role they
assume or a user whose access key you create (docs/deploy.md). A runner needs:
- the API: GET /config, GET /clusters/<its slug>, POST /runner/<its slug>/next, .../extend, .../lanes
  (the functions take the cluster from the path and refuse a task of another cluster, so these ARNs
  bind the credentials to the cluster);
- its cluster's runner URL (the hot path, the same runner routes without API Gateway), a function URL on
  the alias `cluster-<slug>` of the runner function: lambda:InvokeFunctionUrl (condition
  lambda:FunctionUrlAuthType=AWS_IAM) and lambda:InvokeFunction (condition
  lambda:InvokedViaFunctionUrl=true; both are required for function URLs created since October 2025) on
  that alias's ARN only, never the unqualified function or another alias. The function refuses a path of
  another cluster than its alias's, so the URL is bound to the cluster as the routes are. Without
  `runner_function_url` there is no URL and no Lambda grant;
- its cluster's lanes, `<prefix>-<slug>--*` (no other cluster's lanes, no DLQ: slugs contain no "--"):
  ReceiveMessage, DeleteMessage, ChangeMessageVisibility (the ticket protocol; the batch calls need
  the same actions) and GetQueueAttributes (run_all's last look at the lanes' counts).
Nothing else: no table, no other cluster's lanes, no DLQ, no job or cluster management.

Clusters created at run time (`POST /clusters`) are unknown at synthesis: `runtime_policy` grants the same
with the slug taken from the caller's principal tag `taskfleet-cluster` (`${aws:PrincipalTag/...}` in every
resource, and a condition that the tag is present). The tag is what AWS asserts about the principal: tag
the runner's role or user, and let no runner pass session tags (no sts:TagSession in the trust policy of
its role), since a session tag would override the role's.
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


# The principal tag that names a run-time cluster's runners' cluster, and the policy variable that reads it.
CLUSTER_TAG = "taskfleet-cluster"
TAG_VARIABLE = f"${{aws:PrincipalTag/{CLUSTER_TAG}}}"
# A principal without the tag matches nothing (a missing policy variable matches no resource); the
# condition says so explicitly.
TAG_PRESENT = {"Null": {f"aws:PrincipalTag/{CLUSTER_TAG}": "false"}}


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
        for cluster in config.clusters:
            slug = cluster.slug
            lanes = config.lane_pattern(slug)
            statements = self._statements(config, api, functions, slug)
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
        self.runtime_policy = self._runtime_policy(config, api, functions)

    def _statements(
        self,
        config: DeploymentConfig,
        api: Api,
        functions: OrchestratorFunctions,
        slug: str,
        conditions: dict[str, dict[str, str]] | None = None,
    ) -> list[iam.PolicyStatement]:
        """A runner's grants for cluster `slug` (a slug, or the principal-tag policy variable)."""

        def with_conditions(extra: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]] | None:
            merged = {**(conditions or {}), **(extra or {})}
            return merged or None

        statements = [
            iam.PolicyStatement(
                sid="Api",
                actions=["execute-api:Invoke"],
                resources=[api.execute_api_arn(m, p) for m, p in runner_api_requests(slug)],
                conditions=with_conditions(),
            ),
            iam.PolicyStatement(
                sid="ClusterLanes",
                actions=RUNNER_QUEUE_ACTIONS,
                resources=[
                    Stack.of(self).format_arn(
                        service="sqs", resource=config.lane_pattern(slug), arn_format=ArnFormat.NO_RESOURCE_NAME
                    )
                ],
                conditions=with_conditions(),
            ),
        ]
        if functions.runner_urls:
            # The cluster's alias only: the qualified ARN `<runner>:cluster-<slug>` matches requests through
            # that alias and no other (an unqualified ARN would match the function itself, `:*` every alias).
            alias = functions.runner_alias_arn(slug)
            statements += [
                iam.PolicyStatement(
                    sid="RunnerUrl",
                    actions=["lambda:InvokeFunctionUrl"],
                    resources=[alias],
                    conditions=with_conditions({"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}),
                ),
                iam.PolicyStatement(
                    sid="RunnerFunctionViaUrl",
                    actions=["lambda:InvokeFunction"],
                    resources=[alias],
                    conditions=with_conditions({"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}),
                ),
            ]
        return statements

    def _runtime_policy(
        self, config: DeploymentConfig, api: Api, functions: OrchestratorFunctions
    ) -> iam.ManagedPolicy:
        policy = iam.ManagedPolicy(
            self,
            "runtime-cluster-policy",
            description=(
                f"taskfleet {config.name}: a task runner of the cluster its principal tag {CLUSTER_TAG} names "
                "(clusters created at run time)"
            ),
            statements=self._statements(config, api, functions, TAG_VARIABLE, TAG_PRESENT),
        )
        acknowledge(
            policy,
            # cdk-nag writes the policy variable ${aws:PrincipalTag/...} as <aws:PrincipalTag/...>
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:"
            f"{config.lane_pattern(f'<aws:PrincipalTag/{CLUSTER_TAG}>')}]",
            "The lanes of a cluster created at run time are themselves created at run time; the pattern "
            f"matches the lanes of the one cluster the caller's principal tag {CLUSTER_TAG} names, and no "
            "dead-letter queue or other cluster's lanes, since slugs cannot contain '--'.",
        )
        return policy


def _principal(value: str) -> iam.IPrincipal:
    if value.isdigit() and len(value) == 12:
        return iam.AccountPrincipal(value)
    if value.startswith("arn:"):
        return iam.ArnPrincipal(value)
    raise ValueError(f"onprem.trusted_principals: {value!r} is neither an account id nor an ARN")
