"""Job queries (the reference's `jobs().query`): by submission time, state, name and cluster, newest first,
every page followed; `find` by UUID; one cluster per root task at submit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from taskfleet import InvalidRequestError, TaskValidationError

from tests.e2e.workflows import Noop


def test_jobs_are_queried_by_time_range_state_name_and_cluster(client, cluster):
    other = client.clusters().create("query-other").slug
    name = f"query-{uuid.uuid4().hex[:8]}"
    before = datetime.now(UTC)
    first = client.jobs().submit(name, Noop("1"), cluster=cluster)
    second = client.jobs().submit(name, Noop("2"), cluster=other)
    third = client.jobs().submit(name, Noop("3"), cluster=cluster)
    after = datetime.now(UTC)
    client.jobs().cancel(third)

    everything = client.jobs().query(temporal_extent=(before, after), name=name)
    assert [j.id for j in everything] == [third.id, second.id, first.id]  # newest first
    # [first's submission, second's): the first only (a submit takes milliseconds: they differ)
    assert first.submitted_at < second.submitted_at
    in_between = client.jobs().query(temporal_extent=(first.submitted_at, second.submitted_at), name=name)
    assert [j.id for j in in_between] == [first.id]
    assert [j.id for j in client.jobs().query(name=name, job_states=["CANCELED"])] == [third.id]
    assert {j.id for j in client.jobs().query(name=name, job_states=["SUBMITTED", "CANCELED"])} == {
        first.id,
        second.id,
        third.id,
    }
    assert [j.id for j in client.jobs().query(name=name, clusters=[other])] == [second.id]
    assert client.jobs().find(uuid.UUID(first.id)) == client.jobs().find(first.id)
    for job in (first, second):
        client.jobs().cancel(job)


def test_a_query_follows_every_page(client, cluster):
    name = f"paged-{uuid.uuid4().hex[:8]}"
    jobs = [client.jobs().submit(name, Noop(str(i)), cluster=cluster) for i in range(7)]
    page = client.transport.request("GET", "/jobs", query={"name": name, "limit": 3})
    assert page["next_cursor"]  # the API pages ...
    assert [j.id for j in client.jobs().query(name=name)] == [j.id for j in reversed(jobs)]  # ... the SDK follows
    for job in jobs:
        client.jobs().cancel(job)


def test_bad_queries_are_named(client):
    with pytest.raises(InvalidRequestError, match="ISO 8601"):
        client.jobs().query(temporal_extent=("yesterday", "today"))
    with pytest.raises(InvalidRequestError, match="is not one of"):
        client.jobs().query(job_states=["DONE"])
    with pytest.raises(InvalidRequestError, match="before 'until'"):
        client.jobs().query(temporal_extent=("2026-12-02T00:00:00Z", "2026-12-01T00:00:00Z"))


def test_each_root_task_may_name_its_cluster(client, cluster):
    other = client.clusters().create("roots-other").slug
    job = client.jobs().submit("two-clusters", [Noop("a"), Noop("b")], cluster=[cluster, other])
    assert [t.cluster for t in client.jobs().tasks(job)] == [cluster, other]
    with pytest.raises(TaskValidationError, match="one cluster per root task"):
        client.jobs().submit("mismatch", [Noop("a"), Noop("b")], cluster=[cluster])
    client.jobs().cancel(job)
