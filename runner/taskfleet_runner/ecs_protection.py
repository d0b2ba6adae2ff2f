"""ECS task scale-in protection, held while the runner executes a task.

A runner on ECS protects its own task when it goes from idle to busy, so that a scale-in (the queue
backlog dropped, CPU went down) never stops a task in the middle of a user's work, and releases the
protection when it goes idle again, so that idle runners can be scaled in. It talks to the ECS agent
inside the task: `PUT $ECS_AGENT_URI/task-protection/v1/state` with
`{"ProtectionEnabled": true, "ExpiresInMinutes": N}`; the agent calls ECS with the task role (which needs
ecs:UpdateTaskProtection).

Protection expires after N minutes (TASKFLEET_ECS_PROTECTION_MINUTES, default 60); while the runner stays
busy it renews it at half-time, so a task longer than N minutes stays protected. Failures never reach
the runner loop: they are logged, and the runner carries on unprotected (as it would outside ECS).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("taskfleet.runner.ecs")

AGENT_URI_ENV = "ECS_AGENT_URI"
MINUTES_ENV = "TASKFLEET_ECS_PROTECTION_MINUTES"
DEFAULT_MINUTES = 60
MAX_MINUTES = 2880  # ECS limit (48 hours)
# The agent answers locally; a slow answer must not hold up the runner for long.
TIMEOUT_SECONDS = 5.0


class EcsTaskProtection:
    """Scale-in protection for the ECS task this process runs in (no-op without an agent URI)."""

    def __init__(
        self, agent_uri: str | None, *, minutes: int = DEFAULT_MINUTES, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        self.agent_uri = agent_uri.rstrip("/") if agent_uri else None
        self.minutes = max(1, min(MAX_MINUTES, int(minutes)))
        self.timeout = timeout
        self._busy = False
        self._lock = threading.Lock()
        self._renewal: threading.Timer | None = None

    @property
    def protected(self) -> bool:
        """Whether the runner is busy (and protection was asked for)."""
        return self._busy

    def busy(self) -> None:
        """The runner starts a task: protect the ECS task (once per idle -> busy transition)."""
        with self._lock:
            if self._busy:
                return
            self._busy = True
            self._set(True)
            self._schedule_renewal()

    def idle(self) -> None:
        """The runner has no task: release the protection (once per busy -> idle transition)."""
        with self._lock:
            if not self._busy:
                return
            self._busy = False
            self._cancel_renewal()
            self._set(False)

    def close(self) -> None:
        self.idle()

    # --- internals -------------------------------------------------------------------------------

    def _renew(self) -> None:
        with self._lock:
            if not self._busy:
                return
            self._set(True)
            self._schedule_renewal()

    def _schedule_renewal(self) -> None:
        self._cancel_renewal()
        if self.agent_uri is None:
            return
        timer = threading.Timer(self.minutes * 60 / 2, self._renew)
        timer.daemon = True
        timer.name = "ecs-protection-renewal"
        timer.start()
        self._renewal = timer

    def _cancel_renewal(self) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            self._renewal = None

    def _set(self, enabled: bool) -> bool:
        if self.agent_uri is None:
            return False
        body: dict[str, Any] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.minutes
        request = urllib.request.Request(
            f"{self.agent_uri}/task-protection/v1/state",
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            log.warning("ECS task protection %s failed: HTTP %s %s", _verb(enabled), err.code, _error_text(err))
            return False
        except (OSError, ValueError) as err:  # URLError, timeouts, connection refused, bad JSON
            log.warning("ECS task protection %s failed: %s", _verb(enabled), err)
            return False
        if isinstance(answer, dict) and answer.get("failure"):
            log.warning("ECS task protection %s failed: %s", _verb(enabled), answer["failure"])
            return False
        log.debug("ECS task protection %s", _verb(enabled))
        return True


def from_environment() -> EcsTaskProtection | None:
    """The protection for this ECS task, or None when not running on ECS (no ECS_AGENT_URI)."""
    agent_uri = os.environ.get(AGENT_URI_ENV)
    if not agent_uri:
        return None
    try:
        minutes = int(os.environ.get(MINUTES_ENV, DEFAULT_MINUTES))
    except ValueError:
        log.warning("%s is not an integer; using %d minutes", MINUTES_ENV, DEFAULT_MINUTES)
        minutes = DEFAULT_MINUTES
    return EcsTaskProtection(agent_uri, minutes=minutes)


def _verb(enabled: bool) -> str:
    return "enable" if enabled else "release"


def _error_text(err: urllib.error.HTTPError) -> str:
    try:
        return err.read(500).decode("utf-8", "replace")
    except OSError:
        return ""
