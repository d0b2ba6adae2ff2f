"""The Connect endpoint for unmodified Tilebox SDK clients (`Client(url=..., token=..., transport="http1")`):
`POST /workflows.v1.<Service>/<Method>` with a binary protobuf body, bearer API keys, and the OTLP paths
the SDK exports to. It works on the raw API Gateway event (payload v2), not the JSON resolver: bodies are
binary, answers are `application/proto`, errors Connect's JSON (connect/wire.py).

Every failure answers in Connect's form with a code the SDK understands; nothing escapes as a 502, which the
SDK would read as "unavailable" and which stops its runner (docs/notes/tilebox-connect-findings.md, section 2).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from taskfleet.rules import RuleViolation

from ..connect.service import Caller, ConnectService
from ..connect.wire import ConnectError, failure, parse, raw, request_body, success
from ..faults import InjectedCrash
from ..orchestrator.errors import DomainError
from ..wiring import orchestrator
from .common import log_unexpected, logger, metrics, tracer

OTLP_PATHS = ("/v1/traces", "/v1/logs", "/v1/metrics")
_service: ConnectService | None = None

# a DomainError's HTTP status -> the Connect code that says the same to the SDK (409 is a precondition:
# the SDK shows its message; 413 an argument too large)
_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    409: "failed_precondition",
    410: "failed_precondition",
    413: "invalid_argument",
    429: "resource_exhausted",
}


def service() -> ConnectService:
    global _service
    engine = orchestrator()
    if _service is None or _service.engine is not engine:
        _service = ConnectService(engine)
    return _service


def _bearer(event: dict[str, Any]) -> str:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ConnectError(
            "unauthenticated", "an API key is required: Client(url=..., token=<key from `taskfleet keys create`>)"
        )
    return token.strip()


def handle(event: dict[str, Any]) -> dict[str, Any]:
    path = str(event.get("rawPath") or "")
    method = ((event.get("requestContext") or {}).get("http") or {}).get("method", "POST")
    if method != "POST":
        raise ConnectError("unimplemented", f"{method} {path:.200}: Connect unary calls are POSTs")
    svc = service()
    token = _bearer(event)
    key = svc.engine.keys.verify(token)
    if path in OTLP_PATHS:  # the SDK's traces and logs: accepted and dropped (not stored)
        return raw(200, "application/x-protobuf")
    rpc = svc.rpcs.get(path)
    if rpc is None:
        raise ConnectError("unimplemented", f"{path:.200} is not served by taskfleet")
    if key.role not in rpc.roles:
        allowed = ", ".join(sorted(rpc.roles))
        raise ConnectError(
            "permission_denied",
            f"{'an' if key.role[0] in 'aeiou' else 'a'} {key.role} key may not call {path.rsplit('/', 1)[-1]}"
            f" (keys that may: {allowed})",
        )
    logger.append_keys(rpc=path, key_id=key.key_id, cluster=key.cluster)
    request = parse(rpc.request, request_body(event))
    return success(rpc.call(request, Caller(key, token)))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        return handle(event)
    except ConnectError as err:
        return failure(err.code, err.message)
    except DomainError as err:
        return failure(_CODES.get(err.status, "internal" if err.status >= 500 else "invalid_argument"), err.message)
    except RuleViolation as err:
        return failure("invalid_argument", str(err))
    except InjectedCrash:
        raise
    except Exception as err:  # the SDK retries "internal" (its runner does, for reports); never a 502
        log_unexpected(err)
        return failure("internal", "internal error; the request can be retried")
