"""Synthesis fixtures for the infrastructure tests.

Synthesis is slow (a Node.js process loads aws-cdk-lib; on 2 cores ~20 s), so each runs once per session:
- `cli_synth`: `cdk synth` through the pinned CLI (node_modules/.bin/cdk, installed by `npm ci`) with the
  repository's own cdk.json, exactly as a user deploys it;
- `full_synth`: the app in-process with FULL_CONFIG, a configuration that uses every feature (Fargate on
  arm64 Spot, a GPU cluster, an external cluster with an on-prem role and user, NAT gateways, tracing,
  storage event automations on two buckets).
Both start together (the CLI one in a subprocess) so they overlap. Both run cdk-nag: a violation fails
the synthesis, and so the fixture.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CDK = ROOT / "node_modules" / ".bin" / "cdk"
# jsii warns loudly on every start that Node 20 is past its end of life; the warning is known (see
# docs/deploy.md) and would drown the test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

FULL_CONFIG: dict[str, Any] = {
    "name": "tfci",
    "queue_prefix": "tfci",
    "lease_seconds": 90,
    "automation_buckets": ["tfci-uploads", "tfci-raw.data"],
    "log_level": "DEBUG",
    "metrics_namespace": "TaskfleetCi",
    "deletion_protection": False,
    "nat_gateways": 1,
    "tracing": True,
    "alarm_email": "ops@example.com",
    "cache_expiry_days": 7,
    "clusters": [
        {
            "slug": "default",
            "compute": {
                "type": "fargate",
                "cpu": 512,
                "memory": 1024,
                "min_tasks": 0,
                "max_tasks": 6,
                "architecture": "arm64",
                "spot": True,
            },
        },
        {
            "slug": "gpu-a10",
            "compute": {
                "type": "gpu",
                "instance_type": "g5.xlarge",
                "gpus_per_task": 1,
                "min_instances": 0,
                "max_instances": 3,
            },
            "tasks": ["taskfleet.examples.demo:DetectObjects"],
            "max_ticket_age_seconds": 7200,
        },
        {"slug": "lab", "compute": {"type": "external"}},
    ],
    "onprem": {"trusted_principals": ["123456789012"], "create_users": True},
}


@dataclass
class Synth:
    """One synthesized cloud assembly."""

    outdir: Path
    template: dict[str, Any]
    config: Any  # DeploymentConfig
    seconds: float

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}

    def assertions(self) -> Any:
        from aws_cdk.assertions import Template

        return Template.from_json(self.template)

    def assets(self) -> dict[str, Any]:
        return json.loads((self.outdir / f"{self.config.name}.assets.json").read_text())


def _repo_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def _cli_synth_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], Path, float]]:
    if not CDK.exists():
        pytest.fail(f"{CDK} is missing: run `npm ci` (make setup) to install the pinned CDK CLI")
    outdir = tmp_path_factory.mktemp("cdk-cli")
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(CDK), "synth", "--no-notices", "--quiet", "--output", str(outdir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CDK_DISABLE_VERSION_CHECK": "1"},
    )
    yield proc, outdir, started
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def cli_synth(_cli_synth_process: tuple[subprocess.Popen[str], Path, float], full_synth: Synth) -> Synth:
    """`cdk synth` of the repository's cdk.json through the pinned CLI (it runs in the background while
    `full_synth` runs in-process: on 2 cores the two overlap)."""
    proc, outdir, started = _cli_synth_process
    output, _ = proc.communicate(timeout=600)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"cdk synth failed (exit {proc.returncode}):\n{output[-6000:]}"
    from taskfleet_infra.config import CONTEXT_KEY, parse_config

    config = parse_config(_repo_context()[CONTEXT_KEY])
    template = json.loads((outdir / f"{config.name}.template.json").read_text())
    return Synth(outdir, template, config, seconds)


def load_app_module() -> Any:
    spec = importlib.util.spec_from_file_location("taskfleet_cdk_app", INFRA / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def full_synth(_cli_synth_process: Any, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app in-process with FULL_CONFIG (the CLI synthesis runs meanwhile)."""
    from aws_cdk import App
    from taskfleet_infra.config import CONTEXT_KEY, parse_config

    outdir = tmp_path_factory.mktemp("cdk-full")
    started = time.monotonic()
    context = {**_repo_context(), CONTEXT_KEY: FULL_CONFIG}
    app = App(outdir=str(outdir), context=context)
    config = parse_config(FULL_CONFIG)
    load_app_module().build(app, config)
    app.synth()
    template = json.loads((outdir / f"{config.name}.template.json").read_text())
    return Synth(outdir, template, config, time.monotonic() - started)


