"""The Connect protocol's unary calls over HTTP/1.1, as the Tilebox SDK (connectrpc 0.10) speaks them: the
request body (base64 from API Gateway, gzip from the SDK) in, binary protobuf or a JSON error out.

Facts that shaped this (docs/notes/tilebox-connect-findings.md, verified against the SDK):
- success is HTTP 200 with `content-type: application/proto`, exactly (any other type is an SDK error);
- an error is a non-200 status with `content-type: application/json` and `{"code", "message"}`; without the
  JSON type the SDK reads the status alone, and a 400 becomes "internal", which its runner retries forever;
- the SDK gzips every request body, even an empty message's.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from typing import Any

from google.protobuf.message import DecodeError, Message

# Connect's error codes and the HTTP status each travels with (connectrpc's table).
STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}
MAX_BODY_BYTES = 6 * 1024 * 1024  # Lambda's synchronous payload limit, compressed or not


class ConnectError(Exception):
    """An error answered in Connect's form. `code` is one of STATUS's keys."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        if code not in STATUS:
            raise ValueError(f"not a Connect code: {code}")
        self.code = code
        self.message = message


def request_body(event: dict[str, Any]) -> bytes:
    """The request's bytes: base64-decoded (API Gateway's binary body) and gunzipped when the client said so."""
    raw = event.get("body") or ""
    data = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("latin-1", "replace")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    encoding = (headers.get("content-encoding") or "identity").strip().lower()
    if encoding == "gzip":
        try:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            data = inflater.decompress(data, MAX_BODY_BYTES + 1)
        except zlib.error:
            raise ConnectError("invalid_argument", "the request body is not valid gzip") from None
        if len(data) > MAX_BODY_BYTES or inflater.unconsumed_tail:
            raise ConnectError("resource_exhausted", f"the request body inflates to over {MAX_BODY_BYTES} bytes")
    elif encoding != "identity":
        raise ConnectError("unimplemented", f"content-encoding {encoding!r:.40} is not supported (gzip, identity)")
    return data


def parse(message_type: type[Message], data: bytes) -> Any:
    message = message_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError):  # upb raises DecodeError; nesting beyond its limit RuntimeError
        raise ConnectError("invalid_argument", f"the body is not a {message_type.DESCRIPTOR.full_name}") from None
    return message


def success(message: Message) -> dict[str, Any]:
    """An API Gateway (payload v2) answer carrying one protobuf message."""
    return raw(200, "application/proto", message.SerializeToString())


def failure(code: str, message: str) -> dict[str, Any]:
    return {
        "statusCode": STATUS[code],
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"code": code, "message": message}),
        "isBase64Encoded": False,
    }


def raw(status: int, content_type: str, body: bytes = b"") -> dict[str, Any]:
    """An API Gateway (payload v2) answer with a binary body (base64, as API Gateway takes it)."""
    return {
        "statusCode": status,
        "headers": {"content-type": content_type},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def uuid_of(message: Any, what: str) -> str:
    """A `tilebox.v1.ID` (16 raw bytes) as taskfleet's UUID text."""
    data = bytes(message.uuid)
    if len(data) != 16 or data == bytes(16):
        raise ConnectError("invalid_argument", f"{what} must be a 16-byte UUID")
    return str(uuid.UUID(bytes=data))


def uuid_bytes(text: str) -> bytes:
    return uuid.UUID(text).bytes
