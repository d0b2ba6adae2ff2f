"""Automations: jobs started by cron schedules and by objects created in S3 buckets
(docs/architecture.md, "Automations").

An automation keeps a task (identifier, its arguments as JSON, display, retries) and its triggers. A firing
submits one job whose single task gets `{"args": <the arguments>, "trigger": <what fired>}` as its
input, with a client token made of the automation and the firing (its scheduled time, or the object's
bucket, key and version): a firing delivered twice submits one job.
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.schedules import Schedules
from ..settings import Settings
from .clusters import Clusters
from .contracts import TaskSpec, iso
from .cron import CronError, parse
from .errors import InvalidRequest, NotFound
from .jobs import Jobs
from .states import ACTIVE_JOB_STATES

AUTOMATIONS = "AUTOMATIONS"
KINDS = ("cron", "storage")
MAX_TRIGGERS = 20
MAX_GLOB_CHARS = 1_024
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# the largest trigger a firing adds to the input (an S3 key is at most 1,024 bytes)
LARGEST_TRIGGER = {
    "kind": "storage",
    "storage": "b" * 63,
    "type": "CREATED",
    "location": "k" * 1024,
    "version": "v" * 128,
}


@dataclass(frozen=True, kw_only=True)
class AutomationSpec:
    name: str
    kind: str
    task: TaskSpec  # its input: the task's arguments
    cluster: str | None = None
    max_retries: int = 0
    cron_schedules: tuple[str, ...] = ()
    storage_triggers: tuple[tuple[str, str], ...] = ()  # (bucket, glob)


def glob_matches(glob: str, key: str) -> bool:
    """Whether an object key matches a trigger's glob (`*` and `?` match any characters, `/` included;
    `[...]` is a character class), as fnmatch without case folding."""
    return fnmatch.fnmatchcase(key, glob)


def _check_glob(glob: str) -> str:
    if not isinstance(glob, str) or not glob or len(glob) > MAX_GLOB_CHARS or "\x00" in glob:
        raise InvalidRequest(f"glob {glob!r:.60} must be 1-{MAX_GLOB_CHARS} characters", code="InvalidGlob")
    if glob.count("[") != glob.count("]"):
        raise InvalidRequest(f"glob {glob!r:.60} has an unclosed [ character class", code="InvalidGlob")
    return glob


@dataclass(kw_only=True)
class Automations:
    table: Any  # dal.repository.Table
    clusters: Clusters
    jobs: Jobs
    schedules: Schedules
    settings: Settings
    clock: Callable[[], int]
    submit: Callable[..., Item]  # Submission.submit
    bucket_exists: Callable[[str], bool]

    # --- managing ------------------------------------------------------------------------------------

    def create(self, spec: AutomationSpec) -> Item:
        """Validate everything, write the automation, then its schedules (on AWS); nothing stays behind
        when something is refused."""
        item = self._validated(spec)
        self.table.db.put({"PK": AUTOMATIONS, "SK": f"A#{item['automation_id']}", "type": "automation", **item})
        created: list[str] = []
        try:
            for i, text in enumerate(spec.cron_schedules):
                expression, zone = parse(text).eventbridge() if self.settings.scheduler_group else (text, "UTC")
                name = self._schedule_name(item["automation_id"], i)
                self.schedules.create(name, expression, zone, {"automation_id": item["automation_id"], "schedule": i})
                created.append(name)
        except CronError as err:
            self._remove(item, created)
            raise InvalidRequest(str(err), code="InvalidCron") from None
        except Exception as err:
            self._remove(item, created)
            if "ValidationException" in type(err).__name__ + str(getattr(err, "response", "")):
                raise InvalidRequest(f"EventBridge Scheduler refused the schedule: {err}", code="InvalidCron") from None
            raise
        return item

    def _validated(self, spec: AutomationSpec) -> Item:
        if spec.kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {KINDS}")
        if not isinstance(spec.name, str) or not 1 <= len(spec.name) <= rules.MAX_JOB_NAME_CHARS:
            raise InvalidRequest(f"name must be 1-{rules.MAX_JOB_NAME_CHARS} characters")
        try:
            rules.check_task_name(spec.task.name)
            rules.parse_version(spec.task.version)
            text = rules.encode_input(spec.task.input)
            rules.encode_input({"args": spec.task.input, "trigger": LARGEST_TRIGGER})  # what a firing submits
        except rules.RuleViolation as err:
            raise InvalidRequest(f"{err} (with room for the trigger a firing adds)") from None
        if not 0 <= spec.max_retries <= rules.MAX_RETRIES_LIMIT:
            raise InvalidRequest(f"max_retries must be 0-{rules.MAX_RETRIES_LIMIT}")
        cluster = self.clusters.slug(spec.cluster or rules.DEFAULT_CLUSTER)
        schedules, triggers = self._triggers(spec)
        return {
            "automation_id": str(uuid.uuid4()),
            "name": spec.name,
            "kind": spec.kind,
            "task_name": spec.task.name,
            "task_version": spec.task.version,
            "task_input": text,
            "display": spec.task.display,
            "cluster": cluster,
            "max_retries": spec.max_retries,
            "cron_schedules": schedules,
            "storage_triggers": triggers,
            "created_at": self.clock(),
        }

    def _triggers(self, spec: AutomationSpec) -> tuple[list[str], list[dict[str, str]]]:
        if spec.kind == "cron":
            if not spec.cron_schedules or spec.storage_triggers:
                raise InvalidRequest("a cron automation needs cron_schedules (and no storage triggers)")
            if len(spec.cron_schedules) > MAX_TRIGGERS:
                raise InvalidRequest(f"at most {MAX_TRIGGERS} schedules per automation")
            for text in spec.cron_schedules:
                try:
                    schedule = parse(text)
                    if self.settings.scheduler_group:  # on AWS: it must have an EventBridge form too
                        schedule.eventbridge()
                except CronError as err:
                    raise InvalidRequest(str(err), code="InvalidCron") from None
            return list(spec.cron_schedules), []
        if not spec.storage_triggers or spec.cron_schedules:
            raise InvalidRequest("a storage event automation needs (bucket, glob) triggers (and no schedules)")
        if len(spec.storage_triggers) > MAX_TRIGGERS:
            raise InvalidRequest(f"at most {MAX_TRIGGERS} triggers per automation")
        triggers = []
        for bucket, glob in spec.storage_triggers:
            self._check_bucket(bucket)
            triggers.append({"bucket": bucket, "glob": _check_glob(glob)})
        return [], triggers

    def _check_bucket(self, bucket: str) -> None:
        known = self.settings.automation_buckets
        if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
            raise InvalidRequest(f"{bucket!r:.70} is not an S3 bucket name", code="UnknownBucket")
        if known and bucket not in known:
            raise InvalidRequest(
                f"bucket {bucket!r} sends no events to taskfleet; the deployment's buckets are {', '.join(known)}"
                " (add one to automation_buckets in cdk.json)",
                code="UnknownBucket",
            )
        if not known and self.settings.scheduler_group:  # deployed, and no bucket sends events
            raise InvalidRequest(
                "this deployment watches no bucket: name yours in automation_buckets in cdk.json", code="UnknownBucket"
            )
        if not known and not self.bucket_exists(bucket):
            raise InvalidRequest(f"bucket {bucket!r} does not exist", code="UnknownBucket")

    def _schedule_name(self, automation_id: str, index: int) -> str:
        return f"{self.settings.queue_prefix}-{automation_id}-{index}"[:64]

    def _remove(self, item: Item, schedule_names: Sequence[str]) -> None:
        for name in schedule_names:
            self.schedules.delete(name)
        self.table.db.delete(AUTOMATIONS, f"A#{item['automation_id']}")

    def get(self, automation_id: str) -> Item:
        item = self.table.db.get(AUTOMATIONS, f"A#{automation_id}") if rules.is_plausible_id(automation_id) else None
        if item is None:
            raise NotFound(f"automation {automation_id!r:.80} does not exist", code="AutomationNotFound")
        return item

    def all(self) -> list[Item]:
        return list(self.table.db.query_all(key_condition="#PK = :pk", values={":pk": AUTOMATIONS}))

    def delete(self, automation_id: str, *, cancel_jobs: bool = False) -> int:
        """Delete the automation (its schedules first, so it fires no more); with `cancel_jobs`, cancel its
        jobs still submitted or running. Returns how many jobs were canceled."""
        item = self.get(automation_id)
        self._remove(
            item, [self._schedule_name(automation_id, i) for i in range(len(item.get("cron_schedules") or ()))]
        )
        canceled = 0
        if cancel_jobs:
            cursor = None
            while True:
                page = self.jobs.list(
                    limit=500, cursor=cursor, automation_ids=[automation_id], states=ACTIVE_JOB_STATES
                )
                for job in page.items:
                    try:
                        self.jobs.cancel(str(job["job_id"]))
                        canceled += 1
                    except Exception:
                        pass
                cursor = page.cursor
                if not cursor:
                    break
        return canceled

    # --- firing --------------------------------------------------------------------------------------

    def fire_cron(self, automation_id: str, scheduled: datetime) -> Item | None:
        """The job of this scheduled time (submitted now, or the one submitted before); None if the
        automation is gone (a schedule firing while it is deleted)."""
        try:
            item = self.get(automation_id)
        except NotFound:
            return None
        moment = scheduled.astimezone(UTC).replace(microsecond=0)
        trigger = {"kind": "cron", "time": moment.isoformat().replace("+00:00", "Z")}
        return self._submit(item, trigger, f"cron:{moment.isoformat()}")

    def fire_storage(self, bucket: str, key: str, version: str, *, at: int | None = None) -> list[Item]:
        """One job per automation whose trigger matches this created object (idempotent per version);
        `at` (epoch ms), the object's creation: automations created after it are not fired (event times
        have whole seconds: an object of the automation's own second fires it)."""
        jobs, errors = [], []
        for item in self.all():
            if item.get("kind") != "storage" or (at is not None and int(item["created_at"]) >= at + 1000):
                continue
            if any(t["bucket"] == bucket and glob_matches(t["glob"], key) for t in item.get("storage_triggers") or ()):
                trigger = {"kind": "storage", "storage": bucket, "type": "CREATED", "location": key, "version": version}
                try:
                    jobs.append(self._submit(item, trigger, f"s3:{bucket}/{key}#{version}"))
                except Exception as err:
                    errors.append(err)
        if errors:  # the event is delivered again (and dead-lettered in the end): the jobs made are idempotent
            raise errors[0]
        return jobs

    def _submit(self, item: Item, trigger: dict[str, Any], firing: str) -> Item:
        spec = TaskSpec(
            name=item["task_name"],
            version=item["task_version"],
            input={"args": json.loads(item["task_input"]), "trigger": trigger},
            display=item.get("display"),
            max_retries=int(item.get("max_retries") or 0),
        )
        return self.submit(
            item["name"],
            [spec],
            cluster=item["cluster"],
            max_retries=int(item.get("max_retries") or 0),
            client_token=f"automation:{item['automation_id']}:{firing}",
            automation_id=item["automation_id"],
        )


def automation_view(item: Item) -> dict[str, Any]:
    return {
        "id": item["automation_id"],
        "name": item["name"],
        "kind": item["kind"],
        "task": {"name": item["task_name"], "version": item["task_version"], "display": item.get("display")},
        "args": json.loads(item["task_input"]),
        "cluster": item["cluster"],
        "max_retries": int(item.get("max_retries") or 0),
        "cron_schedules": list(item.get("cron_schedules") or ()),
        "storage_triggers": [dict(t) for t in item.get("storage_triggers") or ()],
        "created_at": iso(int(item["created_at"])),
    }
