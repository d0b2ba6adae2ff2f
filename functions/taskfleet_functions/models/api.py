"""Wire models of the orchestrator API (request bodies). Responses are plain dicts built in views.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from taskfleet import rules

from ..orchestrator.contracts import Claim, DeferredRef, Report, TaskSpec
from ..orchestrator.states import Outcome

_ID = Field(min_length=1, max_length=64)
# A lease token: a secret the runner makes for each claim (secrets.token_urlsafe(32) is 43 characters).
_LEASE = Field(min_length=32, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, defer_build=True)


class TaskSpecIn(Strict):
    name: str = Field(min_length=1, max_length=rules.MAX_NAME_CHARS)
    version: str = Field(default="v0.0", max_length=16)
    input: Any = None
    depends_on: list[int] = Field(default_factory=list, max_length=rules.MAX_DEPENDENCIES)
    cluster: str | None = Field(default=None, max_length=40)
    max_retries: int = Field(default=0, ge=0, le=rules.MAX_RETRIES_LIMIT)
    display: str | None = Field(default=None, max_length=rules.MAX_DISPLAY_CHARS)
    optional: bool = False  # a failure does not fail the job (FAILED_OPTIONAL)

    def to_spec(self) -> TaskSpec:
        return TaskSpec(
            name=self.name,
            version=self.version,
            input=self.input,
            depends_on=tuple(self.depends_on),
            cluster=self.cluster,
            max_retries=self.max_retries,
            display=self.display,
            optional=self.optional,
        )


class SubmitJobIn(Strict):
    name: str = Field(min_length=1, max_length=rules.MAX_JOB_NAME_CHARS)
    tasks: list[TaskSpecIn] = Field(min_length=1, max_length=rules.MAX_ROOT_TASKS)
    cluster: str | None = Field(default=None, max_length=40)
    max_retries: int = Field(default=0, ge=0, le=rules.MAX_RETRIES_LIMIT)
    client_token: str | None = Field(default=None, min_length=1, max_length=128)


class AutomationIn(Strict):
    name: str = Field(min_length=1, max_length=rules.MAX_JOB_NAME_CHARS)
    kind: Literal["cron", "storage"]
    task: TaskSpecIn  # its input: the task's arguments (the trigger is added when it fires)
    cluster: str | None = Field(default=None, max_length=40)
    max_retries: int = Field(default=0, ge=0, le=rules.MAX_RETRIES_LIMIT)
    cron_schedules: list[str] = Field(default_factory=list, max_length=20)
    storage_triggers: list[tuple[str, str]] = Field(default_factory=list, max_length=20)  # (bucket, glob)


class RetryIn(Strict):
    # the same token on a request sent again (its answer lost) gets the first one's answer, not a 409
    client_token: str | None = Field(default=None, min_length=1, max_length=128)


class CreateClusterIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)
    slug: str | None = Field(default=None, min_length=1, max_length=40)


class UpdateClusterIn(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=1000)


class CreateKeyIn(Strict):
    # the role and the lease are checked by orchestrator/keys.py (which says why), the lengths here
    role: str = Field(min_length=1, max_length=32)
    cluster: str | None = Field(default=None, min_length=1, max_length=40)  # runner keys: the one cluster
    lease_seconds: int | None = None  # runner keys: the lease of their claims (default: the deployment's)
    description: str | None = Field(default=None, max_length=200)


class FailureIn(Strict):
    message: str = Field(default="", max_length=64 * 1024)
    traceback: str | None = Field(default=None, max_length=64 * 1024)


class ProgressIn(Strict):
    label: str | None = Field(default=None, max_length=rules.MAX_PROGRESS_LABEL_CHARS)
    total: int = Field(ge=0, le=rules.MAX_PROGRESS_COUNT)
    done: int = Field(ge=0, le=rules.MAX_PROGRESS_COUNT)


class ReportIn(Strict):
    task_id: str = _ID
    job_id: str = _ID
    attempt: int = Field(ge=1, le=1_000_000)
    lease: str = _LEASE
    outcome: Literal["computed", "failed", "released"]
    display: str | None = Field(default=None, max_length=64 * 1024)
    subtasks: list[TaskSpecIn] = Field(default_factory=list, max_length=rules.MAX_SUBTASKS_PER_REPORT)
    failure: FailureIn | None = None
    progress: list[ProgressIn] = Field(default_factory=list, max_length=rules.MAX_PROGRESS_LABELS)
    # a released task that never started (claimed with others, given back before its turn): not an attempt
    unstarted: bool = False

    @model_validator(mode="after")
    def _unstarted_only_released(self) -> ReportIn:
        if self.unstarted and self.outcome != "released":
            raise ValueError("only a released task can be unstarted")
        return self

    @field_validator("progress")
    @classmethod
    def _distinct_labels(cls, progress: list[ProgressIn]) -> list[ProgressIn]:
        labels = [p.label or "" for p in progress]
        if len(set(labels)) != len(labels):
            raise ValueError("progress labels must be distinct")
        return progress

    def to_report(self, cluster: str) -> Report:
        return Report(
            task_id=self.task_id,
            job_id=self.job_id,
            attempt=self.attempt,
            cluster=cluster,
            lease=self.lease,
            outcome=Outcome(self.outcome),
            display=self.display,
            subtasks=tuple(s.to_spec() for s in self.subtasks),
            failure_message=self.failure.message if self.failure else None,
            failure_traceback=self.failure.traceback if self.failure else None,
            progress=tuple((p.label or "", p.total, p.done) for p in self.progress),
            unstarted=self.unstarted,
        )


class ClaimIn(Strict):
    task_id: str = _ID
    job_id: str = _ID
    lease: str = _LEASE
    # the ticket's (parent id, parent attempt, index) of a deferred subtask, passed through by the runner
    ref: tuple[str, int, int] | None = None

    @field_validator("ref")
    @classmethod
    def _check_ref(cls, ref: tuple[str, int, int] | None) -> tuple[str, int, int] | None:
        if ref is not None and not (
            1 <= len(ref[0]) <= 64 and 0 <= ref[1] <= 1_000_000 and 0 <= ref[2] < rules.MAX_SUBTASKS_PER_REPORT
        ):
            raise ValueError("ref must be [parent task id, parent attempt, subtask index]")
        return ref

    def to_claim(self, cluster: str) -> Claim:
        return Claim(
            job_id=self.job_id,
            task_id=self.task_id,
            cluster=cluster,
            lease=self.lease,
            ref=DeferredRef(*self.ref) if self.ref is not None else None,
        )


class RunnerNextIn(Strict):
    """A runner's call: report finished tasks and claim the next ones. `report` and `claim` name one each;
    `reports` and `claims` up to RUNNER_BATCH each (docs/architecture.md, "Runner loop": batches)."""

    runner_id: str = Field(min_length=1, max_length=128)
    report: ReportIn | None = None
    claim: ClaimIn | None = None
    reports: list[ReportIn] | None = Field(default=None, max_length=rules.RUNNER_BATCH)
    claims: list[ClaimIn] | None = Field(default=None, max_length=rules.RUNNER_BATCH)

    @model_validator(mode="after")
    def _one_form_each(self) -> RunnerNextIn:
        if self.report is not None and self.reports is not None:
            raise ValueError("give either report or reports, not both")
        if self.claim is not None and self.claims is not None:
            raise ValueError("give either claim or claims, not both")
        reports = self.all_reports()
        if len({r.task_id for r in reports}) != len(reports):
            raise ValueError("reports must name distinct tasks")
        claims = self.all_claims()
        if len({c.task_id for c in claims}) != len(claims):
            raise ValueError("claims must name distinct tasks")
        if sum(len(r.subtasks) for r in reports) > rules.MAX_SUBTASKS_PER_REPORT:
            raise ValueError(f"the reports of one call may submit at most {rules.MAX_SUBTASKS_PER_REPORT} subtasks")
        return self

    def all_reports(self) -> list[ReportIn]:
        return [self.report] if self.report is not None else list(self.reports or ())

    def all_claims(self) -> list[ClaimIn]:
        return [self.claim] if self.claim is not None else list(self.claims or ())


class ExtendIn(Strict):
    runner_id: str = Field(min_length=1, max_length=128)
    task_id: str = _ID
    job_id: str = _ID
    attempt: int = Field(ge=1, le=1_000_000)
    lease: str = _LEASE


class LanesIn(Strict):
    """A runner's registered task identifiers, as [name, version] pairs."""

    runner_id: str = Field(min_length=1, max_length=128)
    tasks: list[tuple[str, str]] = Field(min_length=1, max_length=200)

    @field_validator("tasks")
    @classmethod
    def _check_tasks(cls, tasks: list[tuple[str, str]]) -> list[tuple[str, str]]:
        for name, version in tasks:
            rules.check_task_name(name)
            rules.parse_version(version)
        return tasks
