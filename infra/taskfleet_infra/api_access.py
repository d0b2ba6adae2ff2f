"""Who may call which API route: one IAM managed policy per kind of API user, so that nobody needs
`execute-api:Invoke` on the whole API (`.../$default/*`).

| policy | for | routes |
| --- | --- | --- |
| reader | dashboards, people who look | every GET route but /keys: jobs, a job, its tasks, clusters, config |
| submitter | scripts and services that run jobs | the reader's routes and POST /jobs |
| admin | operators | the submitter's, POST /jobs/{id}/cancel and /retry, POST, PATCH, DELETE /clusters, /keys |

The bearer API keys' routes (POST and GET /keys, DELETE /keys/{key_id}) are the admin's alone: which keys
exist, with which roles and clusters, is no reader's business (it tells whom to attack).

None of them reaches a runner route (`/runner/...`): runners have their cluster's policy (runner_access.py).
A route template's `{param}` is `*` in the policy (IAM matches the request's actual path, and `*` also
spans `/`, which is why no wildcard here follows a POST or DELETE that a role must not have: `GET/jobs/*`
matches `GET/jobs/<id>/tasks` too, both reads).
"""

from __future__ import annotations

import typing

from aws_cdk import CfnElement, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from .api import ROUTES, STAGE, Api, route_pattern
from .config import DeploymentConfig
from .nag import acknowledge

Route = tuple[str, str]

RUNNER_PREFIX = "/runner/"
ADMIN_READS: frozenset[Route] = frozenset({("GET", "/keys")})  # GET routes that are not every reader's
READER: frozenset[Route] = frozenset(
    (m, p) for m, p, _ in ROUTES if m == "GET" and not p.startswith(RUNNER_PREFIX) and (m, p) not in ADMIN_READS
)
SUBMITTER: frozenset[Route] = READER | {("POST", "/jobs")}
ADMIN: frozenset[Route] = SUBMITTER | {
    ("POST", "/jobs/{job_id}/cancel"),
    ("POST", "/jobs/{job_id}/retry"),
    ("POST", "/clusters"),
    ("PATCH", "/clusters/{slug}"),
    ("DELETE", "/clusters/{slug}"),
    ("POST", "/automations"),
    ("DELETE", "/automations/{automation_id}"),
    ("POST", "/keys"),
    ("DELETE", "/keys/{key_id}"),
    *ADMIN_READS,
}
ROLES: dict[str, tuple[frozenset[Route], str]] = {
    "reader": (READER, "read jobs, tasks, clusters and the client configuration (every GET route but /keys)"),
    "submitter": (SUBMITTER, "submit jobs (POST /jobs) and read them"),
    "admin": (
        ADMIN,
        "submit, cancel and retry jobs, create, update and delete clusters and automations, create, list and"
        " revoke API keys, read everything",
    ),
}

if {(m, p) for m, p, _ in ROUTES if not p.startswith(RUNNER_PREFIX)} != ADMIN:
    raise RuntimeError("api_access: the roles must name exactly the API's non-runner routes (a new route?)")


class ApiAccess(Construct):
    """`policies`: the managed policy of each role (reader, submitter, admin)."""

    def __init__(self, scope: Construct, id: str, *, config: DeploymentConfig, api: Api) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        api_id = stack.get_logical_id(typing.cast(CfnElement, api.http_api.node.default_child))
        self.policies: dict[str, iam.ManagedPolicy] = {}
        for role, (routes, what) in ROLES.items():
            ordered = sorted(routes, key=lambda r: (r[1], r[0]))
            policy = iam.ManagedPolicy(
                self,
                f"{role}-policy",
                description=f"taskfleet {config.name}: API {role}: {what}",
                statements=[
                    iam.PolicyStatement(
                        sid="Api",
                        actions=["execute-api:Invoke"],
                        resources=[api.execute_api_arn(m, route_pattern(p)) for m, p in ordered],
                    )
                ],
            )
            for method, path in ordered:
                pattern = route_pattern(path)
                if "*" not in pattern:
                    continue
                acknowledge(
                    policy,
                    "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
                    f"<AWS::AccountId>:<{api_id}>/{STAGE}/{method}{pattern}]",
                    f"The route {method} {path} takes an identifier in its path, which IAM can only match with "
                    "a wildcard; the pattern covers that one route of this API (no runner route).",
                )
            self.policies[role] = policy
