"""Least privilege: one role per function with grants scoped to the table, the indexes, and the lanes and
DLQs it needs (and for the clusters function the runner aliases and URLs of clusters created at run time);
one managed policy per cluster for its runners (ECS task roles, on-prem roles and users). Where possible the
grants are checked against the code that uses them."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import pytest
from taskfleet_functions.orchestrator.clusters import lane_key
from taskfleet_functions.settings import Settings
from taskfleet_infra.functions import (
    RUNNER_ALIAS_ACTIONS,
    RUNNER_ALIAS_URL_ACTIONS,
    RUNNER_ALIAS_URL_CREATE,
    SPECS,
    TABLE_ACTIONS,
)
from taskfleet_infra.runner_access import RUNNER_QUEUE_ACTIONS, runner_api_requests

from .conftest import (
    ROOT,
    Synth,
    as_list,
    function_by_handler,
    logical_id,
    render,
    role_statements,
    runner_alias_arn,
    runner_policies,
)

_CREATE_LANE_AND_SEND = {"sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:TagQueue", "sqs:SendMessage"}
EXPECTED = {
    # function: (indexes it may query, actions on lanes, actions on DLQs) - the contract with the core engine
    "jobs": ({"GSI1", "GSI2"}, _CREATE_LANE_AND_SEND, {"sqs:GetQueueUrl", "sqs:GetQueueAttributes"}),
    "clusters": (
        set(),
        {"sqs:GetQueueAttributes", "sqs:DeleteQueue"},
        {"sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:DeleteQueue"},
    ),
    "runner": (set(), _CREATE_LANE_AND_SEND, {"sqs:GetQueueUrl", "sqs:GetQueueAttributes"}),
    "sweeper": (
        {"GSI2"},
        _CREATE_LANE_AND_SEND | {"sqs:GetQueueAttributes"},
        {"sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"},
    ),
    # Tilebox SDK clients: jobs and clusters, and the runner's part of the queue protocol (receive, hide, delete)
    "connect": (
        {"GSI1", "GSI2"},
        _CREATE_LANE_AND_SEND
        | {
            "sqs:GetQueueAttributes",
            "sqs:DeleteQueue",
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
        },
        {"sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:CreateQueue", "sqs:DeleteQueue"},
    ),
}
SQS_ARN = "arn:<AWS::Partition>:sqs:<AWS::Region>:<AWS::AccountId>:"


def _function_role(s: Synth, name: str) -> str:
    _, function = function_by_handler(s, f"taskfleet_functions.handlers.{name}.lambda_handler")
    role = logical_id(function["Properties"]["Role"])
    assert role
    return role


def _grants(s: Synth, role: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, rendered resource, condition) for every Allow in the role."""
    out = []
    for st in role_statements(s, role):
        assert st["Effect"] == "Allow"
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                out.append((action, render(resource), st.get("Condition", {})))
    return out


