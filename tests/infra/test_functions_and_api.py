"""The HTTP API (IAM on every route, each route on its handler), the functions (runtime, architecture,
Powertools environment, retention, reserved concurrency), the per-cluster runner URLs and the sweeper
schedule."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from taskfleet_functions.dal.runner_urls import alias_name
from taskfleet_infra.api import CONNECT_ROUTES, ROUTES

from .conftest import ROOT, Synth, as_list, function_by_handler, logical_id, ref_id, render

HANDLERS = {
    name: f"taskfleet_functions.handlers.{name}.lambda_handler"
    for name in ("jobs", "clusters", "runner", "sweeper", "automations", "connect")
}

# The routes each handler module declares (`@app.get("/jobs/<job_id>")`), read from the source.
_ROUTE_DECORATOR = re.compile(r"@app\.(get|post|put|delete|patch)\(\"([^\"]+)\"\)")


def _declared_routes() -> set[tuple[str, str, str]]:
    found = set()
    for name in ("jobs", "clusters", "runner", "automations"):
        source = (ROOT / "functions" / "taskfleet_functions" / "handlers" / f"{name}.py").read_text()
        for method, path in _ROUTE_DECORATOR.findall(source):
            found.add((method.upper(), re.sub(r"<(\w+)>", r"{\1}", path), name))
    return found


def _routes(s: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for route in s.of_type("AWS::ApiGatewayV2::Route").values():
        method, path = route["Properties"]["RouteKey"].split(" ", 1)
        found[(method, path)] = route["Properties"]
    return found


def _function_of_route(s: Synth, route: dict[str, Any]) -> dict[str, Any]:
    integration_id = ref_id(route["Target"]["Fn::Join"][1][1])
    uri = s.resources[integration_id]["Properties"]["IntegrationUri"]
    return s.resources[ref_id(uri)]


def test_the_api_has_exactly_the_contract_routes(synth: Synth) -> None:
    assert set(_routes(synth)) == {(m, p) for m, p, _ in ROUTES + CONNECT_ROUTES}


def test_only_the_connect_routes_go_without_iam_and_they_reach_the_connect_function(synth: Synth) -> None:
    """The Connect routes check the caller's API key in the function (the Tilebox SDK signs nothing); every
    other route keeps API Gateway's IAM authorizer."""
    connect = {(m, p) for m, p, _ in CONNECT_ROUTES}
    for key, route in _routes(synth).items():
        if key in connect:
            assert route.get("AuthorizationType", "NONE") == "NONE", key
            assert _function_of_route(synth, route)["Properties"]["Handler"] == HANDLERS["connect"], key
        else:
            assert route["AuthorizationType"] == "AWS_IAM", key


def test_the_contract_routes_are_the_routes_the_handlers_declare() -> None:
    """infra's route table and the handler modules' own decorators cannot drift apart."""
    assert _declared_routes() == set(ROUTES)


def test_runner_routes_name_the_cluster_in_the_path(synth: Synth) -> None:
    """IAM binds a runner's credentials to its cluster by the request path (execute-api ARNs name it), so
    every current runner route carries the slug; the old ones stay only to answer 410 (upgrade)."""
    runner = {(m, p) for (m, p) in _routes(synth) if p.startswith("/runner/")}
    assert runner == {
        ("POST", "/runner/{slug}/next"),
        ("POST", "/runner/{slug}/extend"),
        ("POST", "/runner/{slug}/lanes"),
        ("POST", "/runner/next"),
        ("POST", "/runner/extend"),
    }
    source = (ROOT / "functions" / "taskfleet_functions" / "handlers" / "runner.py").read_text()
    assert re.search(r'@app\.post\("/runner/next"\)\s*@app\.post\("/runner/extend"\)\s*def old_protocol', source)


def test_each_route_invokes_the_function_of_its_handler_module(synth: Synth) -> None:
    routes = _routes(synth)
    for method, path, name in ROUTES:
        function = _function_of_route(synth, routes[(method, path)])
        assert function["Properties"]["Handler"] == HANDLERS[name], (method, path)


def test_integrations_use_payload_format_2_for_the_powertools_http_resolver(synth: Synth) -> None:
    for integration in synth.of_type("AWS::ApiGatewayV2::Integration").values():
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