@pytest.fixture(scope="session", params=["cli", "full"])
def synth(request: pytest.FixtureRequest) -> Synth:
    """Each synthesized assembly in turn, for properties that every configuration must have."""
    return request.getfixturevalue(f"{request.param}_synth")


# --- template helpers ----------------------------------------------------------------------------


def logical_id(value: Any) -> str | None:
    """The logical id a Ref or Fn::GetAtt points to."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def ref_id(value: Any) -> str:
    """The logical id of a value that must be a Ref or Fn::GetAtt (fails the test otherwise)."""
    found = logical_id(value)
    assert found is not None, f"not a Ref or Fn::GetAtt: {value!r}"
    return found


def statements(policy_document: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy_document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def function_by_handler(s: Synth, handler: str) -> tuple[str, dict[str, Any]]:
    matches = [
        (k, v) for k, v in s.of_type("AWS::Lambda::Function").items() if v["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, f"expected one function with handler {handler}, found {len(matches)}"
    return matches[0]


def role_statements(s: Synth, role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to a role: inline policies, attached AWS::IAM::Policy and managed policies."""
    found: list[dict[str, Any]] = []
    role = s.resources[role_id]
    for inline in role["Properties"].get("Policies", []):
        found += statements(inline["PolicyDocument"])
    for policy in s.of_type("AWS::IAM::Policy").values():
        if any(logical_id(r) == role_id for r in policy["Properties"].get("Roles", [])):
            found += statements(policy["Properties"]["PolicyDocument"])
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        managed = logical_id(arn)
        if managed and managed in s.resources:
            found += statements(s.resources[managed]["Properties"]["PolicyDocument"])
    return found


def render(value: Any) -> str:  # noqa: PLR0911 - one return per CloudFormation intrinsic, a flat dispatch
    """A readable string for an ARN built with Fn::Join / Fn::Sub / Ref / GetAtt (tokens in <>)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(render(p) for p in parts)
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::Sub" in value:
            return str(value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0])
        if "Fn::Select" in value:
            return f"<select {render(value['Fn::Select'][1])}>"
        if "Fn::Split" in value:
            return f"<split {render(value['Fn::Split'][1])}>"
        if "Fn::ImportValue" in value:
            return f"<import {render(value['Fn::ImportValue'])}>"
    return json.dumps(value)


RUNNER_POLICY_DESCRIPTION = "a task runner of cluster '"


def runner_policies(s: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each declared cluster's runner policy: slug -> (logical id, properties)."""
    found = {}
    for k, p in s.of_type("AWS::IAM::ManagedPolicy").items():
        description = p["Properties"]["Description"]
        if RUNNER_POLICY_DESCRIPTION in description:
            found[description.rsplit("'", 2)[1]] = (k, p["Properties"])
    return found


def policy_by_description(s: Synth, text: str) -> tuple[str, dict[str, Any]]:
    """The one managed policy whose description contains `text`: (logical id, properties)."""
    (found,) = [
        (k, p["Properties"])
        for k, p in s.of_type("AWS::IAM::ManagedPolicy").items()
        if text in p["Properties"]["Description"]
    ]
    return found


def runner_alias_arn(s: Synth, slug: str) -> str:
    """How a template renders the ARN of cluster `slug`'s alias of the runner function."""
    runner_fn, _ = function_by_handler(s, "taskfleet_functions.handlers.runner.lambda_handler")
    return f"<{runner_fn}.Arn>:cluster-{slug}"
