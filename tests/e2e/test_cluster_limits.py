"""Cluster management limits: a cap on created clusters, and no deletion that would strand work or
delete what the deployment declares."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from taskfleet import ConflictError, InvalidRequestError, NotFoundError, TaskValidationError

from tests.e2e.workflows import Noop


def test_a_cluster_with_queued_tickets_is_not_deleted_unless_forced(stack, client):
    # Given a created cluster with a queued task
    cluster = client.clusters().create("busy").slug
    job = client.jobs().submit("queued", Noop("q"), cluster=cluster)
    # When it is deleted, the deletion is refused and the cluster and its lane stay
    with pytest.raises(ConflictError) as refused:
        client.clusters().delete(cluster)
    assert refused.value.code == "ClusterBusy"
    assert client.clusters().find(cluster).slug == cluster
    assert len(stack.orchestrator.clusters.lane_urls(cluster)) == 1
    # and a forced deletion removes it with its lanes
    client.jobs().cancel(job)
    client.clusters().delete(cluster, force=True)
    with pytest.raises(NotFoundError):
        client.clusters().find(cluster)
    assert stack.orchestrator.clusters.lane_urls(cluster) == []


def test_declared_clusters_cannot_be_deleted(client):
    with pytest.raises(ConflictError) as refused:
        client.clusters().delete("default")
    assert refused.value.code == "DeclaredCluster"


def test_created_clusters_are_capped(stack, client):
    # Given a deployment whose cap on created clusters is what it has now
    clusters = stack.orchestrator.clusters
    existing = len([c for c in client.clusters().all() if c.slug not in clusters.settings.static_clusters])
    saved = clusters.settings
    clusters.settings = replace(saved, max_clusters=existing)
    try:
        # When one more is created, it is refused and nothing is created
        with pytest.raises(ConflictError) as refused:
            client.clusters().create("one too many")
        assert refused.value.code == "ClusterLimit"
        assert len(client.clusters().all()) == existing + len(saved.static_clusters)
    finally:
        clusters.settings = saved


def test_clusters_have_a_display_name_a_description_and_an_optional_chosen_slug(client):
    # Given a cluster created with a description and a slug of the user's choosing
    created = client.clusters().create("Image Processing", description="resizing on CPUs", slug=f"img-{id(client)}")
    assert created.slug == f"img-{id(client)}" and created.display_name == "Image Processing"
    assert created.description == "resizing on CPUs" and created.deletable
    # When it is updated, its name and description change and its slug stays
    updated = client.clusters().update(created, name="Images", description="resizing and tiling")
    assert (updated.slug, updated.display_name, updated.description) == (created.slug, "Images", "resizing and tiling")
    assert client.clusters().find(created.slug) == updated
    # and a second cluster with the same slug is refused
    with pytest.raises(ConflictError) as taken:
        client.clusters().create("Other", slug=created.slug)
    assert taken.value.code == "SlugTaken"
    assert client.clusters().find("default").deletable is False
    client.clusters().delete(created.slug)


def test_updating_a_cluster_needs_something_to_change_and_an_existing_cluster(client):
    with pytest.raises(NotFoundError):
        client.clusters().update("no-such-cluster", name="x")
    with pytest.raises(InvalidRequestError, match="name or description"):
        client.clusters().update("default")
    with pytest.raises(TaskValidationError):
        client.clusters().create("bad", slug="Not A Slug")


def test_another_process_that_remembers_a_deleted_clusters_lane_sends_to_the_new_one(stack, client):
    from taskfleet_functions.orchestrator import Orchestrator, TaskSpec

    from tests.support.observe import queue_depth

    # Given another orchestrator process (a warm Lambda) that remembers a lane of a cluster
    slug = f"reused-{uuid.uuid4().hex[:6]}"
    client.clusters().create("first", slug=slug)
    engine = stack.orchestrator
    other = Orchestrator(engine.db, engine.queues, engine.settings)
    other.clusters.lane_url(slug, "Noop", "v0.0")
    # When the cluster is deleted and one with its slug created again
    client.clusters().delete(slug, force=True)
    client.clusters().create("second", slug=slug)
    # Then a submit through that process sends its ticket to the new cluster's lane
    other.submit_job("reused", [TaskSpec(name="Noop", version="v0.0", input="x")], cluster=slug)
    assert queue_depth(stack, slug) == 1