def test_the_default_stage_logs_access_and_throttles(synth: Synth) -> None:
    (stage,) = synth.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    assert "$context.requestId" in props["AccessLogSettings"]["Format"]
    assert props["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_functions_run_python311_on_arm64_with_powertools_settings(synth: Synth, name: str) -> None:
    _, function = function_by_handler(synth, HANDLERS[name])
    props = function["Properties"]
    assert props["Runtime"] == "python3.11"
    assert props["Architectures"] == ["arm64"]
    env = props["Environment"]["Variables"]
    config = synth.config
    assert env["POWERTOOLS_SERVICE_NAME"] == config.name
    assert env["POWERTOOLS_LOG_LEVEL"] == config.log_level
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == config.metrics_namespace
    assert env["TASKFLEET_QUEUE_PREFIX"] == config.queue_prefix
    assert env["TASKFLEET_LEASE_SECONDS"] == str(config.lease_seconds)
    assert env["TASKFLEET_CLUSTERS"].split(",") == list(config.cluster_slugs)
    (table_id,) = synth.of_type("AWS::DynamoDB::Table")
    assert logical_id(env["TASKFLEET_TABLE"]) == table_id
    assert ("POWERTOOLS_TRACE_DISABLED" in env) is (not config.tracing)
    assert (env.get("TASKFLEET_TRACING") == "1") is config.tracing
    assert props.get("TracingConfig", {}).get("Mode", "PassThrough") == ("Active" if config.tracing else "PassThrough")


def test_api_functions_answer_within_the_http_api_timeout(synth: Synth) -> None:
    for name in ("jobs", "clusters", "runner"):
        _, function = function_by_handler(synth, HANDLERS[name])
        assert function["Properties"]["Timeout"] < 30


def test_each_declared_cluster_has_an_alias_of_the_runner_function_on_latest_with_an_iam_url(synth: Synth) -> None:
    runner_id, _ = function_by_handler(synth, HANDLERS["runner"])
    aliases = {a["Properties"]["Name"]: (k, a["Properties"]) for k, a in synth.of_type("AWS::Lambda::Alias").items()}
    assert set(aliases) == {alias_name(slug) for slug in synth.config.cluster_slugs}
    urls = synth.of_type("AWS::Lambda::Url")
    assert len(urls) == len(aliases)  # one per alias, and none on the unqualified function
    for name, (alias_id, alias) in aliases.items():
        assert logical_id(alias["FunctionName"]) == runner_id
        assert alias["FunctionVersion"] == "$LATEST"  # a deployment of new code needs no alias update
        (url,) = [u for u in urls.values() if u["Properties"].get("Qualifier") == name]
        assert url["Properties"]["AuthType"] == "AWS_IAM"
        assert logical_id(url["Properties"]["TargetFunctionArn"]) == runner_id
        assert alias_id in as_list(url.get("DependsOn", []))
    for url in urls.values():
        assert url["Properties"].get("Qualifier"), "an unqualified runner URL would reach every cluster's path"


def test_the_clusters_function_knows_the_runner_function_and_each_declared_cluster_s_url(synth: Synth) -> None:
    runner_id, _ = function_by_handler(synth, HANDLERS["runner"])
    _, clusters = function_by_handler(synth, HANDLERS["clusters"])
    env = clusters["Properties"]["Environment"]["Variables"]
    assert "TASKFLEET_RUNNER_URL" not in env  # no URL serves every cluster any more
    assert env["TASKFLEET_RUNNER_FUNCTION"] == {"Ref": runner_id}
    url_of = {u["Properties"]["Qualifier"]: k for k, u in synth.of_type("AWS::Lambda::Url").items()}
    # The JSON as the function reads it, with each URL token in place.
    rendered = "".join(
        part if isinstance(part, str) else f"<{part['Fn::GetAtt'][0]}>"
        for part in env["TASKFLEET_RUNNER_URLS"]["Fn::Join"][1]
    )
    assert json.loads(rendered) == {slug: f"<{url_of[alias_name(slug)]}>" for slug in synth.config.cluster_slugs}
    for name, fn in HANDLERS.items():
        if name != "clusters":
            _, other = function_by_handler(synth, fn)
            assert not {"TASKFLEET_RUNNER_FUNCTION", "TASKFLEET_RUNNER_URLS"} & set(
                other["Properties"]["Environment"]["Variables"]
            )


def _dependencies(s: Synth, resource: str) -> set[str]:
    """Every resource `resource` depends on, directly or not (Ref, Fn::GetAtt, DependsOn)."""
    found: set[str] = set()
    todo = [resource]
    while todo:
        current = s.resources[todo.pop()]
        text = json.dumps(current)
        direct = set(re.findall(r'\{"Ref": "(\w+)"\}', text)) | set(re.findall(r'"Fn::GetAtt": \["(\w+)"', text))
        direct |= set(as_list(current.get("DependsOn", [])))
        new = {d for d in direct if d in s.resources} - found
        found |= new
        todo += new
    return found


def test_the_runner_function_and_its_urls_depend_on_nothing_of_the_clusters_function(synth: Synth) -> None:
    """The clusters function refers to the runner function (its name, its aliases' URLs, IAM on it); any
    reference the other way round would be a dependency cycle."""
    clusters_id, _ = function_by_handler(synth, HANDLERS["clusters"])
    runner_id, _ = function_by_handler(synth, HANDLERS["runner"])
    assert runner_id in _dependencies(synth, clusters_id)
    for resource in [runner_id, *synth.of_type("AWS::Lambda::Alias"), *synth.of_type("AWS::Lambda::Url")]:
        assert clusters_id not in _dependencies(synth, resource), resource


def test_every_function_gets_the_retention_and_its_reserved_concurrency(synth: Synth) -> None:
    config = synth.config
    for name, handler in HANDLERS.items():
        _, function = function_by_handler(synth, handler)
        props = function["Properties"]
        assert props["Environment"]["Variables"]["TASKFLEET_RETENTION_DAYS"] == str(config.retention_days)
        assert props.get("ReservedConcurrentExecutions") == config.reserved.get(name)
    _, clusters = function_by_handler(synth, HANDLERS["clusters"])
    assert clusters["Properties"]["Environment"]["Variables"]["TASKFLEET_MAX_CLUSTERS"] == str(config.max_clusters)


def test_default_reservations_keep_the_runner_from_starving_jobs_and_sweeper_in_a_new_account(
    cli_synth: Synth,
) -> None:
    """The repository's configuration: every function has a reservation (the runner's is a cap, the others'
    a guarantee), and they fit a new account's 1,000 with at least 100 left unreserved."""
    reserved = {
        name: function_by_handler(cli_synth, handler)[1]["Properties"].get("ReservedConcurrentExecutions")
        for name, handler in HANDLERS.items()
    }
    assert all(isinstance(v, int) and v > 0 for v in reserved.values()), reserved
    assert sum(reserved.values()) <= 1000 - 100
    assert reserved["runner"] < 1000 - 100 - reserved["jobs"] - reserved["sweeper"]
    assert reserved["sweeper"] >= 2  # a sweep a minute, and one late


def test_the_settings_the_stack_passes_are_read_by_the_functions() -> None:
    """Every TASKFLEET_ variable the stack sets is one settings.py reads (a typo would be silently ignored)."""
    source = (ROOT / "functions" / "taskfleet_functions" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.get)?[\[(]"(TASKFLEET_\w+)"', source))
    for name in (
        "TASKFLEET_TABLE",
        "TASKFLEET_RETENTION_DAYS",
        "TASKFLEET_MAX_CLUSTERS",
        "TASKFLEET_RUNNER_FUNCTION",
        "TASKFLEET_RUNNER_URLS",
        "TASKFLEET_CLUSTERS",
    ):
        assert name in read, name


def test_the_function_url_is_not_public(synth: Synth) -> None:
    for permission in synth.of_type("AWS::Lambda::Permission").values():
        assert permission["Properties"].get("Principal") != "*"
        assert permission["Properties"].get("FunctionUrlAuthType") != "NONE"


def test_the_sweeper_runs_every_minute(synth: Synth) -> None:
    sweeper_id, sweeper = function_by_handler(synth, HANDLERS["sweeper"])
    # the one scheduled rule (the automations' S3 rule, where configured, matches events instead)
    (rule,) = [r for r in synth.of_type("AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    assert logical_id(target["Arn"]) == sweeper_id
    assert sweeper["Properties"]["Timeout"] <= 60  # one sweep finishes before the next starts
    allowed = [
        p
        for p in synth.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    automations_id, _ = function_by_handler(synth, HANDLERS["automations"])
    expected = [sweeper_id, automations_id] if synth.config.automation_buckets else [sweeper_id]
    # EventBridge may invoke the sweeper (its schedule) and, where buckets are watched, the automations function
    assert sorted(str(logical_id(p["Properties"]["FunctionName"])) for p in allowed) == sorted(expected)


def test_every_function_logs_to_its_own_group_with_a_retention(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    seen = set()
    for handler in HANDLERS.values():
        _, function = function_by_handler(synth, handler)
        group_id = ref_id(function["Properties"]["LoggingConfig"]["LogGroup"])
        assert groups[group_id]["Properties"]["RetentionInDays"] == synth.config.log_retention_days
        seen.add(group_id)
    assert len(seen) == len(HANDLERS)


def test_code_asset_is_a_local_bundle_not_a_docker_build(synth: Synth) -> None:
    assets = synth.assets()
    functions = synth.of_type("AWS::Lambda::Function")
    keys = {
        render(f["Properties"]["Code"]["S3Key"])
        for k, f in functions.items()
        if "Handler" in f["Properties"] and f["Properties"]["Handler"].startswith("taskfleet_functions.")
    }
    assert len(keys) == 1, "all four functions share one bundle"
    (key,) = keys
    source = assets["files"][key.removesuffix(".zip")]["source"]
    assert source["packaging"] == "zip" and "executable" not in source
    bundle = synth.outdir / source["path"]
    assert (bundle / "taskfleet_functions" / "handlers").is_dir()