def test_each_function_has_its_own_role_assumed_by_lambda_only(synth: Synth) -> None:
    roles = {name: _function_role(synth, name) for name in EXPECTED}
    assert len(set(roles.values())) == len(roles)
    for role in roles.values():
        props = synth.resources[role]["Properties"]
        (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert "ManagedPolicyArns" not in props  # no AWSLambdaBasicExecutionRole (logs:CreateLogGroup on *)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_function_grants_are_scoped_to_the_table_its_indexes_the_lanes_and_the_dlqs(synth: Synth, name: str) -> None:
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    indexes, lane_actions, dlq_actions = EXPECTED[name]
    grants = _grants(synth, _function_role(synth, name))
    table_arn = f"<{table_id}.Arn>"
    prefix = synth.config.queue_prefix
    lanes, dlqs = f"{SQS_ARN}{prefix}-*--*.fifo", f"{SQS_ARN}{prefix}-*-dlq.fifo"
    seen_indexes: set[str] = set()
    seen_queue_actions: dict[str, set[str]] = {lanes: set(), dlqs: set()}
    seen_lambda: set[tuple[str, str]] = set()
    for action, resource, condition in grants:
        assert "*" not in action, action
        service = action.split(":")[0]
        if service == "dynamodb":
            if resource == table_arn:
                assert action in TABLE_ACTIONS
            else:
                index = re.fullmatch(re.escape(table_arn) + r"/index/(\w+)", resource)
                assert index, resource
                assert action == "dynamodb:Query"
                seen_indexes.add(index.group(1))
        elif service == "sqs":
            assert resource in seen_queue_actions, resource
            seen_queue_actions[resource].add(action)
        elif service == "logs":
            group = _function_log_group(synth, name)
            assert resource == f"<{group}.Arn>", resource
            assert action in ("logs:CreateLogStream", "logs:PutLogEvents")
        elif service == "xray":
            assert synth.config.tracing
        elif service == "lambda":
            seen_lambda.add((action, resource))
            if action == RUNNER_ALIAS_URL_CREATE:  # never a public URL
                assert condition == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
        else:
            pytest.fail(f"{name}: unexpected grant {action} on {resource}")
    assert seen_indexes == indexes
    assert seen_queue_actions == {lanes: lane_actions, dlqs: dlq_actions}
    assert seen_lambda == (_runner_url_management(synth) if name == "clusters" else set())


def _runner_url_management(s: Synth) -> set[tuple[str, str]]:
    """What the clusters function may do to the runner function: create and delete aliases (IAM matches
    these on the unqualified function ARN), and create, read and delete the URLs of `cluster-*` aliases
    (matched on the qualified alias ARN)."""
    runner_fn, _ = function_by_handler(s, "taskfleet_functions.handlers.runner.lambda_handler")
    aliases = runner_alias_arn(s, "*")
    return {(a, f"<{runner_fn}.Arn>") for a in RUNNER_ALIAS_ACTIONS} | {
        (a, aliases) for a in (*RUNNER_ALIAS_URL_ACTIONS, RUNNER_ALIAS_URL_CREATE)
    }


def test_the_lambda_calls_of_the_runner_urls_module_are_exactly_what_the_clusters_function_is_granted() -> None:
    used = {
        _iam_action("lambda", m)
        for m in _client_methods("functions/taskfleet_functions/dal/runner_urls.py", "self.client")
    } - {"lambda:Exceptions"}
    assert used == {*RUNNER_ALIAS_ACTIONS, *RUNNER_ALIAS_URL_ACTIONS, RUNNER_ALIAS_URL_CREATE}


def test_only_the_clusters_function_may_touch_the_runner_function(synth: Synth) -> None:
    """No function but the clusters function has any Lambda grant: the runner function in particular cannot
    make itself a URL, and nothing may invoke it but its runners (through their aliases) and the API."""
    for name in ("jobs", "runner", "sweeper"):
        grants = _grants(synth, _function_role(synth, name))
        assert not [g for g in grants if g[0].startswith("lambda:")], name


def test_the_lane_and_dlq_patterns_of_the_functions_never_overlap(synth: Synth) -> None:
    """A lane grant (`<prefix>-*--*.fifo`) never reaches a DLQ and a DLQ grant never a lane: neither prefix
    nor slug contains "--", and a lane's key is hex."""
    prefix = synth.config.queue_prefix
    settings = Settings(table_name="unused", queue_prefix=prefix)
    key = lane_key("taskfleet.examples.demo:MakeTile", "2.1")
    lanes, dlqs = f"{prefix}-*--*.fifo", f"{prefix}-*-dlq.fifo"
    for slug in (*synth.config.cluster_slugs, "runtime-made-9f8e7d"):
        lane, dlq = settings.lane_name(slug, key), settings.dlq_name(slug)
        assert fnmatch.fnmatchcase(lane, lanes) and not fnmatch.fnmatchcase(lane, dlqs)
        assert fnmatch.fnmatchcase(dlq, dlqs) and not fnmatch.fnmatchcase(dlq, lanes)


def _function_log_group(s: Synth, name: str) -> str:
    _, function = function_by_handler(s, f"taskfleet_functions.handlers.{name}.lambda_handler")
    group = logical_id(function["Properties"]["LoggingConfig"]["LogGroup"])
    assert group
    return group


def _client_methods(path: str, receiver: str) -> set[str]:
    source = (ROOT / path).read_text()
    return set(re.findall(re.escape(receiver) + r"\.([a-z_]+)\(", source))


def _iam_action(service: str, method: str) -> str:
    method = {
        "send_message_batch": "send_message",
        "delete_message_batch": "delete_message",
        "change_message_visibility_batch": "change_message_visibility",
    }.get(method, method)
    return f"{service}:" + "".join(part.title() for part in method.split("_"))


def test_the_dynamodb_calls_of_the_data_layer_are_all_granted() -> None:
    used = {
        _iam_action("dynamodb", m)
        for m in _client_methods("functions/taskfleet_functions/dal/dynamo.py", "self.client")
    }
    used -= {"dynamodb:Exceptions"}
    assert used, "found no DynamoDB calls: did dal/dynamo.py change shape?"
    assert used <= set(TABLE_ACTIONS), used - set(TABLE_ACTIONS)


def test_the_sqs_calls_of_the_data_layer_are_all_granted_to_some_function() -> None:
    used = {
        _iam_action("sqs", m) for m in _client_methods("functions/taskfleet_functions/dal/queues.py", "self.client")
    } - {"sqs:Exceptions"}
    granted = {a for spec in SPECS for a in spec.queue_actions}
    assert used, "found no SQS calls: did dal/queues.py change shape?"
    assert used <= granted, used - granted


def test_the_sqs_calls_of_the_runner_process_are_exactly_what_its_policy_grants() -> None:
    used = set()
    for path in sorted((ROOT / "runner" / "taskfleet_runner").glob("*.py")):
        if path.name == "aws_faults.py":  # the reliability tests' fault injection wraps the client
            continue
        source = path.read_text()
        used |= {_iam_action("sqs", m) for m in re.findall(r"\b(?:self\.)?_?sqs\.([a-z_]+)\(", source)}
    assert used == set(RUNNER_QUEUE_ACTIONS)


def test_the_api_requests_of_the_runner_process_are_exactly_what_its_policy_grants() -> None:
    source = (ROOT / "runner/taskfleet_runner/runner.py").read_text()
    found = re.findall(r"request\(\s*\"(GET|POST)\",\s*f?\"(/[^\"]+)\"", source)
    used = {(method, path.replace("{self.slug}", "SLUG")) for method, path in found}
    assert used == set(runner_api_requests("SLUG"))


def test_each_cluster_has_a_runner_policy_scoped_to_its_lanes_routes_and_alias(synth: Synth) -> None:
    policies = {slug: props for slug, (_, props) in runner_policies(synth).items()}
    assert set(policies) == set(synth.config.cluster_slugs)
    (api_id,) = synth.of_type("AWS::ApiGatewayV2::Api")
    for slug, policy in policies.items():
        sts = {st["Sid"]: st for st in policy["PolicyDocument"]["Statement"]}
        # (the job cache's two statements: tests/infra/test_job_cache.py)
        assert set(sts) == {
            "Api",
            "RunnerUrl",
            "RunnerFunctionViaUrl",
            "ClusterLanes",
            "JobCacheObjects",
            "JobCacheList",
        }
        api = sts["Api"]
        assert api["Action"] == "execute-api:Invoke"
        requests = sorted(render(r).split(f"<{api_id}>/", 1)[1] for r in as_list(api["Resource"]))
        assert requests == sorted(f"$default/{m}{p}" for m, p in runner_api_requests(slug))
        assert sts["RunnerUrl"]["Action"] == "lambda:InvokeFunctionUrl"
        assert sts["RunnerUrl"]["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}
        assert sts["RunnerFunctionViaUrl"]["Action"] == "lambda:InvokeFunction"
        assert sts["RunnerFunctionViaUrl"]["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}
        for sid in ("RunnerUrl", "RunnerFunctionViaUrl"):
            # the cluster's alias, qualified: never the unqualified function, `:*` or another alias
            assert render(sts[sid]["Resource"]) == runner_alias_arn(synth, slug)
        lanes = sts["ClusterLanes"]
        assert sorted(lanes["Action"]) == sorted(RUNNER_QUEUE_ACTIONS)
        assert render(lanes["Resource"]) == f"{SQS_ARN}{synth.config.queue_prefix}-{slug}--*"


def test_ecs_task_roles_get_their_cluster_policy_and_task_protection_only(synth: Synth) -> None:
    policies = {slug: k for slug, (k, _) in runner_policies(synth).items()}
    task_roles = {
        k: r
        for k, r in synth.of_type("AWS::IAM::Role").items()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "ecs-tasks.amazonaws.com"}
        and "ManagedPolicyArns" in r["Properties"]
    }
    ecs_slugs = [c.slug for c in synth.config.clusters if c.runs_on_ecs]
    assert len(task_roles) == len(ecs_slugs)
    for role_id, role in task_roles.items():
        slug = role["Properties"]["Description"].split("'")[1]
        assert [logical_id(a) for a in role["Properties"]["ManagedPolicyArns"]] == [policies[slug]]
        own = [
            st
            for p in synth.of_type("AWS::IAM::Policy").values()
            if role_id in [logical_id(r) for r in p["Properties"]["Roles"]]
            for st in p["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert [sorted(as_list(st["Action"])) for st in own] == [["ecs:GetTaskProtection", "ecs:UpdateTaskProtection"]]
        assert render(own[0]["Resource"]).endswith("/*") and ":task/<" in render(own[0]["Resource"])


def test_onprem_role_and_user_exist_only_for_external_clusters_and_no_key_is_in_the_template(
    full_synth: Synth, cli_synth: Synth
) -> None:
    policies = {slug: k for slug, (k, _) in runner_policies(full_synth).items()}
    onprem_roles = [
        r for r in full_synth.of_type("AWS::IAM::Role").values() if "on-prem" in r["Properties"].get("Description", "")
    ]
    (role,) = onprem_roles
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert "123456789012" in render(trust["Principal"]["AWS"])
    assert [logical_id(a) for a in role["Properties"]["ManagedPolicyArns"]] == [policies["lab"]]
    (user,) = full_synth.of_type("AWS::IAM::User").values()
    assert [logical_id(a) for a in user["Properties"]["ManagedPolicyArns"]] == [policies["lab"]]
    for s in (full_synth, cli_synth):
        assert not s.of_type("AWS::IAM::AccessKey"), "access keys are created by hand, never in a template"
    assert not cli_synth.of_type("AWS::IAM::User")  # the repository config asks for none
