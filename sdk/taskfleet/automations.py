"""Automations: jobs that cron schedules and object-created events in S3 buckets start, with the reference
product's names.

    class DailyReport(CronTask):
        region: str

        def execute(self, context: ExecutionContext) -> None:
            context.logger.info("scheduled for %s", self.trigger.time)

    client.automations().create_cron_automation("daily-report", DailyReport("alps"), ["0 6 * * *"])

A CronTask reads `self.trigger.time` (the scheduled time, UTC); a StorageEventTask reads
`self.trigger.storage` (the bucket), `self.trigger.type` (CREATED) and `self.trigger.location` (the
object's key). The task's arguments given at creation are kept with the automation; each firing submits a
job of one task with them and its trigger. `task.once(...)` attaches a trigger by hand, to submit one as an
ordinary job (for testing).
"""

from __future__ import annotations

import builtins
import copy
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Self

from .errors import TaskValidationError
from .http import Transport
from .task import Task, task_identifier, task_spec


class StorageEventType(StrEnum):
    CREATED = "CREATED"


@dataclass(frozen=True)
class CronTrigger:
    """What fired a CronTask: its scheduled time (UTC)."""

    time: datetime

    def wire(self) -> dict[str, Any]:
        return {"kind": "cron", "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z")}


@dataclass(frozen=True)
class StorageEventTrigger:
    """What fired a StorageEventTask: an object created in `storage` (an S3 bucket) at `location` (its key)."""

    storage: str
    location: str
    type: StorageEventType = StorageEventType.CREATED
    version: str = ""

    def wire(self) -> dict[str, Any]:
        return {
            "kind": "storage",
            "storage": self.storage,
            "type": str(self.type),
            "location": self.location,
            "version": self.version,
        }


class _TriggeredTask(Task):
    """A task an automation submits: its input is `{"args": <its fields>, "trigger": <what fired>}`."""

    TRIGGERED: ClassVar[bool] = True

    def _with_trigger(self, trigger: CronTrigger | StorageEventTrigger) -> Self:
        triggered = copy.copy(self)
        triggered.__dict__["_trigger"] = trigger
        return triggered

    @classmethod
    def _trigger_from_wire(cls, data: dict[str, Any]) -> CronTrigger | StorageEventTrigger:
        raise NotImplementedError


class CronTask(_TriggeredTask):
    """Base class of tasks that cron automations start; `self.trigger.time` is the scheduled time."""

    @property
    def trigger(self) -> CronTrigger:
        trigger = self.__dict__.get("_trigger")
        if not isinstance(trigger, CronTrigger):
            raise AttributeError(f"{type(self).__name__} was not started by a schedule (submit task.once() by hand)")
        return trigger

    def once(self, trigger_time: datetime | None = None) -> Self:
        """A copy that runs as if its schedule fired at `trigger_time` (now if None): submit it as a job."""
        moment = trigger_time or datetime.now(UTC)
        return self._with_trigger(CronTrigger(moment if moment.tzinfo else moment.replace(tzinfo=UTC)))

    @classmethod
    def _trigger_from_wire(cls, data: dict[str, Any]) -> CronTrigger:
        return CronTrigger(datetime.fromisoformat(str(data["time"]).replace("Z", "+00:00")))


class StorageEventTask(_TriggeredTask):
    """Base class of tasks that storage event automations start: `self.trigger.storage` (the bucket),
    `self.trigger.location` (the object's key), `self.trigger.type` (CREATED)."""

    @property
    def trigger(self) -> StorageEventTrigger:
        trigger = self.__dict__.get("_trigger")
        if not isinstance(trigger, StorageEventTrigger):
            raise AttributeError(f"{type(self).__name__} was not started by a storage event (submit task.once())")
        return trigger

    def once(self, storage: str, location: str, event_type: StorageEventType = StorageEventType.CREATED) -> Self:
        """A copy that runs as if `location` had been created in bucket `storage`: submit it as a job."""
        return self._with_trigger(StorageEventTrigger(storage, location, event_type))

    @classmethod
    def _trigger_from_wire(cls, data: dict[str, Any]) -> StorageEventTrigger:
        return StorageEventTrigger(
            storage=str(data["storage"]),
            location=str(data["location"]),
            type=StorageEventType(str(data.get("type") or "CREATED")),
            version=str(data.get("version") or ""),
        )


