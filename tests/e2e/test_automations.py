"""Automations on the local stack: cron schedules (fired through the same events EventBridge Scheduler
sends; the local stack's loop, or its hook for a given time) and objects created in the emulated S3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from taskfleet import InvalidRequestError, TaskValidationError

from tests.e2e.workflows import Nightly, Noop, OnUpload
from tests.support.observe import executions
from tests.support.waits import job_done, wait_until


def jobs_of(client, automation):
    return client.jobs().query(automation_ids=[automation.id])


def test_each_scheduled_time_submits_exactly_one_job_when_every_firing_is_delivered_twice(
    stack, client, cluster, runners, tmp_path
):
    automation = client.automations().create_cron_automation("nightly", Nightly("alps"), "0 2 * * *", cluster=cluster)
    times = [datetime(2026, 12, d, 2, 0, tzinfo=UTC) for d in (3, 4, 5)]
    for moment in times:
        first = stack.deliver_schedule(automation.id, 0, moment)
        again = stack.deliver_schedule(automation.id, 0, moment)  # EventBridge delivers at least once
        assert first == again and len(first["jobs"]) == 1
    jobs = jobs_of(client, automation)
    assert len(jobs) == 3 and {j.automation_id for j in jobs} == {automation.id}
    runners.start(cluster, "Nightly")
    for job in jobs:
        assert wait_until(job_done(client, job), what="a scheduled job").state == "COMPLETED"
    ran = sorted(e["trigger"] for e in executions(tmp_path))
    assert ran == [t.isoformat() for t in times]  # each with its own scheduled time, and its arguments
    assert {e["label"] for e in executions(tmp_path)} == {"alps"}


def test_the_local_stack_fires_cron_schedules_as_time_passes_in_their_zone(stack, client, cluster):
    automation = client.automations().create_cron_automation(
        "every-ten", Nightly("x"), ["CRON_TZ=Asia/Kolkata */10 * * * *"], cluster=cluster
    )
    created = datetime.fromisoformat(str(automation.created_at).replace("Z", "+00:00"))
    # the loop's look 35 minutes on (Kolkata is UTC+5:30: its */10 minutes are UTC's :00, :10, ...)
    stack.fire_automations(now=created + timedelta(minutes=35))
    scheduled = created.replace(second=0, microsecond=0)
    expected = [scheduled + timedelta(minutes=m) for m in range(1, 36) if (scheduled.minute + m) % 10 == 0]
    assert len(jobs_of(client, automation)) == len(expected) in (3, 4)


def test_objects_created_in_a_watched_bucket_submit_one_job_each_and_other_keys_none(
    stack, client, cluster, runners, tmp_path
):
    s3 = stack.cache_client()
    s3.create_bucket(Bucket="uploads-e2e")
    automation = client.automations().create_storage_event_automation(
        "on-upload", OnUpload("csv"), ("uploads-e2e", "incoming/*.csv"), cluster=cluster
    )
    for key in ("incoming/a.csv", "incoming/deep/b.csv", "other/c.csv", "incoming/d.txt"):
        s3.put_object(Bucket="uploads-e2e", Key=key, Body=b"x")
    runners.start(cluster, "OnUpload")
    wait_until(lambda: len(jobs_of(client, automation)) >= 2, what="the storage automation's jobs")
    stack.fire_automations()  # another look finds nothing new
    jobs = jobs_of(client, automation)
    assert len(jobs) == 2
    for job in jobs:
        wait_until(job_done(client, job), what="an upload job")
    assert sorted(e["key"] for e in executions(tmp_path)) == ["incoming/a.csv", "incoming/deep/b.csv"]
    assert {e["bucket"] for e in executions(tmp_path)} == {"uploads-e2e"}


def test_deleting_an_automation_stops_it_and_cancel_jobs_cancels_its_active_jobs(stack, client, cluster):
    automation = client.automations().create_cron_automation("stoppable", Nightly("s"), "* * * * *", cluster=cluster)
    stack.deliver_schedule(automation.id, 0, datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    (job,) = jobs_of(client, automation)
    assert job.state == "SUBMITTED"  # no runner: it waits
    assert client.automations().delete(automation, cancel_jobs=True) == 1
    assert client.jobs().find(job).state == "CANCELED"
    assert stack.deliver_schedule(automation.id, 0, datetime(2026, 12, 2, 12, 1, tzinfo=UTC)) == {"jobs": []}
    assert len(jobs_of(client, automation)) == 1
    kept = client.automations().create_cron_automation("kept", Nightly("k"), "* * * * *", cluster=cluster)
    stack.deliver_schedule(kept.id, 0, datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    assert client.automations().delete(kept) == 0
    assert [j.state for j in jobs_of(client, kept)] == ["SUBMITTED"]


def test_a_manual_once_runs_the_task_with_its_trigger(client, cluster, runners, tmp_path):
    runners.start(cluster, "Nightly", "OnUpload")
    moment = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
    job = client.jobs().submit(
        "manual", [Nightly("m").once(moment), OnUpload("u").once("bkt", "k/1.csv")], cluster=cluster
    )
    assert wait_until(job_done(client, job), what="the manual job").state == "COMPLETED"
    by_label = {e["label"]: e for e in executions(tmp_path)}
    assert by_label["m"]["trigger"] == moment.isoformat()
    assert (by_label["u"]["bucket"], by_label["u"]["key"]) == ("bkt", "k/1.csv")
    with pytest.raises(TaskValidationError, match="runs when its automation fires"):
        client.jobs().submit("untriggered", Nightly("x"), cluster=cluster)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda a: a.create_cron_automation("bad", Nightly("x"), "61 * * * *"), InvalidRequestError, "minute: 61"),
        (
            lambda a: a.create_cron_automation("bad", Nightly("x"), "CRON_TZ=Moon/Base 0 0 * * *"),
            InvalidRequestError,
            "not a time zone",
        ),
        (lambda a: a.create_cron_automation("bad", Nightly("x"), []), TaskValidationError, "at least one schedule"),
        (
            lambda a: a.create_storage_event_automation("bad", OnUpload("x"), ("no-such-bucket-e2e", "*")),
            InvalidRequestError,
            "does not exist",
        ),
        (
            lambda a: a.create_storage_event_automation("bad", OnUpload("x"), ("taskfleet-cache", "a[b")),
            InvalidRequestError,
            "unclosed",
        ),
        (lambda a: a.create_cron_automation("bad", Noop("x"), "0 0 * * *"), TaskValidationError, "is not a CronTask"),
        (
            lambda a: a.create_cron_automation("bad", Nightly("x" * 65_000), "0 0 * * *"),
            InvalidRequestError,
            "room for the trigger",
        ),
        (
            lambda a: a.create_cron_automation("bad", Nightly("x"), "\u00b2 * * * *"),
            InvalidRequestError,
            "not a number",
        ),
        (
            lambda a: a.create_storage_event_automation("bad", Nightly("x"), ("taskfleet-cache", "*")),
            TaskValidationError,
            "is not a StorageEventTask",
        ),
    ],
)
def test_bad_automations_get_a_clear_error_and_nothing_is_created(client, make, error, message):
    before = len(client.automations().all())
    with pytest.raises(error, match=message):
        make(client.automations())
    assert len(client.automations().all()) == before
