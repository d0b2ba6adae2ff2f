"""What a new user meets in the first hour (issue "The first hour"): mistakes caught where they are made,
one-line errors from the runner command, and a runner that says what it does."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from taskfleet import (
    Client,
    ConfigurationError,
    ConflictError,
    DuplicateTaskError,
    ExecutionContext,
    InvalidRequestError,
    Task,
    TaskValidationError,
)

from tests.support.waits import job_done, wait_until


def test_an_execute_without_the_context_parameter_is_refused_when_the_class_is_defined():
    with pytest.raises(TaskValidationError, match=r"execute\(self\) must take the execution context"):

        class TileboxStyle(Task):  # the reference's own signature takes the context too
            def execute(self) -> None:  # type: ignore[override, unused-ignore]
                pass


def test_a_runner_registers_one_version_of_each_task_name(client):
    class Old(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "Resize", "v1.2"

        def execute(self, context: ExecutionContext) -> None:
            pass

    class New(Old):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "Resize", "v1.3"

    with pytest.raises(DuplicateTaskError, match="share the task name 'Resize'"):
        client.runner(tasks=[Old, New], install_signal_handlers=False)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("TASKFLEET_URL", "PYTHONPATH", "TASKFLEET_LOG_LEVEL")}
    return subprocess.run(
        [sys.executable, "-m", "taskfleet.cli", "runner", *args],
        check=False,
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def task_module(tmp_path: Path) -> Path:
    """A user's task module in a folder of its own (not on any path)."""
    (tmp_path / "mytasks.py").write_text(
        "from taskfleet import ExecutionContext, Task\n\n"
        "class Hello(Task):\n"
        "    name: str\n\n"
        "    def execute(self, context: ExecutionContext) -> None:\n"
        "        context.current_task.display = f'hello {self.name}'\n"
    )
    return tmp_path


def one_line_error(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in lines[0], lines[0]


def test_the_runner_command_says_in_one_line_what_is_wrong(stack, task_module: Path):
    one_line_error(run_cli("mytasks:Hello", cwd=task_module), "TASKFLEET_URL")
    one_line_error(run_cli("--url", "http://127.0.0.1:9", "mytasks:Hello", cwd=task_module), "127.0.0.1:9")
    one_line_error(
        run_cli("--url", stack.url, "--cluster", "no-such-cluster", "mytasks:Hello", cwd=task_module),
        "no-such-cluster",
    )


def test_a_runner_started_beside_its_module_imports_it_and_logs_each_task(stack, client, cluster, task_module):
    # Given a task module in the working directory (no PYTHONPATH) and a queued job
    job = client.jobs().submit("hello", client_task(task_module), cluster=cluster)
    # When the runner command runs there until idle, at its default log level
    done = run_cli("--url", stack.url, "--cluster", cluster, "--until-idle", "mytasks:Hello", cwd=task_module)
    # Then it ran the task and said so: one line when it started, one for the task (never its input)
    assert done.returncode == 0, done.stderr
    assert client.jobs().find(job).state == "COMPLETED"
    assert f"for {stack.url}, cluster {cluster}: Hello v0.0" in done.stderr
    assert "task Hello " in done.stderr and "(attempt 1) computed in" in done.stderr
    assert "world" not in done.stderr


def client_task(folder: Path) -> Task:
    sys.path.insert(0, str(folder))
    try:
        hello = importlib.import_module("mytasks").Hello
    finally:
        sys.path.remove(str(folder))
    return hello("world")


class NoCredentials:
    """A boto3 session with no credentials anywhere (as on a fresh machine)."""

    region_name = "eu-west-1"

    def get_credentials(self) -> None:
        return None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8000", "must look like https://"),
        ("http://0.0.0.0:8000", "an address to listen on"),
        ("http://api.example.com", "plain http is only for a loopback host"),
    ],
)
def test_a_malformed_api_url_is_named_with_what_to_use(url: str, says: str):
    with pytest.raises(ConfigurationError, match=says):
        Client(url)


def test_a_deployed_url_without_credentials_says_what_signing_needs():
    with pytest.raises(ConfigurationError, match=r"https://api\.typo\.example.*SigV4"):
        Client("https://api.typo.example", session=NoCredentials())


def test_pointing_the_client_at_the_emulator_says_which_url_to_use(stack):
    with pytest.raises(ConfigurationError, match="AWS emulator"):
        Client(stack.emulator.url).jobs().list()


def test_every_view_of_a_job_shows_the_same_job(stack, client, cluster, runners):
    # Given a job with retries that has started and finished
    from tests.e2e.workflows import Noop

    job = client.jobs().submit("same-everywhere", [Noop("a"), Noop("b")], cluster=cluster, max_retries=2)
    runners.start(cluster, "Noop")
    wait_until(job_done(client, job), what="the job")
    # Then the list shows it exactly as find does (started_at, max_retries, root_tasks and all)
    (listed,) = [j for j in client.jobs().list(name="same-everywhere") if j.id == job.id]
    found = client.jobs().find(job)
    assert listed == found
    assert found.started_at is not None and found.max_retries == 2 and found.root_tasks == 2


