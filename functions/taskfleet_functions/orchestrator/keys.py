"""Bearer API keys ("taskfleet keys"): for callers that present a token instead of signing with SigV4 (the
Connect endpoint). A key has a role (`ROLES`); a runner key reaches one cluster only and may carry the lease
its claims get; a full key does what an admin and every cluster's runner may (one Tilebox API key's reach).

A token is `tfk_<key_id>_<secret>` and is shown once, when the key is made: the table keeps only the
SHA-256 of the whole token (`token_hash`, in the `KEYS` partition), so a read of the table yields no usable
key. `verify` answers from a per-process cache for `cache_seconds`: a revocation holds at once in the process
that revoked, and in every other process within `cache_seconds` (the price of not reading the table on every
request)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from taskfleet import rules

from ..dal.dynamo import Item
from ..dal.repository import Table
from .clusters import Clusters
from .errors import InvalidRequest, NotFound, Unauthenticated

ROLES = ("reader", "submitter", "admin", "runner", "full")
RUNNER = "runner"
# The admin's calls and running tasks on every cluster: what one Tilebox API key can do, so the reference's
# examples, which submit and run with one client, run unchanged. For development and trusted automation.
FULL = "full"
TOKEN_PREFIX = "tfk"
MAX_LEASE_SECONDS = 43_200  # SQS's cap on a message's visibility timeout (12 hours): a lease cannot outlast it
MAX_DESCRIPTION_CHARS = 200
# Refusals are cached too, so that the cache is bounded against a caller who sends many made-up tokens: past
# this many entries the expired ones go, and if that is not enough, all of them (a cache, not a record).
MAX_CACHED = 10_000

_KEY_ID = re.compile(r"[0-9a-f]{16}")  # secrets.token_hex(8)
_TOKEN = re.compile(rf"{TOKEN_PREFIX}_([0-9a-f]{{16}})_[A-Za-z0-9_-]{{43}}")  # the secret: token_urlsafe(32)
_MAX_TOKEN_CHARS = 64  # "tfk_" + 16 + "_" + 43 = 64


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    key_id: str
    role: str  # one of ROLES
    cluster: str | None  # runner keys only: the one cluster the key reaches
    lease_seconds: int | None  # runner and full keys: the lease granted to this key's claims (None: the deployment's)
    description: str | None
    created_at: int  # epoch ms
    revoked_at: int | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def new_token() -> tuple[str, str]:
    """A fresh (key id, token) pair."""
    key_id = secrets.token_hex(8)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def parse_token(token: object) -> str | None:
    """The key id a well-formed token names, else None. Whole-string match: no prefix or suffix passes."""
    if not isinstance(token, str) or len(token) != _MAX_TOKEN_CHARS:
        return None
    match = _TOKEN.fullmatch(token)
    return match.group(1) if match else None


def token_hash(token: str) -> str:
    """What the table keeps of a token: the SHA-256 of all of it (the secret is 256 random bits, so a fast
    hash is enough; nothing to stretch)."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_key_id(text: object) -> bool:
    return isinstance(text, str) and bool(_KEY_ID.fullmatch(text))


def check_key(role: str, cluster: str | None, lease_seconds: int | None, description: str | None) -> None:
    """InvalidRequest (or RuleViolation, for a malformed slug) unless these make a key: only a runner key
    names a cluster (it must) and a lease; whether the cluster exists is `Keys.create`'s to check."""
    if role not in ROLES:
        raise InvalidRequest(f"role {role!r:.40} must be one of {', '.join(ROLES)}", code="InvalidRole")
    if role == RUNNER:
        if cluster is None:
            raise InvalidRequest("a runner key needs a cluster: the one cluster it reaches")
        rules.check_slug(cluster)
    elif role == FULL:
        if cluster is not None:
            raise InvalidRequest("a full key reaches every cluster: it takes no cluster")
    elif cluster is not None or lease_seconds is not None:
        raise InvalidRequest(
            f"a key of role {role!r} takes no cluster and no lease_seconds (only runner and full keys do)"
        )
    if lease_seconds is not None and (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, int)
        or not 1 <= lease_seconds <= MAX_LEASE_SECONDS
    ):
        raise InvalidRequest(f"lease_seconds must be 1-{MAX_LEASE_SECONDS} (SQS's 12-hour visibility cap)")
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_CHARS):
        raise InvalidRequest(f"description must be at most {MAX_DESCRIPTION_CHARS} characters")


