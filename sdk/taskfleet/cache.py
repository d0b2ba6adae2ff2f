"""Job caches: bytes shared by the tasks of one job, as the reference product's `job_cache`.

    from taskfleet.cache import AmazonS3Cache, InMemoryCache, LocalFileSystemCache

    client.runner(cluster, tasks, cache=AmazonS3Cache("my-bucket"))

    def execute(self, context):
        cache = context.job_cache            # this job's scope: no job sees another's keys
        cache["scene"] = b"..."              # bytes only
        data = cache["scene"]                # KeyError if absent
        "scene" in cache; list(cache); dict(cache.items())
        tiles = cache.group("tiles")         # a nested scope with the same API

A runner is given one cache (its root); each task sees `cache.group(<job id>)` as `context.job_cache`.
Iteration yields the keys of one scope, not those of its groups, in sorted order. Names of keys and groups
are checked (`check_name`), so that no name reaches outside its scope: no "/", "\\", control characters,
no leading "." (so neither "." nor ".."), not empty, at most 255 bytes of UTF-8.

Implementations:
- `InMemoryCache`: a dictionary in this process, shared by the tasks of the runners given the same
  instance (tests, single-process runs); thread-safe.
- `LocalFileSystemCache(root)`: files under `root/<job id>/<group>/.../<key>`; runners sharing a file
  system share it. Writes are atomic (a temporary file renamed into place). A name is either a key or a
  group within one scope here (a file and a directory cannot share a name); object stores allow both.
- `AmazonS3Cache(bucket, prefix="jobs")`: objects `<prefix>/<job id>/<group>/.../<key>`; credentials from
  the standard chain, the endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL when set (botocore reads both).

Individual operations are safe to call from several threads; sequences of them (check, then write) are not
atomic, and concurrent writers of one key leave one of their values.
"""

from __future__ import annotations

import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import TaskfleetError

__all__ = [
    "AmazonS3Cache",
    "CacheError",
    "InMemoryCache",
    "InvalidCacheKeyError",
    "JobCache",
    "LocalFileSystemCache",
    "NoCacheConfiguredError",
    "check_name",
]

BytesLike = bytes | bytearray | memoryview  # what a value may be written as; it is read back as bytes
MAX_NAME_BYTES = 255  # a file name on common file systems (ext4, APFS, NTFS)
DEFAULT_S3_PREFIX = "jobs"  # the stack's runner policies grant `<bucket>/jobs/*` and nothing else


class CacheError(TaskfleetError):
    """A job cache could not do what was asked (besides a missing key, which is a KeyError)."""


class InvalidCacheKeyError(CacheError, ValueError):
    """A key or group name that could reach outside its scope, or that no store can hold."""


class NoCacheConfiguredError(CacheError):
    """A task used `context.job_cache` on a runner that was given no cache."""

    def __init__(self) -> None:
        super().__init__(
            "context.job_cache: this task runner has no cache. Give it one with the cache= argument: "
            "client.runner(cluster, tasks, cache=AmazonS3Cache(bucket)) (or InMemoryCache(), "
            "LocalFileSystemCache(root)); `taskfleet runner` uses AmazonS3Cache when TASKFLEET_CACHE_BUCKET is set"
        )


def check_name(name: Any, what: str = "key") -> str:
    """`name` if it can name a key or group inside one scope; InvalidCacheKeyError (naming it) otherwise."""
    if not isinstance(name, str):
        raise InvalidCacheKeyError(f"cache {what} must be a str, not {type(name).__name__}")
    problem = None
    if not name:
        problem = "is empty"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator ('/' or '\\'); use group() for nested scopes"
    elif name.startswith("."):
        problem = "starts with '.' (which would also allow '.' and '..')"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "contains a control character"
    elif len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes (UTF-8)"
    if problem:
        raise InvalidCacheKeyError(f"cache {what} {name!r:.80} {problem}")
    return name


