"""`taskfleet jobs|clusters|submit` as a user runs them: real subprocesses against the local stack, plain
output (piped), `--json` for scripts, one-line errors with a non-zero exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.workflows import Fail, Gated
from tests.support.observe import open_gate
from tests.support.waits import job_done, wait_until

WORKFLOWS = Path(__file__).resolve().parent


def cli(stack: Any, *args: str, url: bool = True, cwd: Path = WORKFLOWS) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "TASKFLEET_TEST_DIR": str(cwd)}
    if url:
        env["TASKFLEET_URL"] = stack.url
    return subprocess.run(
        [sys.executable, "-m", "taskfleet.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_submit_then_list_show_tasks_and_watch_a_job(stack, client, cluster, runners, tmp_path):
    runners.start(cluster, "Noop")
    out = cli(stack, "submit", "workflows:Noop", "--input", '"hello"', "--cluster", cluster, "--name", "cli-job")
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.split()[2]
    assert out.stdout.startswith(f"submitted job {job_id} (cli-job)")
    watch = cli(stack, "jobs", "watch", job_id, "--interval", "0.2")
    assert watch.returncode == 0 and watch.stdout.strip().splitlines()[-1].startswith("COMPLETED")
    listed = json.loads(cli(stack, "jobs", "list", "--name", "cli-job", "--json").stdout)
    assert [j["id"] for j in listed] == [job_id] and listed[0]["state"] == "COMPLETED"
    assert listed[0]["execution_stats"]["tasks_by_state"] == {"COMPUTED": 1}
    table = cli(stack, "jobs", "list", "--state", "completed", "--since", "10m").stdout.splitlines()
    assert table[0].split("\t")[:3] == ["id", "name", "state"] and any(job_id in line for line in table[1:])
    show = cli(stack, "jobs", "show", job_id)
    assert (
        show.returncode == 0
        and f"job {job_id} 'cli-job': COMPLETED" in show.stdout
        and "- Noop [COMPUTED]" in show.stdout
    )
    tasks = cli(stack, "jobs", "tasks", job_id, "--json")
    assert [t["state"] for t in json.loads(tasks.stdout)] == ["COMPUTED"]
    svg = cli(stack, "jobs", "visualize", job_id)
    assert svg.returncode == 0 and svg.stdout.lstrip().startswith("<svg")


def test_watch_exits_1_for_a_failed_job_and_2_for_a_canceled_one_and_retry_and_cancel_work(
    stack, client, cluster, runners, tmp_path
):
    runners.start(cluster, "Fail", "Gated")
    failed = client.jobs().submit("cli-fail", Fail("x"), cluster=cluster)
    assert cli(stack, "jobs", "watch", failed.id, "--interval", "0.2").returncode == 1
    retried = cli(stack, "jobs", "retry", failed.id)
    assert retried.returncode == 0 and "1 task(s) rescheduled" in retried.stdout
    wait_until(job_done(client, failed), what="the retried job to fail again")
    gated = client.jobs().submit("cli-cancel", Gated("g", 0), cluster=cluster)
    canceled = cli(stack, "jobs", "cancel", gated.id)
    assert canceled.returncode == 0 and canceled.stdout.strip() == f"job {gated.id} CANCELED"
    open_gate(tmp_path, "g")
    assert cli(stack, "jobs", "watch", gated.id, "--interval", "0.2").returncode == 2


def test_clusters_create_update_list_and_delete(stack):
    created = json.loads(cli(stack, "clusters", "create", "CLI GPUs", "--description", "two boxes", "--json").stdout)
    slug = created["slug"]
    assert created["description"] == "two boxes"
    updated = cli(stack, "clusters", "update", slug, "--name", "CLI GPUs (new)")
    assert updated.returncode == 0 and updated.stdout.strip() == f"updated cluster {slug} (CLI GPUs (new))"
    listed = {c["slug"]: c for c in json.loads(cli(stack, "clusters", "list", "--json").stdout)}
    assert listed[slug]["name"] == "CLI GPUs (new)" and listed[slug]["backlog"] == 0
    assert cli(stack, "clusters", "delete", slug).returncode == 0
    assert slug not in {c["slug"] for c in json.loads(cli(stack, "clusters", "list", "--json").stdout)}


def test_mistakes_get_one_clear_line_and_a_nonzero_exit(stack, client):
    cases = [
        (("jobs", "show", "00000000-0000-0000-0000-000000000000"), "does not exist"),
        (("jobs", "show", "not-a-job"), "does not exist"),
        (("submit", "workflows:Noop", "--input", "{bad json"), "--input is not valid JSON"),
        (("submit", "workflows:Nope"), "cannot load task"),
        (("jobs", "list", "--state", "RUNING"), "--state RUNING: not one of"),
        (("jobs", "list", "--since", "yesterday"), "not an ISO time"),
        (("clusters", "update", "default"), "say what to change"),
        (("clusters", "delete", "default"), "taskfleet clusters delete:"),
    ]
    for args, message in cases:
        out = cli(stack, *args)
        assert out.returncode != 0, args
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
        assert "Traceback" not in out.stderr
    no_url = cli(stack, "jobs", "list", url=False)
    assert no_url.returncode == 1 and "no API URL: pass --url or set TASKFLEET_URL" in no_url.stderr
    unsigned = subprocess.run(
        [
            sys.executable,
            "-m",
            "taskfleet.cli",
            "jobs",
            "list",
            "--url",
            "https://abc.execute-api.us-east-1.amazonaws.com",
        ],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": "/nonexistent",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        timeout=60,
        check=False,
    )
    assert unsigned.returncode == 1 and "no AWS credentials found" in unsigned.stderr, unsigned.stderr
    assert len(unsigned.stderr.strip().splitlines()) == 1


def test_automations_create_cron_list_and_delete(stack):
    created = cli(
        stack,
        "automations",
        "create-cron",
        "cli-nightly",
        "workflows:Nightly",
        "--input",
        '"alps"',
        "--schedule",
        "0 6 * * MON-FRI",
        "--json",
    )
    assert created.returncode == 0, created.stderr
    automation = json.loads(created.stdout)
    assert automation["cron_schedules"] == ["0 6 * * MON-FRI"] and automation["args"] == "alps"
    listed = cli(stack, "automations", "list")
    assert automation["id"] in listed.stdout and "0 6 * * MON-FRI" in listed.stdout
    bad = cli(
        stack, "automations", "create-cron", "bad", "workflows:Nightly", "--input", '"x"', "--schedule", "0 25 * * *"
    )
    assert bad.returncode == 1 and "hour: 25 is outside 0-23" in bad.stderr
    not_cron = cli(
        stack, "automations", "create-cron", "bad", "workflows:Noop", "--input", '"x"', "--schedule", "0 1 * * *"
    )
    assert not_cron.returncode == 1 and "is not a CronTask" in not_cron.stderr
    deleted = cli(stack, "automations", "delete", automation["id"])
    assert deleted.returncode == 0 and automation["id"] not in cli(stack, "automations", "list").stdout
