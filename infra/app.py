#!/usr/bin/env python3
"""CDK entry point (cdk.json: `python3 infra/app.py`). The deployment is configured by the context key
`taskfleet` in cdk.json (see docs/deploy.md); cdk-nag's AwsSolutions pack checks every synthesis."""

from __future__ import annotations

from aws_cdk import App, Environment
from taskfleet_infra.config import CONTEXT_KEY, DeploymentConfig, parse_config
from taskfleet_infra.nag import add_checks
from taskfleet_infra.stack import TaskfleetStack


def build(app: App, config: DeploymentConfig, *, env: Environment | None = None) -> TaskfleetStack:
    stack = TaskfleetStack(app, config.name, config=config, env=env)
    add_checks(app)
    return stack


def main() -> None:
    app = App()
    config = parse_config(app.node.try_get_context(CONTEXT_KEY))
    build(app, config)
    app.synth()


if __name__ == "__main__":
    main()