def _check_value(key: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"cache[{key!r}]: values are bytes, not {type(value).__name__} (encode it first)")


class JobCache(ABC):
    """A scope of a job cache: `cache[key] = bytes`, `cache[key]`, `key in cache`, iteration over the
    scope's keys, `items()`, and `group(name)`, a nested scope with the same API."""

    @abstractmethod
    def __setitem__(self, key: str, value: BytesLike) -> None: ...

    @abstractmethod
    def __getitem__(self, key: str) -> bytes:
        """The value of `key`; KeyError if this scope has none."""

    @abstractmethod
    def __contains__(self, key: object) -> bool: ...

    @abstractmethod
    def __iter__(self) -> Iterator[str]:
        """The keys of this scope (not of its groups), sorted."""

    @abstractmethod
    def group(self, name: str) -> JobCache:
        """The nested scope `name` (created on first write)."""

    def items(self) -> Iterator[tuple[str, bytes]]:
        """(key, value) of this scope's keys; a key removed meanwhile by another writer is skipped."""
        for key in self:
            try:
                yield key, self[key]
            except KeyError:
                continue


class InMemoryCache(JobCache):
    """A cache in this process's memory: for tests and single-process runs. Tasks of the runners given the
    same instance share it; nothing persists or reaches another process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, bytes] = {}
        self._groups: dict[str, InMemoryCache] = {}

    def _child(self) -> InMemoryCache:
        child = InMemoryCache()
        child._lock = self._lock  # one lock for the whole tree
        return child

    def __setitem__(self, key: str, value: BytesLike) -> None:
        data = _check_value(check_name(key), value)
        with self._lock:
            self._values[key] = data

    def __getitem__(self, key: str) -> bytes:
        check_name(key)
        with self._lock:
            try:
                return self._values[key]
            except KeyError:
                raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        check_name(key)
        with self._lock:
            return key in self._values

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._values))

    def group(self, name: str) -> InMemoryCache:
        check_name(name, "group")
        with self._lock:
            if name not in self._groups:
                self._groups[name] = self._child()
            return self._groups[name]

    def __repr__(self) -> str:
        return f"InMemoryCache({len(self._values)} keys, {len(self._groups)} groups)"


class LocalFileSystemCache(JobCache):
    """Files under `root` (default ./cache): `root/<job id>/<group>/.../<key>`. Runners on one machine, or
    sharing a file system, share it."""

    def __init__(self, root: str | os.PathLike[str] = "cache") -> None:
        self.root = Path(root)

    def _path(self, key: Any, what: str = "key") -> Path:
        return self.root / check_name(key, what)

    def __setitem__(self, key: str, value: BytesLike) -> None:
        path = self._path(key)
        data = _check_value(key, value)
        if path.is_dir():
            raise CacheError(f"{path}: {key!r} is a group of this scope; a file cache cannot also hold it as a key")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise CacheError(
                f"{self.root}: this group's name is a key of its parent scope; a file cache cannot hold both"
            ) from None
        # Atomic: readers (other runners) see the old value or the new one, never a part. The temporary
        # name starts with "." and so is never a key, nor listed.
        partial = self.root / f".{secrets.token_hex(8)}.partial"
        try:
            partial.write_bytes(data)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def __getitem__(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return self._path(key).is_file()

    def __iter__(self) -> Iterator[str]:
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return iter(())
        return iter(sorted(e.name for e in entries if not e.name.startswith(".") and e.is_file()))

    def group(self, name: str) -> LocalFileSystemCache:
        return LocalFileSystemCache(self._path(name, "group"))

    def __repr__(self) -> str:
        return f"LocalFileSystemCache({str(self.root)!r})"


class _S3:
    """The S3 client of one AmazonS3Cache and all its groups, created on first use (so that a cache can be
    built where no credentials are needed yet, such as the runner's command line)."""

    def __init__(self, session: Any) -> None:
        self._given = session
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
        return self._client

    def _build(self) -> Any:
        from botocore.config import Config

        # botocore's standard retry mode (throttling, 5xx, connection errors); the endpoint comes from
        # AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL when set (botocore reads them).
        config = Config(retries={"mode": "standard", "max_attempts": 5})
        given = self._given
        if given is None:
            import boto3

            return boto3.session.Session().client("s3", config=config)
        if hasattr(given, "put_object"):  # already an S3 client
            return given
        if hasattr(given, "client"):  # a boto3 Session
            return given.client("s3", config=config)
        raise TypeError(f"AmazonS3Cache: session must be None, a boto3 Session or an S3 client, not {given!r:.80}")


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_DENIED = ("403", "AccessDenied", "Forbidden")


class AmazonS3Cache(JobCache):
    """Objects in an S3 bucket: `<prefix>/<job id>/<group>/.../<key>` (prefix "jobs", which the stack's
    runner policies grant; the stack's bucket is its output `CacheBucketName`).

    `session`: None (the standard credential chain), a boto3 Session, or an S3 client (its endpoint, region
    and credentials are used as they are: the local stack's `cache_client()`, say).
    """

    def __init__(self, bucket: str, prefix: str = DEFAULT_S3_PREFIX, session: Any = None) -> None:
        if not isinstance(bucket, str) or not bucket:
            raise CacheError("AmazonS3Cache: bucket must be a bucket name")
        self.bucket = bucket
        parts = [p for p in str(prefix).split("/") if p]
        for part in parts:
            check_name(part, "prefix segment")
        self.prefix = "/".join(parts)
        self._s3 = _S3(session)

    def _scoped(self, name: str) -> AmazonS3Cache:
        child = object.__new__(AmazonS3Cache)
        child.bucket = self.bucket
        child.prefix = f"{self.prefix}/{name}" if self.prefix else name
        child._s3 = self._s3
        return child

    def _key(self, key: Any) -> str:
        name = check_name(key)
        return f"{self.prefix}/{name}" if self.prefix else name

    def __setitem__(self, key: str, value: BytesLike) -> None:
        object_key = self._key(key)
        self._s3.client.put_object(Bucket=self.bucket, Key=object_key, Body=_check_value(key, value))

    def __getitem__(self, key: str) -> bytes:
        object_key = self._key(key)
        try:
            response = self._s3.client.get_object(Bucket=self.bucket, Key=object_key)
        except Exception as err:
            code = _error_code(err)
            # A policy that grants s3:ListBucket only with a prefix condition (the stack's) makes S3 answer
            # 403 rather than 404 for a missing key: a listing tells the two apart.
            if code in _NOT_FOUND or (code in _DENIED and not self._listed(object_key)):
                raise KeyError(key) from None
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def __contains__(self, key: object) -> bool:
        object_key = self._key(key)
        try:
            self._s3.client.head_object(Bucket=self.bucket, Key=object_key)
        except Exception as err:
            code = _error_code(err)
            if code in _NOT_FOUND:
                return False
            if code in _DENIED:  # see __getitem__
                return self._listed(object_key)
            raise
        return True

    def _listed(self, object_key: str) -> bool:
        # The smallest key with this prefix is the key itself, so if it exists it comes first.
        response = self._s3.client.list_objects_v2(Bucket=self.bucket, Prefix=object_key, MaxKeys=1)
        return any(item["Key"] == object_key for item in response.get("Contents", []))

    def __iter__(self) -> Iterator[str]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        paginator = self._s3.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            keys += [item["Key"][len(prefix) :] for item in page.get("Contents", [])]
        # S3 lists in UTF-8 byte order, which is code point order; sorted() makes it explicit.
        return iter(sorted(k for k in keys if k and not k.startswith(".")))

    def group(self, name: str) -> AmazonS3Cache:
        return self._scoped(check_name(name, "group"))

    def __repr__(self) -> str:
        return f"AmazonS3Cache({self.bucket!r}, prefix={self.prefix!r})"
