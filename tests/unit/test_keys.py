"""Bearer API keys (orchestrator/keys.py): the token's format and parsing, what a key may be, the cache of
`verify` (pure, with an in-memory table and a hand-driven clock), and the keys stored in the real table (the
orchestrator in process against the local stack's moto)."""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

import pytest
from taskfleet import rules
from taskfleet_functions.dal.dynamo import Dynamo, Item, UpdateResult
from taskfleet_functions.orchestrator import Orchestrator
from taskfleet_functions.orchestrator import keys as keys_module
from taskfleet_functions.orchestrator.errors import DomainError, InvalidRequest, NotFound, Unauthenticated
from taskfleet_functions.orchestrator.keys import (
    MAX_LEASE_SECONDS,
    ROLES,
    ApiKey,
    Keys,
    check_key,
    new_token,
    parse_token,
    token_hash,
)
from taskfleet_functions.views import key_view

TOKEN = re.compile(r"tfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")

# --- the token -------------------------------------------------------------------------------------------


def test_a_new_token_is_tfk_key_id_secret_and_parses_back_to_its_key_id():
    tokens = [new_token() for _ in range(200)]
    for key_id, token in tokens:
        assert TOKEN.fullmatch(token), token
        assert re.fullmatch(r"[0-9a-f]{16}", key_id)
        assert token.startswith(f"tfk_{key_id}_")
        assert parse_token(token) == key_id
    assert len({t for _, t in tokens}) == len({k for k, _ in tokens}) == 200


def test_a_secret_holding_underscores_and_dashes_still_parses():
    token = "tfk_0123456789abcdef_" + "_-" * 21 + "a"
    assert parse_token(token) == "0123456789abcdef"


_, GOOD = new_token()


@pytest.mark.parametrize(
    "token",
    [
        None,
        b"tfk_0123456789abcdef_" + b"a" * 43,
        "",
        "tfk_",
        GOOD[:-1],  # a secret one short
        GOOD + "a",  # and one long
        GOOD + "\n",
        " " + GOOD[1:],
        "tfx" + GOOD[3:],
        "TFK" + GOOD[3:],
        GOOD[:4] + GOOD[4:20].upper() + GOOD[20:],  # the key id in capitals
        "tfk_0123456789abcdeg_" + "a" * 43,  # not hex
        "tfk_0123456789abcde__" + "a" * 44,  # a 15-digit key id
        "tfk_0123456789abcdef_" + "a" * 42 + "=",  # padding is no url-safe character here
        "tfk_0123456789abcdef_" + "a" * 42 + "/",
        "tfk_0123456789abcdef-" + "a" * 43,
    ],
)
def test_malformed_tokens_do_not_parse(token):
    assert parse_token(token) is None


def test_the_stored_hash_is_the_sha256_of_the_whole_token():
    key_id, token = new_token()
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token_hash(token) != token_hash(f"tfk_{key_id}_{'a' * 43}")


def test_unauthenticated_is_a_401_domain_error():
    err = Unauthenticated("no")
    assert isinstance(err, DomainError) and err.status == 401 and err.code == "Unauthenticated"


# --- what a key may be -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "cluster", "lease", "description"),
    [
        ("reader", None, None, None),
        ("submitter", None, None, "ci"),
        ("admin", None, None, "x" * 200),
        ("runner", "gpu-a10", None, None),
        ("runner", "default", 1, ""),
        ("runner", "default", MAX_LEASE_SECONDS, None),
    ],
)
def test_keys_that_may_be_made(role, cluster, lease, description):
    check_key(role, cluster, lease, description)


@pytest.mark.parametrize(
    ("role", "cluster", "lease", "description", "message"),
    [
        ("boss", None, None, None, "role 'boss' must be one of reader, submitter, admin, runner"),
        ("Reader", None, None, None, "must be one of"),
        ("", None, None, None, "must be one of"),
        ("runner", None, None, None, "a runner key needs a cluster"),
        ("runner", None, 60, None, "a runner key needs a cluster"),
        ("reader", "default", None, None, "a key of role 'reader' takes no cluster and no lease_seconds"),
        ("admin", None, 60, None, "role 'admin' takes no cluster"),
        ("submitter", "default", 60, None, "takes no cluster"),
        ("runner", "default", 0, None, f"lease_seconds must be 1-{MAX_LEASE_SECONDS}"),
        ("runner", "default", -5, None, "lease_seconds must be"),
        ("runner", "default", MAX_LEASE_SECONDS + 1, None, "12-hour"),
        ("runner", "default", True, None, "lease_seconds must be"),
        ("runner", "default", 60.0, None, "lease_seconds must be"),
        ("reader", None, None, "x" * 201, "at most 200 characters"),
    ],
)
def test_keys_that_may_not_be_made_are_refused_with_a_reason(role, cluster, lease, description, message):
    with pytest.raises(InvalidRequest, match=message) as err:
        check_key(role, cluster, lease, description)
    assert err.value.status == 400


