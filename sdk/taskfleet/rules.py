"""Pure rules shared by the orchestrator, the SDK and the runner. No imports beyond the standard library:
the SDK validates with exactly the rules the API enforces, before it sends anything."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

# --- limits (docs/architecture.md, "Limits") -------------------------------------------------------
MAX_INPUT_BYTES = 64 * 1024  # serialized JSON of one task's input
INLINE_INPUT_BYTES = 512  # larger inputs go to their own item so state updates stay at 1 write unit
MAX_SUBTASKS_PER_REPORT = 10_000
MAX_ROOT_TASKS = 1_000
MAX_DEPENDENCIES = 1_000
MAX_DISPLAY_CHARS = 1_024
MAX_PROGRESS_LABELS = 1_000  # progress indicators per task
MAX_PROGRESS_LABEL_CHARS = 100
MAX_PROGRESS_COUNT = 2**53  # what a JSON number holds exactly
MAX_FAILURE_CHARS = 4_096
MAX_NAME_CHARS = 256
MAX_JOB_NAME_CHARS = 256
MAX_RETRIES_LIMIT = 100
MAX_LEASE_LOSSES = 10  # a task whose runner dies more often than this is FAILED
LATCH_BUCKET = 100  # latches with more members are split into bucket items
SPEC_CHUNK = 100  # deferred subtasks' specs are stored in items of this many siblings
RUNNER_BATCH = 10  # reports and claims in one runner call (one receive returns at most 10 tickets)
DISPATCH_WINDOW = 1_000  # tickets of a larger fan-out go out as earlier subtasks complete (a multiple of 100)

# fullmatch, not match with "$": "$" also matches before a trailing newline ("v1.2\n" is no version)
_VERSION = re.compile(r"v(\d{1,6})\.(\d{1,6})")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,38}[a-z0-9]|[a-z0-9]")

DEFAULT_CLUSTER = "default"

# Namespace for deterministic ids (uuid5).
_NS = uuid.UUID("7d1e5c0a-4b7e-4a57-9d0c-6f1f3a9e2b10")


class RuleViolation(ValueError):
    """Input that breaks a documented rule. The message says what to fix."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int

    def __str__(self) -> str:
        return f"v{self.major}.{self.minor}"


def parse_version(text: str) -> Version:
    match = _VERSION.fullmatch(text) if isinstance(text, str) else None
    if not match:
        raise RuleViolation(f"version {text!r} must look like 'v1.2' (v<major>.<minor>)")
    return Version(int(match.group(1)), int(match.group(2)))


def check_task_name(name: str) -> str:
    """A task identifier's name: 1-256 printable characters without whitespace (a class name, or a path-like
    name such as "tilebox.com/flood/Download", as the reference writes them)."""
    if (
        not isinstance(name, str)
        or not (1 <= len(name) <= MAX_NAME_CHARS)
        or not name.isprintable()
        or any(c.isspace() for c in name)
    ):
        raise RuleViolation(
            f"task name must be 1-{MAX_NAME_CHARS} printable characters without spaces, got {name!r:.80}"
        )
    return name


def can_run(registered: str, submitted: str) -> bool:
    """A runner whose registered version is `registered` may run a task submitted as `submitted`:
    same major, and the runner's minor is at least the submitted minor."""
    try:
        have, want = parse_version(registered), parse_version(submitted)
    except RuleViolation:
        return False
    return have.major == want.major and have.minor >= want.minor


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug) or "--" in slug:
        raise RuleViolation(
            f"cluster slug {slug!r:.60} must be 1-40 lowercase letters, digits or single '-' inside"
            " (no '--': it separates a cluster's slug from its lanes' keys in queue names)"
        )
    return slug


def slugify(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30].strip("-")
    return base or "cluster"


def encode_input(value: Any) -> str:
    """The canonical JSON text of a task input; raises RuleViolation when it cannot be sent."""
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise RuleViolation(f"task input is not JSON-serializable: {err}") from None
    except RecursionError:
        raise RuleViolation("task input is nested too deeply to serialize") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate (e.g. "\ud800" in the JSON) is no valid Unicode text
        raise RuleViolation("task input contains a string that is not valid Unicode (a lone surrogate)") from None
    if size > MAX_INPUT_BYTES:
        raise RuleViolation(f"task input is {size} bytes serialized; the limit is {MAX_INPUT_BYTES} bytes")
    return text


def check_dependencies(index: int, depends_on: list[int]) -> list[int]:
    """Dependencies name earlier siblings (by index), so a cycle cannot be expressed."""
    if len(depends_on) > MAX_DEPENDENCIES:
        raise RuleViolation(f"a task may depend on at most {MAX_DEPENDENCIES} tasks")
    for dep in depends_on:
        if not isinstance(dep, int) or isinstance(dep, bool) or not (0 <= dep < index):
            raise RuleViolation(
                f"task {index} depends on {dep!r}: dependencies must be tasks submitted earlier "
                "in the same call or execution"
            )
    return sorted(set(depends_on))


_ID_TEXT = re.compile(r"[A-Za-z0-9-]{1,64}")


def is_plausible_id(text: str) -> bool:
    """Whether `text` can be a job or task id (uuid strings); anything else exists nowhere."""
    return isinstance(text, str) and bool(_ID_TEXT.fullmatch(text))


def root_task_id(job_id: str, index: int) -> str:
    return str(uuid.uuid5(_NS, f"{job_id}/root/{index}"))


def child_task_id(parent_id: str, attempt: int, index: int) -> str:
    return str(uuid.uuid5(_NS, f"{parent_id}/{attempt}/{index}"))


def job_id_for_token(client_token: str) -> str:
    return str(uuid.uuid5(_NS, f"token/{client_token}"))


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