def test_a_retry_says_what_it_did(client, cluster, runners):
    from tests.e2e.workflows import Noop

    job = client.jobs().submit("running-or-done", Noop("x"), cluster=cluster)
    # a job that is not FAILED or CANCELED has nothing to retry: a clear conflict, not a silent 0
    with pytest.raises(ConflictError, match="SUBMITTED: only a FAILED or CANCELED job can be retried"):
        client.jobs().retry(job)
    client.jobs().cancel(job)
    # a canceled job is resumed, and the retry says how many tasks it sent to run
    assert client.jobs().retry(job) == 1
    runners.start(cluster, "Noop")
    assert wait_until(job_done(client, job), what="the resumed job").state == "COMPLETED"


def test_a_bad_request_names_the_field_and_its_rule(client):
    with pytest.raises(InvalidRequestError, match=r"name: String should have at least 1 character"):
        client.transport.request("POST", "/clusters", {"name": ""})


def test_depending_on_a_future_of_another_execution_is_a_validation_error():
    from taskfleet.task import CurrentTask, ExecutionContext, JobRef

    def context() -> ExecutionContext:
        return ExecutionContext(CurrentTask("t", JobRef("j", "job"), ("T", "v0.0"), 0, 1, None, "default"))

    first, second = context(), context()
    from tests.e2e.workflows import Noop

    future = first.submit_subtask(Noop("a"))
    with pytest.raises(TaskValidationError, match="earlier in this same execution"):
        second.submit_subtask(Noop("b"), depends_on=future)


def test_a_task_name_with_spaces_is_refused_by_the_sdk_and_the_api(client):
    class Spaced(Task):
        @staticmethod
        def identifier() -> tuple[str, str]:
            return "my task", "v1.0"

        def execute(self, context: ExecutionContext) -> None:
            pass

    with pytest.raises(TaskValidationError, match="without spaces"):
        client.jobs().submit("spaced", Spaced())
    with pytest.raises(InvalidRequestError, match="without spaces"):
        client.transport.request("POST", "/jobs", {"name": "spaced", "tasks": [{"name": "my task"}]})


def test_a_queued_task_says_why_it_may_not_run(client, cluster, runners):
    from tests.e2e.workflows import Fail, Noop, OtherNoop

    # Given a job whose task no runner can take
    job = client.jobs().submit("nobody", Noop("n"), cluster=cluster)
    (task,) = client.jobs().tasks(job)
    assert task.state == "QUEUED" and "no runner that can run Noop v0.0" in (task.waiting or "")
    # When a runner for it starts, the job runs and nothing is said
    runners.start(cluster, "Noop", "Fail")
    assert wait_until(job_done(client, job), what="the job").state == "COMPLETED"
    assert client.jobs().tasks(job)[0].waiting is None
    # and a queued task of a job that failed says it will not run while the job stays failed
    failed = client.jobs().submit("fails", [Fail("f"), OtherNoop("never")], cluster=cluster)  # no OtherNoop runner
    assert wait_until(job_done(client, failed), what="the failed job").state == "FAILED"
    (left,) = [t for t in client.jobs().tasks(failed) if t.state == "QUEUED"]
    assert left.waiting == "will not run while the job is FAILED (retry the job to run it)"


def test_a_large_task_list_is_answered_in_part_and_says_so(client, cluster):
    from tests.e2e.workflows import Noop

    job = client.jobs().submit("wide", [Noop(str(i)) for i in range(7)], cluster=cluster)
    with pytest.warns(UserWarning, match="has more than 5 tasks"):
        first = client.jobs().tasks(job, limit=5)
    assert [t.display for t in first] == ["Noop"] * 5
    assert len(client.jobs().tasks(job)) == 7  # within the default limit: all of them, no warning
    client.jobs().cancel(job)


def test_a_retry_sent_again_after_a_lost_answer_gets_the_same_answer(client, cluster):
    from tests.e2e.workflows import Noop

    job = client.jobs().submit("retried-twice", Noop("x"), cluster=cluster)
    client.jobs().cancel(job)
    body = {"client_token": "retry-1"}
    first = client.transport.request("POST", f"/jobs/{job.id}/retry", body)["rescheduled"]
    again = client.transport.request("POST", f"/jobs/{job.id}/retry", body)["rescheduled"]  # the SDK's resend
    assert first == again == 1
    with pytest.raises(ConflictError, match="RUNNING: only a FAILED or CANCELED job"):
        client.jobs().retry(job)  # a new retry (another token) of the resumed job: nothing to retry
    client.jobs().cancel(job)
