"""JSON over HTTPS to the orchestrator API. Requests to a deployed API are signed with SigV4 using the
standard boto3 credential chain (environment, profiles, ECS task roles, instance roles); the local stack
(loopback) takes unsigned requests. Transient failures are retried with jittered backoff, boundedly."""

from __future__ import annotations

import json
import random
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3

from .errors import ApiUnavailableError, error_for

_LOOPBACK = ("127.", "localhost", "[::1]", "::1")
_RETRY_STATUS = {429, 500, 502, 503, 504}


def is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host.startswith(_LOOPBACK) or host in ("localhost", "::1")


def check_url(url: str) -> None:
    """ConfigurationError unless `url` is an http(s) URL with a host; plain http only to a loopback host
    (the local stack): requests and their signatures would cross the network in the clear."""
    from .errors import ConfigurationError

    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"API URL {url!r:.200} must look like https://<api host>/ (or http://127.0.0.1:<port> for the local stack)"
        )
    if parts.hostname in ("0.0.0.0", "::"):
        raise ConfigurationError(
            f"API URL {url!r:.200}: {parts.hostname} is an address to listen on, not one to connect to; use"
            " http://127.0.0.1:<port> for the local stack"
        )
    if parts.scheme == "http" and not is_local(url):
        raise ConfigurationError(
            f"API URL {url!r:.200}: plain http is only for a loopback host (the local stack, e.g. "
            "http://127.0.0.1:8000); use https:// for any other host"
        )


def _service_and_region(host: str, default_region: str | None) -> tuple[str, str | None]:
    parts = host.split(".")
    if ".lambda-url." in host and len(parts) > 2:
        return "lambda", parts[2]
    if ".execute-api." in host and len(parts) > 2:
        return "execute-api", parts[2]
    return "execute-api", default_region


class Transport:
    def __init__(
        self,
        base_url: str,
        *,
        sign: bool | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        session: Any = None,
    ) -> None:
        check_url(base_url)
        self.base_url = base_url.rstrip("/")
        self.sign = (not is_local(base_url)) if sign is None else sign
        self.retries = retries
        self._pool = urllib3.PoolManager(maxsize=4, timeout=urllib3.Timeout(connect=5.0, read=timeout), retries=False)
        self._signer: Any = None
        if self.sign:
            import boto3
            from botocore.auth import SigV4Auth

            session = session or boto3.session.Session()
            credentials = session.get_credentials()
            if credentials is None:
                from .errors import ConfigurationError

                raise ConfigurationError(
                    f"no AWS credentials found to sign requests to {base_url} (a deployed API takes only SigV4-signed"
                    " requests: set AWS credentials, e.g. AWS_PROFILE; the local stack is http://127.0.0.1:<port>)"
                )
            service, region = _service_and_region(urlsplit(base_url).hostname or "", session.region_name)
            self._signer = SigV4Auth(credentials, service, region or "us-east-1")

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = self.base_url + path
        clean_query = {k: v for k, v in (query or {}).items() if v is not None}
        if clean_query:
            url += "?" + urlencode(clean_query)
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(5.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2))
            headers = {"content-type": "application/json", "accept": "application/json"}
            if self._signer is not None:
                from botocore.awsrequest import AWSRequest

                request = AWSRequest(method=method, url=url, data=data, headers=headers)
                self._signer.add_auth(request)
                headers = dict(request.headers.items())
            try:
                resp = self._pool.request(method, url, body=data, headers=headers)
            except urllib3.exceptions.HTTPError as err:
                last_error = err
                continue
            try:
                payload = json.loads(resp.data.decode("utf-8")) if resp.data else {}
            except ValueError:
                payload = {"message": resp.data.decode("utf-8", "replace")[:500]}
            if resp.status < 400:
                return payload
            if resp.status == 404 and b"NoSuchBucket" in resp.data:
                from .errors import ConfigurationError

                raise ConfigurationError(
                    f"{self.base_url} is the local stack's AWS emulator (moto), not the taskfleet API; use the API"
                    " URL `taskfleet dev` printed (http://127.0.0.1:8000 by default)"
                )
            if resp.status in _RETRY_STATUS and attempt < self.retries:
                last_error = error_for(resp.status, payload)
                continue
            raise error_for(resp.status, payload)
        hint = " (is `taskfleet dev` running?)" if is_local(self.base_url) else ""
        raise ApiUnavailableError(
            f"{method} {self.base_url}{path} failed after {self.retries + 1} attempts{hint}: {last_error}"
        )
