"""Tickets out: one SQS FIFO message per ready task, to its lane (its cluster's queue of its name and
version), in batches."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.queues import Queues, Ticket
from .clusters import Clusters
from .contracts import DeferredRef
from .latches import is_ready
from .tree import Keep, Tree


def ticket_for(task: Item) -> Ticket:
    ref = task.get("ref")
    return Ticket(
        task["job_id"],
        task["task_id"],
        task["name"],
        task["version"],
        int(task.get("attempt", 0)),
        DeferredRef(*ref) if ref else None,
    )


@dataclass(kw_only=True)
class Dispatcher:
    clusters: Clusters
    queues: Queues
    tree: Tree

    def send(self, tasks: Iterable[Item], *, suffix: str = "") -> None:
        """Tickets for `tasks`. `suffix` extends the deduplication id: a repair or resume re-sends a
        ticket that SQS would otherwise drop as a duplicate within 5 minutes."""
        by_lane: dict[tuple[str, str, str], list[Ticket]] = defaultdict(list)
        for task in tasks:
            by_lane[(task["cluster"], task["name"], task["version"])].append(ticket_for(task))
        for (slug, name, version), tickets in by_lane.items():
            try:
                self.queues.send(self.clusters.lane_url(slug, name, version), tickets, dedup_suffix=suffix)
            except self.queues.client.exceptions.QueueDoesNotExist:
                # a lane this process remembered is gone: its cluster was deleted (and one with its slug may
                # have been made since); look the lane up again, creating it if need be
                self.clusters.forget_lane(slug, name, version)
                self.queues.send(self.clusters.lane_url(slug, name, version), tickets, dedup_suffix=suffix)

    def children(self, parent: Item, keep: Keep, *, suffix: str = "") -> None:
        """Tickets for the ready subtasks of `parent` for which `keep(parent, index)` holds."""
        self.send([c for c in self.tree.children([parent], keep) if is_ready(c)], suffix=suffix)

    def bucket(self, parent: Item, bucket: int) -> None:
        """Tickets for the ready subtasks of one latch bucket of `parent` (if it has that many)."""
        start = bucket * rules.LATCH_BUCKET
        self.children(parent, lambda _, i: start <= i < start + rules.LATCH_BUCKET)
