"""What every HTTP handler shares: the resolver with error mapping, logger, tracer, metrics."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from pydantic import BaseModel, ValidationError
from taskfleet.rules import RuleViolation

from ..faults import InjectedCrash
from ..orchestrator.errors import DomainError, TooLarge

# Handlers that changed nothing emit no metrics; that is normal, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger()
metrics = Metrics()


class _NoTracer:
    """Stands in for Powertools' Tracer while tracing is off: the X-Ray SDK's import alone costs more
    than the whole rest of a handler's cold start."""

    def capture_lambda_handler(self, handler: Any) -> Any:
        return handler


# X-Ray tracing is on where the deployment asks for it (TASKFLEET_TRACING=1; the CDK stack's option).
tracer: Any = Tracer() if os.environ.get("TASKFLEET_TRACING") == "1" else _NoTracer()


def _metrics_off() -> bool:
    """Read at each call, not at import: a process may import the handlers before it configures them (a
    test imports one, then starts the local stack, which turns metrics off)."""
    return is_metrics_disabled()


def count(name: str, value: int = 1) -> None:
    """Add a count metric. Where metrics are off (the local stack) add nothing: Powertools would
    otherwise keep them and print them every 100."""
    if value and not _metrics_off():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def gauge(name: str, value: float, **dimensions: str) -> None:
    """Publish one value with its own dimensions at once (an embedded metric in the log, like `count`)."""
    if _metrics_off():
        return
    from aws_lambda_powertools.metrics import single_metric

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "taskfleet")
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=namespace) as metric:
        for key, dimension in dimensions.items():
            metric.add_dimension(name=key, value=dimension)


MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit

Model = TypeVar("Model", bound=BaseModel)


def error(status: int, code: str, message: str, details: Any = None) -> Response[str]:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if details is not None:
        body["error"]["details"] = details
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def ok(body: Any, status: int = 200) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


def log_unexpected(err: Exception) -> None:
    """An unhandled error: its type and where it was raised at ERROR; the message and traceback (which may
    quote task input) only at DEBUG (docs/reliability.md, "Security")."""
    frame = err.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame is not None else "?"
    logger.error("unhandled error", extra={"error_type": type(err).__name__, "raised_at": where})
    logger.debug("unhandled error details", exc_info=err)


def make_app() -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver()

    @app.exception_handler(DomainError)
    def _domain(err: DomainError) -> Response[str]:
        return error(err.status, err.code, err.message)

    @app.exception_handler(RuleViolation)
    def _rule(err: RuleViolation) -> Response[str]:
        return error(400, "InvalidRequest", str(err))

    @app.exception_handler(ValidationError)
    def _validation(err: ValidationError) -> Response[str]:
        details = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in err.errors()[:20]]
        # the message names the offending fields and their rules (the first three), the details all of them
        named = "; ".join(f"{d['loc'] or 'body'}: {d['msg']}" for d in details[:3])
        more = f" (and {len(err.errors()) - 3} more)" if len(err.errors()) > 3 else ""
        return error(400, "InvalidRequest", f"{named}{more}", details)

    @app.exception_handler(InjectedCrash)
    def _crash(err: InjectedCrash) -> Response[str]:
        raise err

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        return error(404, "RouteNotFound", f"no route {app.current_event.http_method} {app.current_event.path}")

    @app.exception_handler(Exception)
    def _unexpected(err: Exception) -> Response[str]:
        log_unexpected(err)
        return error(500, "InternalError", "internal error; the request can be retried")

    return app


def body(app: APIGatewayHttpResolver, model: type[Model]) -> Model:
    raw = app.current_event.decoded_body or ""
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise TooLarge(f"request body over {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise DomainError("request body is not valid JSON", code="InvalidJson") from None
    except RecursionError:  # e.g. 100,000 nested brackets: valid JSON grammar, but no request of ours
        raise DomainError("request body is nested too deeply", code="InvalidJson") from None
    if not isinstance(data, dict):
        raise DomainError("request body must be a JSON object", code="InvalidRequest")
    return model.model_validate(data)


def int_param(app: APIGatewayHttpResolver, name: str, default: int, low: int, high: int) -> int:
    raw = (app.current_event.query_string_parameters or {}).get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DomainError(f"query parameter {name!r} must be an integer", code="InvalidRequest") from None
    if not (low <= value <= high):
        raise DomainError(f"query parameter {name!r} must be {low}-{high}", code="InvalidRequest")
    return value
