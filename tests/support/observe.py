"""What tasks leave behind for a test to observe: the execution log, marks, gates; and queue depths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def executions(workdir: Path) -> list[dict[str, Any]]:
    """The execution log tasks append to (tests/e2e/workflows.py, tests/support/fault_tasks.py): one JSON
    object a line."""
    log = workdir / "executions.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def open_gate(workdir: Path, name: str) -> None:
    (workdir / f"gate-{name}").write_text("open")


def marked(workdir: Path, name: str) -> bool:
    return (workdir / f"mark-{name}").exists()


def lane_urls(stack: Any, slug: str) -> list[str]:
    """The URLs of a cluster's lanes (its queue per task identifier)."""
    return list(stack.orchestrator.clusters.lane_urls(slug))


def queue_depth(stack: Any, slug: str) -> int:
    """Visible plus in-flight messages over all of a cluster's lanes."""
    sqs = stack.boto_client("sqs")
    total = 0
    for url in lane_urls(stack, slug):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        total += int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return total
