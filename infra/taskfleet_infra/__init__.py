"""taskfleet's CDK app: a thin stack (stack.py) of one construct per capability, configured by
config.py from cdk.json. bundle.py builds the Lambda code without Docker."""

from __future__ import annotations

from pathlib import Path

INFRA_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = INFRA_DIR.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
SDK_DIR = REPO_ROOT / "sdk"
