"""Clusters: the cluster items and their queues (a FIFO queue and its DLQ per cluster)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.queues import Queues
from ..dal.repository import Table
from ..settings import Settings
from .errors import Conflict, InvalidRequest, NotFound

CLUSTER_CACHE_MS = 60_000


class Clusters:
    def __init__(self, table: Table, queues: Queues, settings: Settings, clock: Callable[[], int]) -> None:
        self.table = table
        self.queues = queues
        self.settings = settings
        self.clock = clock
        self._cache: dict[str, tuple[Item, int]] = {}

    def get(self, slug: str) -> Item:
        """The cluster item (cached for a minute per process); creates declared clusters on first use."""
        slug = slug or rules.DEFAULT_CLUSTER
        cached = self._cache.get(slug)
        if cached and cached[1] > self.clock():
            return cached[0]
        item = self.table.get_cluster(slug)
        if item is None and slug in self.settings.static_clusters:
            item = self._create(slug, slug)
        if item is None:
            raise NotFound(f"cluster {slug!r} does not exist", code="ClusterNotFound")
        self._cache[slug] = (item, self.clock() + CLUSTER_CACHE_MS)
        return item

    def slug(self, name: str) -> str:
        """The slug of an existing cluster (NotFound otherwise)."""
        return str(self.get(name)["slug"])

    def queue_url(self, slug: str) -> str:
        return str(self.get(slug)["queue_url"])

    def _create(self, slug: str, name: str) -> Item:
        url, dlq = self.queues.ensure(self.settings.queue_name(slug), self.settings.dlq_name(slug))
        item = {"slug": slug, "name": name, "queue_url": url, "dlq_url": dlq, "created_at": self.clock()}
        result = self.table.put_cluster_if_absent(item)
        return item if result.ok else (result.item or item)

    def create(self, name: str) -> Item:
        if not isinstance(name, str) or not (1 <= len(name) <= 100) or not name.isprintable():
            raise InvalidRequest("cluster name must be 1-100 printable characters")
        slug = f"{rules.slugify(name)[:30]}-{secrets.token_hex(3)}"
        return self._create(rules.check_slug(slug), name)

    def all(self) -> list[Item]:
        self.get(rules.DEFAULT_CLUSTER)  # the default cluster always exists
        return list(self.table.clusters())

    def delete(self, slug: str) -> None:
        if slug == rules.DEFAULT_CLUSTER:
            raise Conflict("the default cluster cannot be deleted")
        item = self.get(slug)
        self.queues.delete(item["queue_url"], item["dlq_url"])
        self.table.delete_cluster(slug)
        self._cache.pop(slug, None)
