"""Shared fixtures: one local stack per test session (short leases so crash recovery is quick), a
fresh cluster per test (so tests do not see each other's tickets), and runner subprocesses. The helpers
the tests (and the benchmarks) share live in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fleet import Runners

os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

LEASE_SECONDS = 3


@pytest.fixture(scope="session")
def stack() -> Iterator[Any]:
    from taskfleet_local import LocalStack

    with LocalStack(
        lease_seconds=LEASE_SECONDS,
        sweep_interval=0.5,
        outbox_grace_seconds=1.0,
        submit_lock_seconds=3.0,
        max_clusters=10_000,  # every test gets a cluster of its own
    ) as s:
        yield s


@pytest.fixture
def client(stack: Any) -> Any:
    return stack.client()


@pytest.fixture
def cluster(client: Any, request: pytest.FixtureRequest) -> str:
    return str(client.clusters().create(request.node.name[:20]).slug)


@pytest.fixture
def runners(stack: Any, tmp_path: Path) -> Iterator[Runners]:
    r = Runners(stack.url, tmp_path)
    yield r
    r.stop_all()
