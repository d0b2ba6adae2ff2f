"""The `taskfleet dev` command, `run_all()`, and async tasks, from the outside."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from taskfleet import Client, ExecutionContext, Task

from tests.support import ROOT


class AsyncDouble(Task):
    x: int

    # The runner also runs coroutine execute() methods; Task declares the plain form, hence the override.
    async def execute(self, context: ExecutionContext) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        context.current_task.display = f"doubled {self.x} to {2 * self.x}"


class SpawnAsync(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([AsyncDouble(i) for i in range(self.n)])


def test_dev_command_serves_the_api_and_run_all_returns_when_nothing_is_left():
    # Given the local stack started by the CLI in its own process, on an ephemeral loopback port
    dev = subprocess.Popen(
        [sys.executable, "-m", "taskfleet.cli", "dev", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert dev.stdout is not None
        first = dev.stdout.readline()
        url = first.split("taskfleet local stack: ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        client = Client(url)
        job = client.jobs().submit("async", SpawnAsync(3))
        # When an in-process runner runs until idle
        runner = client.runner(tasks=[SpawnAsync, AsyncDouble], install_signal_handlers=False)
        runner.run_all()
        # Then it returned because the job's work is done, async tasks included
        assert client.jobs().find(job).state == "COMPLETED"
        assert runner.executed == 4
        assert sorted(t.display for t in client.jobs().tasks(job) if t.name == "AsyncDouble") == [
            "doubled 0 to 0",
            "doubled 1 to 2",
            "doubled 2 to 4",
        ]
    finally:
        dev.send_signal(signal.SIGTERM)
        assert dev.wait(timeout=30) == 0
