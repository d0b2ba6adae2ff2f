"""Runner subprocesses. Two kinds, kept apart because they differ on purpose:

- `Runners` (the e2e tests): runs tests/e2e/workflows.py on any cluster per start, tasks write to
  $TASKFLEET_TEST_DIR, output goes to the test's output, and teardown is a SIGKILL;
- `Fleet` (the fault scenarios): bound to one cluster, runs tests/support/fault_tasks.py, logs each runner
  to a file, SIGKILLs busy runners on demand (recording when) and stops with SIGTERM.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support import ROOT

E2E = ROOT / "tests" / "e2e"
FAULT_TASKS = ("Pipeline", "Split", "Work", "Leaf", "Flaky", "Broken")


class Runners:
    """Runner subprocesses of the e2e tests (tests/e2e/workflows.py, importable as `workflows`)."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self, cluster: str, *tasks: str, grace: float = 20.0, until_idle: bool = False
    ) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "TASKFLEET_TEST_DIR": str(self.workdir),
            "PYTHONPATH": os.pathsep.join([str(E2E), os.environ.get("PYTHONPATH", "")]),
        }
        args = [
            sys.executable,
            "-m",
            "taskfleet_runner",
            "--url",
            self.url,
            "--cluster",
            cluster,
            "--grace",
            str(grace),
        ]
        if until_idle:
            args.append("--until-idle")
        proc = subprocess.Popen([*args, *[f"workflows:{t}" for t in tasks]], env=env)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=10)


class Fleet:
    """Runner subprocesses on one cluster, running tests.support.fault_tasks."""

    def __init__(self, stack: Any, cluster: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.stack, self.cluster, self.workdir = stack, cluster, workdir
        self.env = {
            **os.environ,
            "TASKFLEET_FAULTS_DIR": str(workdir),
            "TASKFLEET_LOG_LEVEL": "ERROR",
            # stops wait for open receives: a 5 s poll keeps the scenarios' many stops short
            "TASKFLEET_LONG_POLL_SECONDS": "5",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            **(env or {}),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.kills: dict[int, float] = {}
        self._n = 0

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            self._n += 1
            log = open(self.workdir / f"runner-{self._n}.log", "wb")  # noqa: SIM115 - lives with the process
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "taskfleet_runner",
                        "--url",
                        self.stack.url,
                        "--cluster",
                        self.cluster,
                        "--grace",
                        "5",
                        *[f"tests.support.fault_tasks:{t}" for t in FAULT_TASKS],
                    ],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.kills[proc.pid] = time.time()
        (self.workdir / f"busy-{proc.pid}").unlink(missing_ok=True)

    def kill_busy(self, rng: random.Random) -> bool:
        """SIGKILL one runner that is executing a task right now; start a replacement."""
        busy = [p for p in self.live() if (self.workdir / f"busy-{p.pid}").exists()]
        if not busy:
            return False
        self.kill(rng.choice(busy))
        self.start()
        return True

    def kill_all(self) -> None:
        for proc in self.live():
            self.kill(proc)

    def stop(self) -> None:
        for proc in self.live():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
