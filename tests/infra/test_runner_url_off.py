"""`runner_function_url: false`: no alias, no function URL, so the runners of a cluster reach the runner
function only through the API routes their policy names (`/runner/<slug>/...`); the clusters function
makes no alias or URL for a cluster created at run time (no TASKFLEET_RUNNER_FUNCTION, no Lambda grant)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    Synth,
    _repo_context,
    as_list,
    function_by_handler,
    load_app_module,
    policy_by_description,
    role_statements,
    runner_policies,
    statements,
)
from .test_synth_checks import CFN_LINT_IGNORED

CONFIG: dict[str, Any] = {
    "name": "tfapi",
    "queue_prefix": "tfapi",
    "deletion_protection": False,
    "runner_function_url": False,
    # External clusters only: no ECS, so the synthesis is quick.
    "clusters": [
        {"slug": "default", "compute": {"type": "external"}},
        {"slug": "lab", "compute": {"type": "external"}},
    ],
}


@pytest.fixture(scope="module")
def api_only_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    from aws_cdk import App
    from taskfleet_infra.config import CONTEXT_KEY, parse_config

    outdir = tmp_path_factory.mktemp("cdk-api-only")
    started = time.monotonic()
    app = App(outdir=str(outdir), context={**_repo_context(), CONTEXT_KEY: CONFIG})
    config = parse_config(CONFIG)
    load_app_module().build(app, config)
    app.synth()  # cdk-nag runs here: an unacknowledged finding fails the synthesis
    template = json.loads((outdir / f"{config.name}.template.json").read_text())
    return Synth(outdir, template, config, time.monotonic() - started)


def test_there_is_no_alias_no_function_url_and_no_runner_url_anywhere(api_only_synth: Synth) -> None:
    s = api_only_synth
    assert not s.of_type("AWS::Lambda::Url")
    assert not s.of_type("AWS::Lambda::Alias")
    _, clusters = function_by_handler(s, "taskfleet_functions.handlers.clusters.lambda_handler")
    env = clusters["Properties"]["Environment"]["Variables"]
    assert not {"TASKFLEET_RUNNER_URL", "TASKFLEET_RUNNER_FUNCTION", "TASKFLEET_RUNNER_URLS"} & set(env)
    assert not [o for o in s.template["Outputs"] if o.startswith("RunnerUrl")]
    assert not [k for k in s.of_type("AWS::CloudWatch::Alarm") if "runnerurl" in k.lower()]
    role = clusters["Properties"]["Role"]["Fn::GetAtt"][0]
    assert not [a for st in role_statements(s, role) for a in as_list(st["Action"]) if a.startswith("lambda:")]


def test_runner_policies_grant_their_own_routes_and_lanes_and_no_lambda(api_only_synth: Synth) -> None:
    s = api_only_synth
    policies = {slug: statements(props["PolicyDocument"]) for slug, (_, props) in runner_policies(s).items()}
    assert set(policies) == {"default", "lab"}
    _, runtime = policy_by_description(s, "its principal tag taskfleet-cluster names")
    for sts in [*policies.values(), statements(runtime["PolicyDocument"])]:
        assert sorted(st["Sid"] for st in sts) == ["Api", "ClusterLanes", "JobCacheList", "JobCacheObjects"]
        assert not [a for st in sts for a in as_list(st["Action"]) if a.startswith("lambda:")]


def test_cdk_nag_and_cfn_lint_pass(api_only_synth: Synth) -> None:
    report = json.loads((api_only_synth.outdir / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])] == []
    templates = sorted(Path(api_only_synth.outdir).glob("*.template.json"))
    cfn_lint = str(Path(sys.executable).with_name("cfn-lint"))
    done = subprocess.run(
        [cfn_lint, "--ignore-checks", *CFN_LINT_IGNORED, "--", *map(str, templates)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
