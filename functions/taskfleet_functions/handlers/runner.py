"""The runners' hot path: report a task and claim the next in one call; extend a lease; find the lanes.

Every route names the runner's cluster in its path (`/runner/<slug>/...`), and the orchestrator takes the
cluster from there, never from the body: on AWS the path (or the function URL's alias) is what IAM binds a
runner's credentials to (docs/architecture.md, "Leases and the runner's cluster").
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from taskfleet import rules

from ..dal.repository import Holder
from ..models.api import ExtendIn, LanesIn, RunnerNextIn
from ..orchestrator import JobState, Reason, ReportStatus
from ..orchestrator.clusters import Identifier
from ..orchestrator.contracts import lease_hash
from ..orchestrator.errors import Forbidden
from ..views import lane_view
from ..wiring import orchestrator
from .common import body, count, error, logger, make_app, metrics, ok, tracer

app = make_app()

ALIAS_PREFIX = "cluster-"  # a per-cluster alias of the runner function: "cluster-<slug>"


def runner_cluster(slug: str) -> str:
    """The cluster of this request: the path's slug, which must be the one the invoked alias is bound to
    (when the runner function is invoked through a per-cluster alias's URL)."""
    slug = rules.check_slug(slug)
    context = app.lambda_context
    arn = str(getattr(context, "invoked_function_arn", "") or "")
    parts = arn.split(":")
    qualifier = parts[7] if len(parts) == 8 else ""
    if qualifier.startswith(ALIAS_PREFIX) and qualifier[len(ALIAS_PREFIX) :] != slug:
        raise Forbidden(f"this runner URL serves cluster {qualifier[len(ALIAS_PREFIX) :]!r}, not {slug!r}")
    iam = ((app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}).get("iam") or {}
    logger.append_keys(cluster=slug, principal=iam.get("userArn") or iam.get("userId"))
    return slug


@app.post("/runner/<slug>/next")
def next_task(slug: str) -> Any:
    cluster = runner_cluster(slug)
    req = body(app, RunnerNextIn)
    reports = [r.to_report(cluster) for r in req.all_reports()]
    claims = [c.to_claim(cluster) for c in req.all_claims()]
    engine = orchestrator()
    reported, claimed = engine.next_many(reports, claims, req.runner_id)
    jobs = engine.drain_job_transitions()
    count("JobsCompleted", jobs.get(JobState.COMPLETED, 0))
    count("JobsFailed", jobs.get(JobState.FAILED, 0))
    count("TasksFailed", sum(r.status == ReportStatus.FAILED for r in reported))
    count("TasksComputed", sum(r.status == ReportStatus.OK for r in reported))
    count("LeasesExpired", sum(c.code == Reason.LEASES_EXPIRED for c in claimed))
    out: dict[str, Any] = {}
    # answered in the form asked: one report (claim) or a list of them
    if req.report is not None:
        out["report"] = reported[0].wire()
    elif req.reports is not None:
        out["reports"] = [r.wire() for r in reported]
    if req.claim is not None:
        out["claim"] = claimed[0].wire()
    elif req.claims is not None:
        out["claims"] = [c.wire() for c in claimed]
    return ok(out)


@app.post("/runner/<slug>/extend")
def extend(slug: str) -> Any:
    cluster = runner_cluster(slug)
    req = body(app, ExtendIn)
    holder = Holder(req.job_id, cluster, lease_hash(req.lease))
    return ok({"lease_expires": orchestrator().extend(req.task_id, req.attempt, holder)})


@app.post("/runner/<slug>/lanes")
def lanes(slug: str) -> Any:
    cluster = runner_cluster(slug)
    req = body(app, LanesIn)
    found = orchestrator().runner_lanes(cluster, [Identifier(n, v) for n, v in req.tasks])
    return ok({"cluster": cluster, "lanes": [lane_view(lane) for lane in found]})


@app.post("/runner/next")
@app.post("/runner/extend")
def old_protocol() -> Any:
    return error(
        410,
        "RunnerTooOld",
        "this runner speaks an older protocol (routes without the cluster); upgrade the taskfleet package",
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
