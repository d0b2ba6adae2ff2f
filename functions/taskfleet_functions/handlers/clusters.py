"""Clusters API, the client configuration route and the admin routes of bearer API keys (`/keys`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from taskfleet import rules

from ..models.api import CreateClusterIn, CreateKeyIn, UpdateClusterIn
from ..orchestrator.errors import DomainError
from ..views import cluster_view, key_view
from ..wiring import orchestrator
from .common import body, logger, make_app, metrics, ok, tracer

app = make_app()


@app.get("/config")
def config() -> Any:
    settings = orchestrator().settings
    return ok(
        {
            "region": settings.region,
            "local": settings.local,
            "runner_url": settings.runner_url,
            "lease_seconds": settings.lease_seconds,
            "limits": {"max_input_bytes": rules.MAX_INPUT_BYTES, "max_subtasks": rules.MAX_SUBTASKS_PER_REPORT},
        }
    )


def view(cluster: dict[str, Any]) -> dict[str, Any]:
    return cluster_view(cluster, deletable=orchestrator().clusters.deletable(cluster))


@app.post("/clusters")
def create() -> Any:
    req = body(app, CreateClusterIn)
    return ok(view(orchestrator().create_cluster(req.name, description=req.description, slug=req.slug)), 201)


@app.get("/clusters")
def all_clusters() -> Any:
    return ok({"clusters": [view(c) for c in orchestrator().list_clusters()]})


@app.get("/clusters/<slug>")
def find(slug: str) -> Any:
    return ok(view(orchestrator().cluster(rules.check_slug(slug))))


@app.get("/clusters/<slug>/backlog")
def backlog(slug: str) -> Any:
    """Tickets waiting or in flight in the cluster's lanes (SQS's approximate counts), in all and per lane."""
    lanes = orchestrator().cluster_backlog(rules.check_slug(slug))
    return ok({"slug": slug, "backlog": sum(int(lane["backlog"]) for lane in lanes), "lanes": lanes})


@app.patch("/clusters/<slug>")
def update(slug: str) -> Any:
    req = body(app, UpdateClusterIn)
    return ok(view(orchestrator().update_cluster(rules.check_slug(slug), name=req.name, description=req.description)))


@app.delete("/clusters/<slug>")
def delete(slug: str) -> Any:
    force = (app.current_event.query_string_parameters or {}).get("force", "false")
    if force not in ("true", "false"):
        raise DomainError("query parameter 'force' must be true or false", code="InvalidRequest")
    orchestrator().delete_cluster(rules.check_slug(slug), force=force == "true")
    return ok({"deleted": slug})


@app.post("/keys")
def create_key() -> Any:
    """A new API key; the answer holds its token, which no later answer repeats (the table keeps its hash)."""
    req = body(app, CreateKeyIn)
    key, token = orchestrator().keys.create(
        req.role, cluster=req.cluster, lease_seconds=req.lease_seconds, description=req.description
    )
    return ok({**key_view(key), "token": token}, 201)


@app.get("/keys")
def all_keys() -> Any:
    return ok({"keys": [key_view(k) for k in orchestrator().keys.all()]})


@app.delete("/keys/<key_id>")
def revoke_key(key_id: str) -> Any:
    return ok(key_view(orchestrator().keys.revoke(key_id)))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