@dataclass(frozen=True)
class Automation:
    id: str
    name: str
    kind: str  # "cron" or "storage"
    task: tuple[str, str]  # the task's identifier
    args: Any  # the task's arguments (its input without the trigger)
    cluster: str
    max_retries: int = 0
    cron_schedules: list[str] = field(default_factory=list)
    storage_triggers: list[tuple[str, str]] = field(default_factory=list)  # (bucket, glob)
    created_at: str | None = None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> Automation:
        return cls(
            id=d["id"],
            name=d["name"],
            kind=d["kind"],
            task=(d["task"]["name"], d["task"]["version"]),
            args=d.get("args"),
            cluster=d.get("cluster") or "default",
            max_retries=int(d.get("max_retries") or 0),
            cron_schedules=list(d.get("cron_schedules") or ()),
            storage_triggers=[(t["bucket"], t["glob"]) for t in d.get("storage_triggers") or ()],
            created_at=d.get("created_at"),
        )


def _slug(cluster: Any) -> str | None:
    return getattr(cluster, "slug", cluster) or None


class AutomationClient:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def _create(self, name: str, task: Task, kind: str, cluster: Any, max_retries: int, **triggers: Any) -> Automation:
        base = CronTask if kind == "cron" else StorageEventTask
        if not isinstance(task, base):
            raise TaskValidationError(
                f"{type(task).__name__} is not a {base.__name__}: a {kind} automation runs subclasses of"
                f" taskfleet.automations.{base.__name__}"
            )
        spec = task_spec(task, depends_on=[], cluster=None, max_retries=max_retries, args_only=True)
        name_, version = task_identifier(task)
        body = {
            "name": name,
            "kind": kind,
            "task": {"name": name_, "version": version, "input": spec.input, "display": type(task).__name__},
            "max_retries": max_retries,
            **triggers,
        }
        if _slug(cluster):
            body["cluster"] = _slug(cluster)
        return Automation.from_api(self._t.request("POST", "/automations", body))

    def create_cron_automation(
        self,
        name: str,
        task: CronTask,
        cron_schedules: str | builtins.list[str],
        cluster: Any = None,
        max_retries: int = 0,
    ) -> Automation:
        """An automation that submits `task` at each time of each schedule (5-field cron, UTC unless it
        starts with `CRON_TZ=<zone> `). Each scheduled time submits exactly one job."""
        schedules = [cron_schedules] if isinstance(cron_schedules, str) else list(cron_schedules)
        if not schedules:
            raise TaskValidationError("a cron automation needs at least one schedule")
        return self._create(name, task, "cron", cluster, max_retries, cron_schedules=schedules)

    def create_storage_event_automation(
        self,
        name: str,
        task: StorageEventTask,
        triggers: tuple[str, str] | builtins.list[tuple[str, str]],
        cluster: Any = None,
        max_retries: int = 0,
    ) -> Automation:
        """An automation that submits `task` once for each object created in a bucket under a key that
        matches the glob of a `(bucket, glob)` trigger (`*` matches any characters, `/` included)."""
        pairs = [triggers] if isinstance(triggers, tuple) else list(triggers)
        if not pairs or not all(isinstance(p, tuple | list) and len(p) == 2 for p in pairs):
            raise TaskValidationError("triggers must be (bucket, glob) pairs, at least one")
        return self._create(
            name, task, "storage", cluster, max_retries, storage_triggers=[[str(b), str(g)] for b, g in pairs]
        )

    def all(self) -> builtins.list[Automation]:
        return [Automation.from_api(a) for a in self._t.request("GET", "/automations")["automations"]]

    def find(self, automation: Automation | str | uuid.UUID) -> Automation:
        automation_id = automation.id if isinstance(automation, Automation) else str(automation)
        return Automation.from_api(self._t.request("GET", f"/automations/{automation_id}"))

    def delete(self, automation: Automation | str | uuid.UUID, cancel_jobs: bool = False) -> int:
        """Delete it: it fires no more. With `cancel_jobs`, its jobs still submitted or running are canceled
        too; returns how many were."""
        automation_id = automation.id if isinstance(automation, Automation) else str(automation)
        path = f"/automations/{automation_id}" + ("?cancel_jobs=true" if cancel_jobs else "")
        return int(self._t.request("DELETE", path)["canceled_jobs"])


__all__ = [
    "Automation",
    "AutomationClient",
    "CronTask",
    "CronTrigger",
    "StorageEventTask",
    "StorageEventTrigger",
    "StorageEventType",
]
