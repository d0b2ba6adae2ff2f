"""The deployment's configuration: which clusters exist and what compute runs their runners.

It lives in cdk.json under the context key ``taskfleet`` (or is given on the command line as JSON:
``cdk synth -c 'taskfleet={...}'``). Parsing is strict: an unknown key is an error, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from taskfleet import rules

CONTEXT_KEY = "taskfleet"

# Queue names (docs/architecture.md, "Queue protocol"): a cluster's lanes are `<prefix>-<slug>--<key>.fifo`
# (key: 12 hex digits of the task identifier's hash), its DLQ `<prefix>-<slug>-dlq.fifo`. SQS allows 80
# characters of [A-Za-z0-9_-] (".fifo" included). Neither prefix nor slug may contain "--": it separates
# a slug from its lanes' keys, so that `<prefix>-<slug>--*` names one cluster's lanes and nothing else
# (no other cluster's lanes, no DLQ) in IAM policies.
_PREFIX = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_QUEUE_NAME_MAX = 80
_DLQ_SUFFIX = "-dlq.fifo"
_LANE_SEPARATOR = "--"
LANE_KEY_LENGTH = 12
# Clusters created at run time (`POST /clusters`) get the slug `slugify(name)[:30]-<6 hex digits>`.
RUNTIME_SLUG_MAX = 30 + 1 + 6
# The longest prefix with which the lanes of every runtime cluster fit SQS's 80 characters.
MAX_QUEUE_PREFIX = _QUEUE_NAME_MAX - len(f"-{'s' * RUNTIME_SLUG_MAX}{_LANE_SEPARATOR}{'0' * LANE_KEY_LENGTH}.fifo")

# Fargate's valid cpu -> memory (MiB) combinations (Linux).
_FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}
# SQS visibility timeout (= the lease) is at most 12 hours.
_MAX_LEASE_SECONDS = 12 * 3600
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


# Lambda keeps at least this much of the account's concurrency unreserved: reservations beyond
# `account_concurrency - 100` fail at deployment (PutFunctionConcurrency).
LAMBDA_UNRESERVED_MINIMUM = 100
# A new account's default concurrency quota ("Concurrent executions", Service Quotas).
DEFAULT_ACCOUNT_CONCURRENCY = 1000
FUNCTION_NAMES = ("jobs", "clusters", "runner", "sweeper", "automations", "connect")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Reserved concurrency per function. A reservation both guarantees that many concurrent executions and
# caps the function there, so it isolates the functions from each other: however many runners call, the
# runner function takes at most its 400 and cannot throttle a submit (jobs keeps 100) or the sweep that
# repairs leases and tickets every minute (sweeper keeps 5: one sweep a minute with a 55 s timeout, and
# room for a late one). The clusters function serves admin calls and each runner's start (GET /config,
# GET /clusters/<slug>): 20. 400 runner executions at about 100 ms a call are some 4,000 calls a second,
# above the API stage's throttle; the SDK retries a throttled call (429) with backoff. The automations
# function (its API and its firings, a handful a minute): 10. The connect function (Tilebox SDK clients, whose
# runners each hold one NextTask of up to about a second at a time): 50. In all 585 of a new account's 1,000,
# leaving 415 unreserved (Lambda demands at least 100) for the account's other functions.
DEFAULT_RESERVED_CONCURRENCY: dict[str, int | None] = {
    "runner": 400,
    "jobs": 100,
    "clusters": 20,
    "sweeper": 5,
    "automations": 10,
    "connect": 50,
}


# The demo's CPU task classes (sdk/taskfleet/examples/demo.py), what the default runner image can run.
DEMO_TASKS = tuple(
    f"taskfleet.examples.demo:{name}" for name in ("SurveyWorkflow", "FetchScene", "MakeTile", "PublishReport")
)


class ConfigError(ValueError):
    """The taskfleet deployment configuration is invalid."""


@dataclass(frozen=True)
class FargateCompute:
    """Runners as Fargate tasks: scale from `min_tasks` (0 = nothing runs at idle) to `max_tasks`."""

    cpu: int = 512
    memory: int = 1024
    min_tasks: int = 0
    max_tasks: int = 4
    # x86_64 builds the runner image natively on most deployers; arm64 is ~20% cheaper per vCPU-hour but
    # needs an arm64 (or emulating) Docker builder at deploy time.
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    # Fargate Spot: up to 70% cheaper; a reclaimed task gets SIGTERM and 2 minutes, the runner gives its
    # task back.
    spot: bool = False
    type: Literal["fargate"] = "fargate"

    def validate(self, where: str) -> None:
        if self.cpu not in _FARGATE_MEMORY:
            raise ConfigError(f"{where}: fargate cpu must be one of {sorted(_FARGATE_MEMORY)}, not {self.cpu}")
        if self.memory not in _FARGATE_MEMORY[self.cpu]:
            allowed = _FARGATE_MEMORY[self.cpu]
            raise ConfigError(
                f"{where}: fargate memory {self.memory} is not valid with cpu {self.cpu} "
                f"({allowed.start}-{allowed.stop - 1} MiB in steps of {allowed.step})"
            )
        _check_min_max(where, "tasks", self.min_tasks, self.max_tasks)
        if self.architecture not in ("x86_64", "arm64"):
            raise ConfigError(f"{where}: architecture must be x86_64 or arm64")


@dataclass(frozen=True)
class GpuCompute:
    """Runners on GPU EC2 instances (ECS-optimized Amazon Linux 2023 GPU AMI) of one instance type."""

    instance_type: str = "g4dn.xlarge"
    gpus_per_task: int = 1
    min_instances: int = 0
    max_instances: int = 2
    # Runner tasks; the capacity provider adds instances for them. Default: one task per instance.
    max_tasks: int | None = None
    # Per task: CPU units (1024 = 1 vCPU) and a hard memory limit in MiB. The defaults fit a
    # g4dn.xlarge (4 vCPU, 16 GiB) with room for the ECS agent.
    cpu: int = 2048
    memory: int = 12288
    # CUDA images are large; the AMI's default 30 GiB root volume fills up quickly.
    root_volume_gib: int = 100
    type: Literal["gpu"] = "gpu"

    @property
    def task_limit(self) -> int:
        return self.max_tasks if self.max_tasks is not None else self.max_instances

    def validate(self, where: str) -> None:
        if not re.fullmatch(r"[a-z0-9]+\.[a-z0-9]+", self.instance_type):
            raise ConfigError(f"{where}: instance_type {self.instance_type!r} is not an EC2 instance type")
        if self.gpus_per_task < 1:
            raise ConfigError(f"{where}: gpus_per_task must be at least 1")
        _check_min_max(where, "instances", self.min_instances, self.max_instances)
        if self.max_instances < 1 or self.task_limit < 1:
            raise ConfigError(f"{where}: max_instances and max_tasks must be at least 1")
        if self.cpu < 128 or self.memory < 512 or self.root_volume_gib < 30:
            raise ConfigError(f"{where}: cpu >= 128, memory >= 512 MiB and root_volume_gib >= 30 required")


@dataclass(frozen=True)
class ExternalCompute:
    """No ECS: runners are started on your own machines (on-prem, laptops, other clouds)."""

    type: Literal["external"] = "external"

    def validate(self, where: str) -> None:
        return None


Compute = FargateCompute | GpuCompute | ExternalCompute
_COMPUTE_TYPES: dict[str, type[Any]] = {"fargate": FargateCompute, "gpu": GpuCompute, "external": ExternalCompute}


@dataclass(frozen=True)
class ImageConfig:
    """The runner image, built from a Dockerfile at deploy time (`ContainerImage.from_asset`).

    `directory` is the build context relative to the repository root, `file` the Dockerfile relative to
    it. Build your own image `FROM` the default one to add your task code and its dependencies.
    """

    directory: str = "."
    file: str = "runner/Dockerfile"


@dataclass(frozen=True)
class ClusterConfig:
    slug: str
    compute: Compute = field(default_factory=FargateCompute)
    # The task classes the ECS runners register (`module:Class`); on-prem runners name theirs themselves.
    tasks: tuple[str, ...] = DEMO_TASKS
    image: ImageConfig = field(default_factory=ImageConfig)
    # Accepted, but read by nothing at present: the alarm on the age of a cluster's oldest ticket went with
    # the cluster's single queue. A cluster's tickets live in lanes created at run time, whose SQS metrics
    # no alarm fixed at synthesis can name (docs/deploy.md, "Observability").
    max_ticket_age_seconds: int = 3600

    @property
    def runs_on_ecs(self) -> bool:
        return not isinstance(self.compute, ExternalCompute)


@dataclass(frozen=True)
class OnPremConfig:
    """Credentials for runners outside AWS. A managed policy per cluster is always created."""

    # Principals (account ids or role/user ARNs) that may assume a runner role; empty = no role.
    trusted_principals: tuple[str, ...] = ()
    # Also create an IAM user per external cluster (create its access key yourself, see docs/deploy.md).
    create_users: bool = False


@dataclass(frozen=True)
class DeploymentConfig:
    # Stack name, Powertools service name and the prefix of named resources.
    name: str = "taskfleet"
    # Queue name prefix; every deployment in an account and region needs its own (at most 23 characters).
    queue_prefix: str = "taskfleet"
    lease_seconds: int = 60
    log_level: str = "INFO"
    metrics_namespace: str = "Taskfleet"
    # Table deletion protection (and RETAIN on stack deletion). Turn off for throw-away stacks only.
    deletion_protection: bool = True
    log_retention_days: int = 30
    # Alarm notifications go to an SNS topic; optionally subscribe an e-mail address.
    alarm_email: str | None = None
    # 0: runners live in public subnets with a public IP and no inbound rule (no NAT gateway, nothing
    # billed at idle). >= 1: runners live in private subnets behind that many NAT gateways.
    nat_gateways: int = 0
    function_memory_mb: int = 1024
    # X-Ray active tracing of the functions (Powertools Tracer). Off: no X-Ray cost, no trace segments.
    tracing: bool = False
    # Runner URLs: the runners' hot path without API Gateway ($1.00 less per million calls), one per cluster,
    # a function URL on the cluster's alias `cluster-<slug>` of the runner function, which only that
    # cluster's runner policy may invoke and which serves that cluster's paths only. Off: no alias, no URL,
    # runners use the API's /runner/<slug>/... routes, which each cluster's runner policy names exactly
    # (docs/deploy.md, "On-prem runners").
    runner_function_url: bool = True
    # A job's items expire (DynamoDB TTL on `expires_at`) this many days after their last change; 0: the
    # functions write no expiry and nothing expires (the table's TTL stays on).
    retention_days: int = 90
    # Clusters `POST /clusters` may create besides the declared ones (409 ClusterLimit beyond); 0: none.
    max_clusters: int = 100
    # Objects in the job caches' bucket (`context.job_cache`) expire this many days after they were
    # written (an S3 lifecycle rule); 0: never.
    cache_expiry_days: int = 30
    # S3 buckets whose object-created events start storage event automations (through EventBridge: turn on
    # "Amazon EventBridge" notifications on each bucket, docs/deploy.md "Automations").
    automation_buckets: tuple[str, ...] = ()
    # Reserved concurrency per function (jobs, clusters, runner, sweeper); a function left out keeps its
    # default, 0 or null leaves it unreserved; null for the whole key reserves nothing.
    reserved_concurrency: Mapping[str, int | None] | None = field(
        default_factory=lambda: dict(DEFAULT_RESERVED_CONCURRENCY), hash=False
    )
    # The account's Lambda concurrency quota in this region, to check that the reservations fit.
    account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY
    clusters: tuple[ClusterConfig, ...] = (ClusterConfig(slug="default"),)
    onprem: OnPremConfig = field(default_factory=OnPremConfig)

    @property
    def cluster_slugs(self) -> tuple[str, ...]:
        return tuple(c.slug for c in self.clusters)

    @property
    def reserved(self) -> dict[str, int]:
        """Each function's reserved concurrency; a function without a reservation is left out."""
        if self.reserved_concurrency is None:
            return {}
        merged = {**DEFAULT_RESERVED_CONCURRENCY, **self.reserved_concurrency}
        return {name: value for name, value in merged.items() if value}

    def lane_name(self, slug: str, key: str) -> str:
        """A lane: the queue of one task identifier in one cluster, created at run time by the functions."""
        return f"{self.queue_prefix}-{slug}{_LANE_SEPARATOR}{key}.fifo"

    def lane_pattern(self, slug: str) -> str:
        """The names of cluster `slug`'s lanes and nothing else (an IAM resource name pattern)."""
        return f"{self.queue_prefix}-{slug}{_LANE_SEPARATOR}*"

    def dlq_name(self, slug: str) -> str:
        return f"{self.queue_prefix}-{slug}{_DLQ_SUFFIX}"

    def validate(self) -> DeploymentConfig:  # noqa: PLR0912 - a flat list of independent checks, each with its own error
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,63}", self.name):
            raise ConfigError(f"name {self.name!r}: a letter, then letters, digits and '-' (CloudFormation)")
        if not _PREFIX.fullmatch(self.queue_prefix) or _LANE_SEPARATOR in self.queue_prefix:
            raise ConfigError(
                f"queue_prefix {self.queue_prefix!r}: letters, digits and single inner '-' only ('--' separates "
                "a cluster's slug from its lanes' keys in queue names)"
            )
        if len(self.queue_prefix) > MAX_QUEUE_PREFIX:
            raise ConfigError(
                f"queue_prefix {self.queue_prefix!r} has {len(self.queue_prefix)} characters, at most "
                f"{MAX_QUEUE_PREFIX} fit: a lane of a cluster created at run time is named "
                f"<prefix>-<slug of up to {RUNTIME_SLUG_MAX}>--<{LANE_KEY_LENGTH} hex digits>.fifo, and SQS "
                f"allows {_QUEUE_NAME_MAX} characters"
            )
        if not 1 <= self.lease_seconds <= _MAX_LEASE_SECONDS:
            raise ConfigError(f"lease_seconds must be 1..{_MAX_LEASE_SECONDS} (the SQS visibility timeout)")
        if self.log_level not in _LOG_LEVELS:
            raise ConfigError(f"log_level must be one of {_LOG_LEVELS}")
        if self.log_retention_days not in _RETENTION_DAYS:
            raise ConfigError(f"log_retention_days must be one of {_RETENTION_DAYS}")
        if not 0 <= self.nat_gateways <= 3:
            raise ConfigError("nat_gateways must be 0..3")
        if not 128 <= self.function_memory_mb <= 10240:
            raise ConfigError("function_memory_mb must be 128..10240")
        if not re.fullmatch(r"[A-Za-z0-9_./#:-]{1,255}", self.metrics_namespace) or self.metrics_namespace.startswith(
            "AWS/"
        ):
            raise ConfigError(f"metrics_namespace {self.metrics_namespace!r} is not a custom namespace")
        self._validate_limits()
        slugs = self.cluster_slugs
        if "default" not in slugs:
            raise ConfigError("clusters must include the 'default' cluster")
        if len(set(slugs)) != len(slugs):
            raise ConfigError(f"cluster slugs must be unique: {list(slugs)}")
        for cluster in self.clusters:
            where = f"cluster {cluster.slug!r}"
            try:
                rules.check_slug(cluster.slug)  # what the functions accept in /clusters/<slug>, /runner/<slug>
            except rules.RuleViolation as exc:
                raise ConfigError(f"{where}: {exc}") from None
            lane = self.lane_name(cluster.slug, "0" * LANE_KEY_LENGTH)
            if len(lane) > _QUEUE_NAME_MAX:
                raise ConfigError(
                    f"{where}: its lanes' names ({lane!r}) would exceed {_QUEUE_NAME_MAX} characters: "
                    "shorten the slug or queue_prefix"
                )
            if cluster.runs_on_ecs and not cluster.tasks:
                raise ConfigError(f"{where}: an ECS cluster needs at least one task class in 'tasks'")
            if cluster.max_ticket_age_seconds < 60:
                raise ConfigError(f"{where}: max_ticket_age_seconds must be at least 60")
            cluster.compute.validate(where)
        return self

    def _validate_limits(self) -> None:
        _check_int("retention_days", self.retention_days)
        _check_int("max_clusters", self.max_clusters)
        _check_int("cache_expiry_days", self.cache_expiry_days)
        buckets = self.automation_buckets
        if isinstance(buckets, str) or not all(isinstance(b, str) and _BUCKET_NAME.match(b) for b in buckets):
            raise ConfigError(f"automation_buckets: a list of S3 bucket names, got {buckets!r}")
        _check_int("account_concurrency", self.account_concurrency)
        reserved = self.reserved_concurrency
        if reserved is None:
            return
        if not isinstance(reserved, Mapping):
            raise ConfigError(
                "reserved_concurrency: an object such as "
                f"{json.dumps(DEFAULT_RESERVED_CONCURRENCY)}, or null to reserve nothing"
            )
        unknown = set(reserved) - set(FUNCTION_NAMES)
        if unknown:
            raise ConfigError(
                f"reserved_concurrency: unknown function(s) {sorted(unknown)}; allowed: {list(FUNCTION_NAMES)}"
            )
        for name, value in reserved.items():
            if value is not None:
                _check_int(f"reserved_concurrency.{name}", value, "(0 or null: unreserved)")
        total = sum(self.reserved.values())
        limit = self.account_concurrency - LAMBDA_UNRESERVED_MINIMUM
        if total > limit:
            raise ConfigError(
                f"reserved_concurrency reserves {total} concurrent executions in all "
                f"({', '.join(f'{k} {v}' for k, v in self.reserved.items())}), but Lambda keeps "
                f"{LAMBDA_UNRESERVED_MINIMUM} of the account's {self.account_concurrency} unreserved, so at "
                f"most {max(limit, 0)} can be reserved: lower the reservations (0 or null: unreserved), or "
                "raise account_concurrency after Service Quotas raised the account's limit"
            )


