"""Per-cluster runner URLs (docs/architecture.md, "Leases and the runner's cluster"): on AWS each
cluster's runners call an alias of the runner function (`cluster-<slug>`) through its own function URL,
which their IAM policy names. The runner function refuses a path of another cluster than its alias's;
clusters created at run time get their alias and URL from the clusters function.

moto cannot give an alias a function URL (its Qualifier is not implemented), so the Lambda calls are
checked with botocore's Stubber: a stand-in for AWS, said here."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from taskfleet_functions.dal.runner_urls import LambdaRunnerUrls
from taskfleet_local.api_server import FakeLambdaContext, build_event


def invoke_runner(path: str, body: dict[str, Any], alias: str | None) -> tuple[int, dict[str, Any]]:
    """The runner function as Lambda calls it through a function URL (of `alias`, if given). Imported here,
    once the local stack has configured the process (as the local API server does)."""
    from taskfleet_functions.handlers import runner as runner_handler

    context = FakeLambdaContext("runner")
    if alias:
        context.invoked_function_arn += f":{alias}"
    event = build_event("POST", path, {"content-type": "application/json"}, json.dumps(body))
    response = runner_handler.lambda_handler(event, context)
    return int(response["statusCode"]), json.loads(response["body"])


def test_the_runner_function_refuses_a_path_of_another_cluster_than_its_alias(stack, cluster):
    # Given the runner function invoked through cluster A's alias
    body = {"runner_id": "r", "tasks": [["Unseen", "v0.0"]]}
    # When the path names cluster B, it is refused and nothing is created
    status, answer = invoke_runner("/runner/default/lanes", body, alias=f"cluster-{cluster}")
    assert status == 403 and answer["error"]["code"] == "Forbidden"
    assert "Unseen" not in {lane["name"] for lane in stack.orchestrator.table.lanes("default")}
    # while its own path, or the function without an alias (the local stack, the API routes), is served
    assert invoke_runner(f"/runner/{cluster}/lanes", body, alias=f"cluster-{cluster}")[0] == 200
    assert invoke_runner(f"/runner/{cluster}/lanes", body, alias=None)[0] == 200


def stubbed(client: Any) -> Stubber:
    stub = Stubber(client)
    stub.activate()
    return stub


def test_a_created_cluster_gets_an_alias_and_a_function_url_and_loses_them_when_deleted():
    client = boto3.client("lambda", region_name="us-east-1")
    urls = LambdaRunnerUrls(client, "tf-runner")
    stub = stubbed(client)
    url = "https://abc.lambda-url.us-east-1.on.aws/"
    stub.add_response(
        "create_alias",
        {"AliasArn": "arn:aws:lambda:us-east-1:1:function:tf-runner:cluster-gpu-1a2b3c", "Name": "cluster-gpu-1a2b3c"},
        {
            "FunctionName": "tf-runner",
            "Name": "cluster-gpu-1a2b3c",
            "FunctionVersion": "$LATEST",
            "Description": "runners of cluster gpu-1a2b3c",
        },
    )
    stub.add_response(
        "create_function_url_config",
        {"FunctionUrl": url, "FunctionArn": "arn", "AuthType": "AWS_IAM", "CreationTime": "now"},
        {"FunctionName": "tf-runner", "Qualifier": "cluster-gpu-1a2b3c", "AuthType": "AWS_IAM"},
    )
    assert urls.ensure("gpu-1a2b3c") == url
    # an alias and URL that exist already (a retried create) are reused
    stub.add_client_error("create_alias", "ResourceConflictException")
    stub.add_client_error("create_function_url_config", "ResourceConflictException")
    stub.add_response(
        "get_function_url_config",
        {"FunctionUrl": url, "FunctionArn": "arn", "AuthType": "AWS_IAM", "CreationTime": "t", "LastModifiedTime": "t"},
        {"FunctionName": "tf-runner", "Qualifier": "cluster-gpu-1a2b3c"},
    )
    assert urls.ensure("gpu-1a2b3c") == url
    stub.add_response(
        "delete_function_url_config", {}, {"FunctionName": "tf-runner", "Qualifier": "cluster-gpu-1a2b3c"}
    )
    stub.add_response("delete_alias", {}, {"FunctionName": "tf-runner", "Name": "cluster-gpu-1a2b3c"})
    urls.delete("gpu-1a2b3c")
    stub.assert_no_pending_responses()


class RecordingUrls:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def ensure(self, slug: str) -> str:
        self.calls.append(("ensure", slug))
        return f"https://{slug}.lambda-url.example/"

    def delete(self, slug: str) -> None:
        self.calls.append(("delete", slug))


@pytest.fixture
def recording(stack: Any) -> Any:
    clusters = stack.orchestrator.clusters
    saved, clusters.runner_urls = clusters.runner_urls, RecordingUrls()
    yield clusters.runner_urls
    clusters.runner_urls = saved


def test_clusters_created_at_run_time_carry_their_runner_url(client, recording):
    created = client.clusters().create("bound")
    view = client.transport.request("GET", f"/clusters/{created.slug}")
    assert view["runner_url"] == f"https://{created.slug}.lambda-url.example/"
    client.clusters().delete(created.slug)
    assert recording.calls == [("ensure", created.slug), ("delete", created.slug)]
