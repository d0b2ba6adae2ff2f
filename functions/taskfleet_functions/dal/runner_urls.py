"""Per-cluster runner URLs: an alias of the runner function per cluster (`cluster-<slug>`), each with an
IAM-authenticated function URL. A runner policy names its cluster's alias, so IAM binds a runner's
credentials to its cluster; the runner function reads the alias it was invoked through and refuses a
path of another cluster (docs/architecture.md, "Leases and the runner's cluster").

Declared clusters get theirs from the CDK stack (their URLs reach the clusters function as
TASKFLEET_RUNNER_URLS); clusters created at run time get theirs here, from the clusters function.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

ALIAS_PREFIX = "cluster-"


def alias_name(slug: str) -> str:
    return f"{ALIAS_PREFIX}{slug}"


class RunnerUrls(Protocol):
    def ensure(self, slug: str) -> str | None: ...
    def delete(self, slug: str) -> None: ...


class NoRunnerUrls:
    """The local stack (and a deployment without a runner function URL): runners use the API's routes,
    bound by path."""

    def ensure(self, slug: str) -> str | None:
        return None

    def delete(self, slug: str) -> None:
        return None


class LambdaRunnerUrls:
    """Creates and deletes a cluster's alias of the runner function and its function URL."""

    def __init__(self, client: Any, function_name: str) -> None:
        self.client = client
        self.function_name = function_name

    def ensure(self, slug: str) -> str:
        alias = alias_name(slug)
        with contextlib.suppress(self.client.exceptions.ResourceConflictException):
            self.client.create_alias(
                FunctionName=self.function_name,
                Name=alias,
                FunctionVersion="$LATEST",
                Description=f"runners of cluster {slug}",
            )
        try:
            config = self.client.create_function_url_config(
                FunctionName=self.function_name, Qualifier=alias, AuthType="AWS_IAM"
            )
        except self.client.exceptions.ResourceConflictException:
            config = self.client.get_function_url_config(FunctionName=self.function_name, Qualifier=alias)
        return str(config["FunctionUrl"])

    def delete(self, slug: str) -> None:
        alias = alias_name(slug)
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_function_url_config(FunctionName=self.function_name, Qualifier=alias)
        with contextlib.suppress(self.client.exceptions.ResourceNotFoundException):
            self.client.delete_alias(FunctionName=self.function_name, Name=alias)