def _check_int(key: str, value: Any, note: str = "") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{key}: a non-negative integer {note}".rstrip() + f", got {value!r}")


def _check_min_max(where: str, what: str, low: int, high: int) -> None:
    if low < 0 or high < low:
        raise ConfigError(f"{where}: need 0 <= min_{what} <= max_{what} (got {low}, {high})")


def _build(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    try:
        return cls(**dict(raw))
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _compute(raw: Any, where: str) -> Compute:
    if not isinstance(raw, Mapping) or raw.get("type") not in _COMPUTE_TYPES:
        raise ConfigError(f"{where}.compute: 'type' must be one of {sorted(_COMPUTE_TYPES)}")
    compute: Compute = _build(_COMPUTE_TYPES[raw["type"]], raw, f"{where}.compute")
    for f in fields(compute):
        value = getattr(compute, f.name)
        if (
            f.type in ("int", "int | None")
            and value is not None
            and (not isinstance(value, int) or isinstance(value, bool))
        ):
            raise ConfigError(f"{where}.compute.{f.name}: expected an integer, got {value!r}")
    return compute


def _cluster(raw: Any, index: int) -> ClusterConfig:
    where = f"clusters[{index}]"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("slug"), str):
        raise ConfigError(f"{where}: needs a 'slug'")
    values = dict(raw)
    if "compute" in values:
        values["compute"] = _compute(values["compute"], where)
    if "tasks" in values:
        tasks = values["tasks"]
        if isinstance(tasks, str) or not all(isinstance(t, str) and ":" in t for t in tasks):
            raise ConfigError(f"{where}.tasks: a list of 'module:Class' strings")
        values["tasks"] = tuple(tasks)
    if "image" in values:
        values["image"] = _build(ImageConfig, values["image"], f"{where}.image")
    return _build(ClusterConfig, values, where)


def parse_config(raw: Mapping[str, Any] | str | None) -> DeploymentConfig:
    """Build and validate the configuration from cdk.json context (an object, or a JSON string)."""
    if raw is None:
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"context '{CONTEXT_KEY}' is not valid JSON: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context '{CONTEXT_KEY}' must be an object")
    values = {k: v for k, v in raw.items() if not k.startswith("//")}  # "//": comments in cdk.json
    if "clusters" in values:
        clusters = values["clusters"]
        if not isinstance(clusters, list) or not clusters:
            raise ConfigError("clusters: a non-empty list")
        values["clusters"] = tuple(_cluster(c, i) for i, c in enumerate(clusters))
    if isinstance(values.get("automation_buckets"), list):
        values["automation_buckets"] = tuple(values["automation_buckets"])
    if "onprem" in values:
        onprem = dict(values["onprem"]) if isinstance(values["onprem"], Mapping) else values["onprem"]
        if isinstance(onprem, dict) and "trusted_principals" in onprem:
            onprem["trusted_principals"] = tuple(onprem["trusted_principals"])
        values["onprem"] = _build(OnPremConfig, onprem, "onprem")
    config: DeploymentConfig = _build(DeploymentConfig, values, "taskfleet")
    return config.validate()