def _key(item: Item) -> ApiKey:
    return ApiKey(
        key_id=str(item["key_id"]),
        role=str(item["role"]),
        cluster=item.get("cluster"),
        lease_seconds=item.get("lease_seconds"),
        description=item.get("description"),
        created_at=int(item["created_at"]),
        revoked_at=item.get("revoked_at"),
    )


class _Cached(NamedTuple):
    key_id: str
    answer: ApiKey | str  # the key, or why it is refused
    until: int  # epoch ms


class Keys:
    def __init__(self, *, table: Table, clusters: Clusters, clock: Callable[[], int], cache_seconds: float) -> None:
        self.table = table
        self.clusters = clusters
        self.clock = clock
        self.cache_ms = int(cache_seconds * 1000)
        self._cache: dict[str, _Cached] = {}  # token hash -> answer
        self._lock = threading.Lock()  # handlers may verify from several threads (the local stack does)
        # Counts revocations in this process: a look-up that began before one may have read the key unrevoked,
        # and is then answered but not cached (else it would undo `_forget` for cache_seconds).
        self._revocations = 0

    def create(
        self,
        role: str,
        *,
        cluster: str | None = None,
        lease_seconds: int | None = None,
        description: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token. The token is in this answer only: the table keeps its hash."""
        check_key(role, cluster, lease_seconds, description)
        if cluster is not None:
            cluster = str(self.clusters.get(cluster)["slug"])  # 404 ClusterNotFound
        key_id, token = new_token()
        attributes = {
            "key_id": key_id,
            "role": role,
            "cluster": cluster,
            "lease_seconds": lease_seconds,
            "description": description or None,
            "created_at": self.clock(),
            "token_hash": token_hash(token),
        }
        item = {k: v for k, v in attributes.items() if v is not None}
        result = self.table.put_key_if_absent(item)
        # refused: a 64-bit id taken (never seen), or this put's own earlier attempt whose answer was lost
        if not result.ok and (result.item or {}).get("token_hash") != item["token_hash"]:
            raise RuntimeError("a new API key's id exists already; create it again")
        return _key(item), token

    def all(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        return sorted((_key(item) for item in self.table.api_keys()), key=lambda k: (k.created_at, k.key_id))

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key for good (idempotent: a revoked key keeps its first revocation time). This process
        refuses it at once; others when their cached answer expires (`cache_seconds`)."""
        if not is_key_id(key_id):
            raise NotFound(f"API key {key_id!r:.40} does not exist", code="KeyNotFound")
        result = self.table.revoke_key(key_id, self.clock())
        if result.item is None:
            raise NotFound(f"API key {key_id!r} does not exist", code="KeyNotFound")
        self._forget(key_id)
        return _key(result.item)

    def verify(self, token: str) -> ApiKey:
        """The key of a bearer token; Unauthenticated for a malformed, unknown or revoked one (its message
        never quotes the token)."""
        key_id = parse_token(token)
        if key_id is None:
            raise Unauthenticated("malformed API key: expected tfk_<key id>_<secret>")
        digest = token_hash(token)
        now = self.clock()
        with self._lock:
            cached, revocations = self._cache.get(digest), self._revocations
        if cached is None or cached.until <= now:
            cached = _Cached(key_id, self._look_up(key_id, digest), now + self.cache_ms)
            self._remember(digest, cached, now, revocations)
        if isinstance(cached.answer, str):
            raise Unauthenticated(cached.answer)
        return cached.answer

    def _look_up(self, key_id: str, digest: str) -> ApiKey | str:
        """The key, or why it is refused: its hash compared in constant time, so that timing tells nothing
        of a guessed secret."""
        item = self.table.get_key(key_id)
        if item is None or not hmac.compare_digest(str(item.get("token_hash", "")), digest):
            return "unknown API key"
        key = _key(item)
        return f"API key {key_id} is revoked" if key.revoked else key

    def _remember(self, digest: str, entry: _Cached, now: int, revocations: int) -> None:
        with self._lock:
            if revocations != self._revocations:
                return
            if len(self._cache) >= MAX_CACHED:
                for stale in [h for h, e in self._cache.items() if e.until <= now]:
                    del self._cache[stale]
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            self._cache[digest] = entry

    def _forget(self, key_id: str) -> None:
        """Drop this process's cached answers for a key (every token presented with its id)."""
        with self._lock:
            self._revocations += 1
            for digest in [h for h, e in self._cache.items() if e.key_id == key_id]:
                del self._cache[digest]
