"""The HTTP API: every route authorized with IAM (SigV4), each backed by its handler function."""

from __future__ import annotations

import json
import re

import jsii
from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_logs as logs
from constructs import Construct

from .config import DeploymentConfig
from .functions import OrchestratorFunctions, retention
from .nag import acknowledge

GET, POST, DELETE = apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST, apigwv2.HttpMethod.DELETE
PATCH = apigwv2.HttpMethod.PATCH

# (method, path, function) - the contract with functions/taskfleet_functions/handlers.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/jobs", "jobs"),
    ("GET", "/jobs", "jobs"),
    ("GET", "/jobs/{job_id}", "jobs"),
    ("GET", "/jobs/{job_id}/tasks", "jobs"),
    ("POST", "/jobs/{job_id}/cancel", "jobs"),
    ("POST", "/jobs/{job_id}/retry", "jobs"),
    ("POST", "/clusters", "clusters"),
    ("GET", "/clusters", "clusters"),
    ("GET", "/clusters/{slug}", "clusters"),
    ("GET", "/clusters/{slug}/backlog", "clusters"),
    ("PATCH", "/clusters/{slug}", "clusters"),
    ("DELETE", "/clusters/{slug}", "clusters"),
    ("GET", "/config", "clusters"),
    ("POST", "/keys", "clusters"),
    ("GET", "/keys", "clusters"),
    ("DELETE", "/keys/{key_id}", "clusters"),
    ("POST", "/automations", "automations"),
    ("GET", "/automations", "automations"),
    ("GET", "/automations/{automation_id}", "automations"),
    ("DELETE", "/automations/{automation_id}", "automations"),
    # The cluster is in the path, so that IAM binds a runner's credentials to its cluster: execute-api ARNs
    # name the request's actual path (`.../$default/POST/runner/<slug>/next`), see runner_access.py.
    ("POST", "/runner/{slug}/next", "runner"),
    ("POST", "/runner/{slug}/extend", "runner"),
    ("POST", "/runner/{slug}/lanes", "runner"),
    # The routes of runners older than lanes: the function answers 410 and says to upgrade.
    ("POST", "/runner/next", "runner"),
    ("POST", "/runner/extend", "runner"),
)
# The Connect endpoint for unmodified Tilebox SDK clients (handlers/connect.py): no IAM authorizer, since the
# SDK signs nothing; the function checks the caller's API key (bearer token) on every call. The services the
# SDK calls, served or answered "unimplemented", and the OTLP paths its tracer and logger export to.
CONNECT_SERVICES = (
    "JobService",
    "WorkflowsService",
    "TaskService",
    "AutomationService",
    "StorageLocationService",
    "DiagramService",
    "TelemetryService",
    "WorkerService",
)
CONNECT_ROUTES: tuple[tuple[str, str, str], ...] = (
    *(("POST", f"/workflows.v1.{service}/{{method}}", "connect") for service in CONNECT_SERVICES),
    ("POST", "/v1/traces", "connect"),
    ("POST", "/v1/logs", "connect"),
)
STAGE = "$default"
# Per-account burst protection for the whole API (requests/s); runners mostly use their runner URLs.
RATE_LIMIT = 500
BURST_LIMIT = 1000

_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "time": "$context.requestTime",
        "ip": "$context.identity.sourceIp",
        "caller": "$context.identity.userArn",
        "route": "$context.routeKey",
        "status": "$context.status",
        "latencyMs": "$context.responseLatency",
        "integrationStatus": "$context.integrationStatus",
        "integrationError": "$context.integrationErrorMessage",
        "authError": "$context.authorizer.error",
        "bytes": "$context.responseLength",
    }
)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """IAccessLogSettings is an interface in jsii: Python must implement it (a dict is not accepted)."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


class Api(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: DeploymentConfig, functions: OrchestratorFunctions
    ) -> None:
        super().__init__(scope, id)
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=config.name,
            description="taskfleet orchestrator API (IAM auth; API keys on the Connect routes for Tilebox SDK clients)",
            default_authorizer=authorizers.HttpIamAuthorizer(),
            create_default_stage=False,
        )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigwv2.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name=STAGE,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=RATE_LIMIT, burst_limit=BURST_LIMIT),
            access_log_settings=_AccessLogs(
                apigwv2.LogGroupLogDestination(access_logs), apigw.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)
            ),
        )
        self.access_logs = access_logs
        integration_of = {
            name: integrations.HttpLambdaIntegration(f"{name}-integration", fn)
            for name, fn in functions.functions.items()
            if name != "sweeper"
        }
        methods = {"GET": GET, "POST": POST, "PATCH": PATCH, "DELETE": DELETE}
        self.routes: dict[tuple[str, str], apigwv2.HttpRoute] = {}
        for method, path, function in ROUTES:
            (route,) = self.http_api.add_routes(
                path=path, methods=[methods[method]], integration=integration_of[function]
            )
            self.routes[(method, path)] = route
        for method, path, function in CONNECT_ROUTES:
            (route,) = self.http_api.add_routes(
                path=path,
                methods=[methods[method]],
                integration=integration_of[function],
                authorizer=apigwv2.HttpNoneAuthorizer(),
            )
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "A Connect route for Tilebox SDK clients, which sign no request: the connect function "
                "authorizes every call itself with the caller's API key (a hashed bearer token, scoped by "
                "role and cluster, handlers/connect.py), before it reads the body.",
            )
            self.routes[(method, path)] = route
        self.url = self.http_api.api_endpoint

    def execute_api_arn(self, method: str, path: str) -> str:
        """The execute-api ARN of one concrete request (`path` without route placeholders: IAM matches the
        request's actual path, whatever route template serves it). `path` may hold IAM's `*` and policy
        variables (`${aws:PrincipalTag/...}`)."""
        if re.search(r"(?<!\$)\{", path):
            raise ValueError(f"{path}: an execute-api ARN names a concrete path, not a route template")
        return Stack.of(self).format_arn(
            service="execute-api",
            resource=self.http_api.api_id,
            resource_name=f"{STAGE}/{method}{path}",
        )


def route_pattern(path: str) -> str:
    """A route template as an execute-api resource pattern: each `{param}` becomes `*`."""
    return re.sub(r"\{\w+\}", "*", path)
