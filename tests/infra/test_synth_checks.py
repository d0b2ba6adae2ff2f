"""The proofs that need no account: the CLI synthesizes the repository's cdk.json, cdk-nag's AwsSolutions
pack has nothing unacknowledged, every acknowledgement carries a reason, cfn-lint passes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import CDK, ROOT, Synth


def test_cdk_cli_is_pinned_and_installed_by_npm_ci() -> None:
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = package["devDependencies"]["aws-cdk"]
    assert pinned[0].isdigit(), "aws-cdk must be pinned to an exact version"
    assert lock["packages"]["node_modules/aws-cdk"]["version"] == pinned
    installed = subprocess.run([str(CDK), "--version"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert installed.stdout.split()[0] == pinned


def test_cdk_json_runs_the_app_with_the_project_venv() -> None:
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert cdk_json["app"].split()[-1] == "infra/app.py"
    assert "taskfleet" in cdk_json["context"]


def test_cli_synth_of_the_repository_config_succeeds(cli_synth: Synth) -> None:
    manifest = json.loads((cli_synth.outdir / "manifest.json").read_text())
    stacks = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
    assert len(stacks) == 1
    assert len(cli_synth.resources) > 50


def _violations(s: Synth) -> list[dict]:
    report = json.loads((s.outdir / "validation-report.json").read_text())
    return [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]


def test_cdk_nag_reports_nothing_unacknowledged(synth: Synth) -> None:
    # Synthesis would have failed on an error; warnings would still be listed in the report.
    assert _violations(synth) == []


def test_every_nag_acknowledgement_carries_a_reason_in_the_template(synth: Synth) -> None:
    rules = [
        (logical, rule)
        for logical, res in synth.resources.items()
        for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert any(rule["id"].startswith("AwsSolutions-") for _, rule in rules), (
        "cdk-nag wrote no acknowledgements: is the AwsSolutions pack still applied?"
    )
    for logical, rule in rules:  # ours, and those aws-cdk-lib itself records (CloudFormation-Validate::...)
        assert len(rule.get("reason", "").split()) >= 8, f"{logical}: {rule['id']} needs a real reason"


def test_wildcard_acknowledgements_name_the_exact_finding(synth: Synth) -> None:
    """IAM5 is acknowledged per finding (one resource pattern), never as a blanket for a role."""
    for logical, res in synth.resources.items():
        for rule in res.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            if rule["id"].startswith("AwsSolutions-IAM5"):
                assert "[" in rule["id"] and rule["id"].endswith("]"), (logical, rule["id"])


# W3005 ("dependency already enforced by a GetAtt"): aws-cdk-lib adds DependsOn on a function's role next
# to the GetAtt of its ARN (for every Lambda function, its own custom-resource providers included); the
# redundancy is harmless. Every other error and warning (cfn-lint's default rules) fails the test.
CFN_LINT_IGNORED = ["W3005"]


def test_cfn_lint_passes_on_every_synthesized_template(synth: Synth) -> None:
    templates = sorted(Path(synth.outdir).glob("*.template.json"))
    assert templates
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--ignore-checks",
            *CFN_LINT_IGNORED,
            "--",
            *map(str, templates),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
