"""Clusters and their lanes: a cluster item, a DLQ per cluster, and a FIFO queue (a lane) per task
identifier (name and version) used in it, created on first use (docs/architecture.md, "Queue protocol")."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from typing import NamedTuple

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.queues import Queues
from ..dal.repository import Table
from ..dal.runner_urls import NoRunnerUrls, RunnerUrls
from ..settings import Settings
from .errors import Conflict, InvalidRequest, NotFound

CLUSTER_CACHE_MS = 60_000
MAX_LANES_PER_CLUSTER = 500
# A runner asks for its lanes at least every 5 minutes while it polls (a runner busy with one long task
# does not): a lane nobody asked for in twice that long has, most likely, no runner.
RUNNER_SEEN_MS = 10 * 60_000


class Identifier(NamedTuple):
    name: str
    version: str


def lane_key(name: str, version: str) -> str:
    """A lane's key in queue names: 12 hex digits of the identifier's SHA-256 (a task name may be 256
    characters, a queue name only 80)."""
    return hashlib.sha256(f"{name}\0{version}".encode()).hexdigest()[:12]


class Clusters:
    def __init__(
        self,
        table: Table,
        queues: Queues,
        settings: Settings,
        clock: Callable[[], int],
        runner_urls: RunnerUrls | None = None,
    ) -> None:
        self.table = table
        self.queues = queues
        self.settings = settings
        self.clock = clock
        self.runner_urls = runner_urls or NoRunnerUrls()
        self._cache: dict[str, tuple[Item, int]] = {}
        self._lane_urls: dict[tuple[str, str], str] = {}  # a lane's URL never changes: cached for good

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
        item = self._with_runner_url(item)
        self._cache[slug] = (item, self.clock() + CLUSTER_CACHE_MS)
        return item

    def _with_runner_url(self, item: Item) -> Item:
        """A declared cluster's runner URL comes from the deployment; a created one's is on its item."""
        url = item.get("runner_url") or self.settings.runner_urls.get(str(item["slug"]))
        return {**item, "runner_url": url} if url else item

    def slug(self, name: str) -> str:
        """The slug of an existing cluster (NotFound otherwise)."""
        return str(self.get(name)["slug"])

    # --- lanes -------------------------------------------------------------------------------------------

    def lane_url(self, slug: str, name: str, version: str) -> str:
        """The URL of the lane of (name, version) in cluster `slug`, created if it does not exist yet."""
        key = lane_key(name, version)
        url = self._lane_urls.get((slug, key))
        if url is None:
            lane = self.table.get_lane(slug, key) or self._create_lane(slug, key, name, version)
            url = self._lane_urls[(slug, key)] = str(lane["url"])
        return url

    def forget_lane(self, slug: str, name: str, version: str) -> None:
        """Drop a remembered lane URL (the queue is gone)."""
        self._lane_urls.pop((slug, lane_key(name, version)), None)

    def ensure_lanes(self, identifiers: Iterable[tuple[str, str, str]]) -> None:
        """Create the lanes of these (cluster slug, name, version) triples that do not exist yet: a submit or
        report calls this before it writes anything, so that a lane limit refuses it whole."""
        for slug, name, version in set(identifiers):
            self.lane_url(slug, name, version)

    def runner_lanes(self, slug: str, registered: Iterable[Identifier]) -> list[Item]:
        """A runner's lanes: the lane of each identifier it registers (created if missing) and every existing
        lane of a version it may run (same name and major, minor at most the registered one)."""
        registered = list(dict.fromkeys(registered))
        for ident in registered:
            self.lane_url(slug, ident.name, ident.version)
        runnable = []
        for lane in self.table.lanes(slug):
            if any(r.name == lane["name"] and rules.can_run(r.version, lane["version"]) for r in registered):
                runnable.append(lane)
                self.table.touch_lane(slug, str(lane["key"]), self.clock())  # for `waiting_note`
        return runnable

    def waiting_note(self, task: Item, job_state: str, lanes: dict[str, Item]) -> str | None:
        """Why a QUEUED task does not run, if it may not: its job is no longer active, or no runner that can
        run it has asked for its lane lately (`lanes`: the cluster's lane items by key)."""
        if task.get("state") != "QUEUED":
            return None
        if job_state in ("FAILED", "CANCELED", "COMPLETED"):
            return f"will not run while the job is {job_state} (retry the job to run it)"
        lane = lanes.get(lane_key(str(task["name"]), str(task["version"])))
        seen = int((lane or {}).get("runner_seen_at", 0))
        if self.clock() - seen > RUNNER_SEEN_MS:
            ident = f"{task['name']} {task['version']}"
            return (
                f"no runner that can run {ident} has asked for work on cluster {task['cluster']!r} in the last"
                f" {RUNNER_SEEN_MS // 60_000} minutes (start one that registers this task, same major version,"
                " minor at least this one)"
            )
        return None

    def _create_lane(self, slug: str, key: str, name: str, version: str) -> Item:
        cluster = self.get(slug)
        if len(self.table.lanes(slug)) >= MAX_LANES_PER_CLUSTER:
            raise Conflict(
                f"cluster {slug!r} has {MAX_LANES_PER_CLUSTER} lanes (task identifiers and versions), the most"
                " it may have; use another cluster for more task identifiers",
                code="LaneLimit",
            )
        url = self.queues.ensure_lane(
            self.settings.lane_name(slug, key),
            str(cluster["dlq_url"]),
            {"taskfleet:cluster": slug, "taskfleet:task": name[:256], "taskfleet:version": version},
        )
        lane = {"slug": slug, "key": key, "name": name, "version": version, "url": url, "created_at": self.clock()}
        result = self.table.put_lane_if_absent(slug, key, lane)
        return lane if result.ok else (result.item or lane)

    def lane_urls(self, slug: str) -> list[str]:
        return [str(lane["url"]) for lane in self.table.lanes(slug)]

    # --- clusters ------------------------------------------------------------------------------------------

    def _create(self, slug: str, name: str, description: str | None = None) -> Item:
        return self._put(slug, name, description)[0]

    def _put(self, slug: str, name: str, description: str | None) -> tuple[Item, bool]:
        """The cluster item (made with its DLQ and runner URL), and whether this call created it."""
        dlq = self.queues.ensure_dlq(self.settings.dlq_name(slug))
        item = {"slug": slug, "name": name, "dlq_url": dlq, "created_at": self.clock()}
        if description:
            item["description"] = description
        if slug not in self.settings.static_clusters and (url := self.runner_urls.ensure(slug)):
            item["runner_url"] = url
        result = self.table.put_cluster_if_absent(item)
        return (item, True) if result.ok else (result.item or item, False)

    def create(self, name: str, *, description: str | None = None, slug: str | None = None) -> Item:
        """A new cluster: `slug` as given (409 SlugTaken if it exists), else made from the name."""
        if not isinstance(name, str) or not (1 <= len(name) <= 100) or not name.isprintable():
            raise InvalidRequest("cluster name must be 1-100 printable characters")
        created = [c for c in self.table.clusters() if c["slug"] not in self.settings.static_clusters]
        if len(created) >= self.settings.max_clusters:
            raise Conflict(
                f"this deployment has {len(created)} created clusters, its limit (TASKFLEET_MAX_CLUSTERS);"
                " delete one first",
                code="ClusterLimit",
            )
        if slug is not None:
            rules.check_slug(slug)
            taken = Conflict(f"cluster {slug!r} exists already; choose another slug", code="SlugTaken")
            if slug in self.settings.static_clusters or self.table.get_cluster(slug) is not None:
                raise taken
            item, is_new = self._put(slug, name, description)
            if not is_new:
                raise taken
            return item
        slug = f"{rules.slugify(name)[:30]}-{secrets.token_hex(3)}"
        return self._create(rules.check_slug(slug), name, description)

    def update(self, slug: str, *, name: str | None = None, description: str | None = None) -> Item:
        """Change a cluster's display name or description (its slug never changes)."""
        self.get(slug)  # NotFound otherwise
        changes = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
        if not changes:
            raise InvalidRequest("say what to change: name or description")
        item = self.table.update_cluster(slug, changes)
        self._cache.pop(slug, None)
        return self._with_runner_url(item)

    def deletable(self, item: Item) -> bool:
        """Whether `delete` may remove it: a created cluster (declared ones are the deployment's)."""
        return str(item["slug"]) not in self.settings.static_clusters and item["slug"] != rules.DEFAULT_CLUSTER

    def all(self) -> list[Item]:
        self.get(rules.DEFAULT_CLUSTER)  # the default cluster always exists
        return [self._with_runner_url(c) for c in self.table.clusters()]

    def delete(self, slug: str, *, force: bool = False) -> None:
        """Delete a created cluster with no ticket queued or in flight (or, `force`d, drop them); its lanes
        and DLQ go with it."""
        if slug == rules.DEFAULT_CLUSTER:
            raise Conflict("the default cluster cannot be deleted", code="DeclaredCluster")
        if slug in self.settings.static_clusters:
            raise Conflict(
                f"cluster {slug!r} is declared in the deployment (cdk.json); remove it there", code="DeclaredCluster"
            )
        item = self.get(slug)
        lanes = self.table.lanes(slug)
        waiting = 0 if force else sum(self.queues.backlog(str(lane["url"])) for lane in lanes)
        if waiting:
            raise Conflict(
                f"cluster {slug!r} has {waiting} ticket(s) queued or in flight; cancel their jobs and let a runner"
                " discard them, or delete with force=true (their tasks then stay QUEUED until a retry)",
                code="ClusterBusy",
            )
        for lane in lanes:
            self.queues.delete(str(lane["url"]))
            self.table.delete_lane(slug, str(lane["key"]))
            self._lane_urls.pop((slug, str(lane["key"])), None)
        self.queues.delete(item["dlq_url"])
        self.runner_urls.delete(slug)
        self.table.delete_cluster(slug)
        self._cache.pop(slug, None)