@pytest.mark.parametrize("slug", ["Bad Slug", "a--b", "x" * 41, "gpu\n", ""])
def test_a_runner_keys_cluster_must_be_a_slug(slug):
    with pytest.raises(rules.RuleViolation, match="cluster slug"):
        check_key("runner", slug, None, None)


# --- Keys on an in-memory table: creating, the cache of verify, revoking ----------------------------------


class FakeTable:
    """The four key operations of dal.repository.Table, on a dict, with the same answers; counts reads."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.reads = 0
        self.before_read_returns: Any = None  # a hook: runs after a read, before its answer goes back

    def get_key(self, key_id: str) -> Item | None:
        self.reads += 1
        item = dict(self.items[key_id]) if key_id in self.items else None
        if self.before_read_returns:
            self.before_read_returns()
        return item

    def put_key_if_absent(self, attributes: Item) -> UpdateResult:
        if attributes["key_id"] in self.items:
            return UpdateResult(False, dict(self.items[attributes["key_id"]]))
        self.items[attributes["key_id"]] = dict(attributes)
        return UpdateResult(True, dict(attributes))

    def api_keys(self) -> list[Item]:
        return [dict(i) for i in self.items.values()]

    def revoke_key(self, key_id: str, now: int) -> UpdateResult:
        item = self.items.get(key_id)
        if item is None or "revoked_at" in item:
            return UpdateResult(False, dict(item) if item else None)
        item["revoked_at"] = now
        return UpdateResult(True, dict(item))


class FakeClusters:
    def get(self, slug: str) -> Item:
        if slug not in ("default", "gpu-a10"):
            raise NotFound(f"cluster {slug!r} does not exist", code="ClusterNotFound")
        return {"slug": slug}


class Clock:
    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


def fake_keys(table: FakeTable, clock: Clock, cache_seconds: float = 30.0) -> Keys:
    return Keys(table=table, clusters=FakeClusters(), clock=clock, cache_seconds=cache_seconds)  # type: ignore[arg-type]


@pytest.fixture
def table() -> FakeTable:
    return FakeTable()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_verify_answers_from_its_cache_until_cache_seconds_have_passed(table, clock):
    keys = fake_keys(table, clock, cache_seconds=30)
    key, token = keys.create("runner", cluster="gpu-a10", lease_seconds=900, description="rack 4")
    assert keys.verify(token) == key and table.reads == 1
    assert keys.verify(token) == key and table.reads == 1
    clock.ms += 29_999
    assert keys.verify(token) == key and table.reads == 1
    clock.ms += 1
    assert keys.verify(token) == key and table.reads == 2


def test_a_refusal_is_cached_too_and_a_malformed_token_costs_no_read(table, clock):
    keys = fake_keys(table, clock)
    key, token = keys.create("reader")
    wrong = f"tfk_{key.key_id}_{'A' * 43}"
    for _ in range(3):
        with pytest.raises(Unauthenticated, match="unknown API key"):
            keys.verify(wrong)
    assert table.reads == 1
    with pytest.raises(Unauthenticated, match="malformed API key"):
        keys.verify("Bearer " + token)
    assert table.reads == 1


def test_revoke_drops_this_processes_cached_answer_at_once_but_another_process_waits_for_its_cache(table, clock):
    here, elsewhere = fake_keys(table, clock), fake_keys(table, clock)
    key, token = here.create("submitter")
    assert here.verify(token) == key and elsewhere.verify(token) == key
    revoked = here.revoke(key.key_id)
    assert revoked.revoked and revoked.revoked_at == clock.ms
    with pytest.raises(Unauthenticated, match=f"API key {key.key_id} is revoked"):
        here.verify(token)
    assert elsewhere.verify(token) == key  # the documented trade-off: its cached answer, for cache_seconds
    clock.ms += 30_000
    with pytest.raises(Unauthenticated, match="is revoked"):
        elsewhere.verify(token)


def test_a_check_that_read_the_key_before_a_revocation_is_not_cached(table, clock):
    """A verify that read the key unrevoked, with a revoke done in this process before it stored its answer,
    answers (it came first) but must not cache the old answer: the next verify is refused."""
    keys = fake_keys(table, clock)
    key, token = keys.create("admin")
    read, revoked = threading.Event(), threading.Event()

    def hold_the_read() -> None:
        read.set()
        assert revoked.wait(10)

    table.before_read_returns = hold_the_read
    answers: list[Any] = []
    checker = threading.Thread(target=lambda: answers.append(keys.verify(token)))
    checker.start()
    assert read.wait(10)
    table.before_read_returns = None
    keys.revoke(key.key_id)
    revoked.set()
    checker.join(10)
    assert answers == [key]
    with pytest.raises(Unauthenticated, match="is revoked"):
        keys.verify(token)


def test_revoke_is_idempotent_and_an_unknown_or_malformed_key_id_is_404(table, clock):
    keys = fake_keys(table, clock)
    key, _ = keys.create("reader")
    first = keys.revoke(key.key_id)
    clock.ms += 5_000
    assert keys.revoke(key.key_id) == first
    for key_id in ("0123456789abcdef", "not-a-key", key.key_id.upper(), key.key_id + "\n", ""):
        with pytest.raises(NotFound, match="does not exist") as err:
            keys.revoke(key_id)
        assert err.value.code == "KeyNotFound"


def test_a_runner_key_for_an_unknown_cluster_is_404_and_nothing_is_stored(table, clock):
    keys = fake_keys(table, clock)
    with pytest.raises(NotFound, match="'nope' does not exist"):
        keys.create("runner", cluster="nope")
    with pytest.raises(InvalidRequest):
        keys.create("runner")
    assert table.items == {}


def test_a_create_whose_put_was_already_done_returns_the_key_and_a_taken_id_is_an_error(table, clock, monkeypatch):
    keys = fake_keys(table, clock)
    key_id, token = new_token()
    monkeypatch.setattr(keys_module, "new_token", lambda: (key_id, token))
    first, _ = keys.create("reader")
    # the same put again (a retry after a lost answer finds its own item): the same key, no error
    assert keys.create("reader")[0] == first
    # another token under a taken id: refused, the stored key unchanged
    monkeypatch.setattr(keys_module, "new_token", lambda: (key_id, f"tfk_{key_id}_{'b' * 43}"))
    with pytest.raises(RuntimeError, match="exists already"):
        keys.create("reader")
    assert table.items[key_id]["token_hash"] == token_hash(token)


def test_the_key_view_says_everything_but_the_secret():
    key = ApiKey(
        key_id="0123456789abcdef",
        role="runner",
        cluster="gpu-a10",
        lease_seconds=600,
        description="rack 4",
        created_at=1_800_000_000_000,
        revoked_at=None,
    )
    assert key_view(key) == {
        "key_id": "0123456789abcdef",
        "role": "runner",
        "cluster": "gpu-a10",
        "lease_seconds": 600,
        "description": "rack 4",
        "created_at": "2027-01-15T08:00:00.000Z",
        "revoked_at": None,
        "revoked": False,
    }


# --- Keys on the real table (moto) -----------------------------------------------------------------------


def test_keys_in_the_table_create_verify_list_revoke(stack, cluster):
    engine = stack.orchestrator
    key, token = engine.keys.create("runner", cluster=cluster, lease_seconds=120, description="unit")
    assert (key.role, key.cluster, key.lease_seconds, key.description, key.revoked) == (
        "runner",
        cluster,
        120,
        "unit",
        False,
    )
    assert engine.keys.verify(token) == key

    stored = engine.db.get("KEYS", f"KEY#{key.key_id}")
    assert stored is not None and stored["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    secret = token[len(f"tfk_{key.key_id}_") :]
    for value in stored.values():
        assert token not in str(value) and secret not in str(value)

    reader, reader_token = engine.keys.create("reader")
    listed = {k.key_id: k for k in engine.keys.all()}
    assert listed[key.key_id] == key and listed[reader.key_id] == reader

    # a valid key id with another secret, and an unknown key id: refused, never quoting the token
    for wrong in (f"tfk_{key.key_id}_{'A' * 43}", f"tfk_{'0' * 16}_{token[21:]}"):
        with pytest.raises(Unauthenticated) as err:
            engine.keys.verify(wrong)
        assert err.value.message == "unknown API key" and wrong not in str(err.value)

    revoked = engine.keys.revoke(key.key_id)
    assert revoked.revoked_at is not None and revoked.revoked
    with pytest.raises(Unauthenticated, match="is revoked") as err:
        engine.keys.verify(token)  # at once: verify cached it valid above
    assert token not in str(err.value) and token[21:] not in str(err.value)
    assert engine.keys.revoke(key.key_id) == revoked  # again: no change
    assert engine.keys.verify(reader_token) == reader
    assert {k.key_id: k for k in engine.keys.all()}[key.key_id] == revoked
    with pytest.raises(NotFound):
        engine.keys.revoke("0123456789abcdef")


def test_a_key_made_by_one_process_verifies_at_once_in_another(stack, cluster):
    """The read is consistent: no cached "unknown" for a key another process has just made."""
    shared = stack.orchestrator
    other = Orchestrator(shared.db, shared.queues, shared.settings)
    key, token = shared.keys.create("runner", cluster=cluster)
    assert other.keys.verify(token) == key
    with pytest.raises(NotFound, match="does not exist"):
        shared.keys.create("runner", cluster="nope-000000")


def test_listing_reads_every_page(stack):
    """More keys than one Query page holds at this size (1 MB): 'all' pages to the end."""
    shared = stack.orchestrator
    made = {shared.keys.create("reader", description="p" * 200)[0].key_id for _ in range(10)}
    pages: list[int] = []

    class SmallPages(Dynamo):
        def query(self, **kwargs: Any) -> tuple[list[Item], dict[str, Any] | None]:
            items, start = super().query(**{**kwargs, "limit": 3})
            pages.append(len(items))
            return items, start

    engine = Orchestrator(SmallPages(shared.db.client, shared.db.table), shared.queues, shared.settings)
    listed = engine.keys.all()
    assert made <= {k.key_id for k in listed} and len(pages) >= 4
    assert {k.role for k in listed} <= set(ROLES)
