"""The table repository: every read and write the orchestrator makes, by name.

This module is the only place that knows taskfleet's key layout (docs/architecture.md, "Data model") and
spells DynamoDB condition text. The orchestrator's modules call named operations (`claim_queued`,
`compare_and_set`, `signal_latch`, `job_transition`, ...) and pass plain attribute dictionaries; they
never build a key or a condition. Every state change is a conditional write whose failure returns the
item's current image (`UpdateResult.item`), so callers can recognize their own earlier write.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, NamedTuple

from .dynamo import Dynamo, Item, UpdateResult
from .table import JOBS_INDEX, OUTBOX_INDEX

META = "META"
INPUT = "INPUT"
TOKEN = "TOKEN"
CLUSTERS = "CLUSTERS"
KEYS = "KEYS"  # bearer API keys: one partition (there are few)
JOBS = "JOBS"  # GSI1 partition: every job, newest first
OUTBOX = "OUTBOX"  # GSI2 partition: jobs whose dispatch is not confirmed yet

# Removed when an attempt ends. `lease_hash` stays: a retried report of that attempt proves itself with it.
LEASE_ATTRIBUTES = ("lease_owner", "lease_expires")
OUTBOX_ATTRIBUTES = ("outbox_at", "GSI2PK", "GSI2SK")
EXPIRES = "expires_at"  # the table's TTL attribute (epoch seconds)

# --- condition fragments -------------------------------------------------------------------------------
ABSENT = "attribute_not_exists(#PK)"
EXISTS = "attribute_exists(#PK)"
STATE_AND_ATTEMPT = "#state = :state AND #attempt = :attempt"  # compare-and-set on one task attempt
STATE_IS = "#state = :state"


class Holder(NamedTuple):
    """Who may change a task attempt (docs/architecture.md, "Leases and the runner's cluster"): a runner of
    the task's own cluster, naming the task's own job, and, where a lease is held, presenting its token
    (stored as `lease_hash`). Used as extra conditions of the write."""

    job_id: str
    cluster: str
    lease_hash: str | None = None

    def condition(self) -> tuple[str, dict[str, Any]]:
        text = "#job_id = :h_job AND #cluster = :h_cluster"
        values: dict[str, Any] = {":h_job": self.job_id, ":h_cluster": self.cluster}
        if self.lease_hash is not None:
            text += " AND #lease_hash = :h_lease"
            values[":h_lease"] = self.lease_hash
        return text, values


def task_pk(task_id: str) -> str:
    return f"TASK#{task_id}"


def jobs_index_sk(submitted_at: int, job_id: str) -> str:
    """A job's position in GSI1 (jobs newest first): its submission time, then its id."""
    return f"{int(submitted_at):015d}#{job_id}"


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def cluster_sk(slug: str) -> str:
    return f"C#{slug}"


def key_sk(key_id: str) -> str:
    return f"KEY#{key_id}"


def lanes_pk(slug: str) -> str:
    return f"LANES#{slug}"


def latch_sk(kind: str, bucket: int) -> str:
    return f"LATCH#{kind}#{bucket}"


def spec_chunk_sk(parent_attempt: int, chunk: int) -> str:
    return f"KIDS#{parent_attempt}#{chunk}"


STATS = "STATS#"


def stats_sk(group: str, bucket: int) -> str:
    return f"{STATS}{group}#{bucket}"


def _states_in(states: Collection[str]) -> tuple[str, dict[str, Any]]:
    names = [f":s{i}" for i in range(len(states))]
    return f"#state IN ({', '.join(names)})", dict(zip(names, states, strict=True))


class Owner(NamedTuple):
    """Whoever owns a latch: a task (its dependencies, its children) or a job (its roots)."""

    kind: Literal["task", "job"]
    id: str

    @property
    def pk(self) -> str:
        return task_pk(self.id) if self.kind == "task" else job_pk(self.id)


class StatsSlot(NamedTuple):
    """Where a finished task is counted (docs/architecture.md, "Job statistics and progress"): its job's
    stats bucket `STATS#<group>#<bucket>`, its member (index among its siblings), and the code of its
    attempt (`index % 100 + 100 * attempt`)."""

    job_id: str
    group: str
    bucket: int
    member: int
    attempt_code: int

    @property
    def key(self) -> tuple[str, str]:
        return job_pk(self.job_id), stats_sk(self.group, self.bucket)


class Page(NamedTuple):
    items: list[Item]
    cursor: str | None


class BadCursor(ValueError):
    """A pagination cursor this API did not return."""


class ItemTooLarge(Exception):
    """DynamoDB refused a write: the item would exceed its 400 KB (ValidationException)."""


class Table:
    """Named operations on taskfleet's one table. `db` is the thin typed DynamoDB client underneath.

    Retention: every write of a job's items (the job, its tasks, inputs, latches, spec chunks, its submit
    lock) sets `expires_at` (epoch seconds, the table's TTL attribute) to `retention_seconds` from now, so
    DynamoDB deletes a job's items that long after their last change: after the job finished, or after a
    task waited unchanged that long (keep the retention above your longest job). Cluster and lane items
    never expire. A retention of 0 keeps everything."""

    def __init__(self, db: Dynamo, *, retention_seconds: int = 0, clock: Any = time.time) -> None:
        self.db = db
        self.retention_seconds = retention_seconds
        self.clock = clock

    def _expiry(self) -> dict[str, int]:
        return {EXPIRES: int(self.clock()) + self.retention_seconds} if self.retention_seconds else {}

    def _row(self, item: Item) -> Item:
        return {**item, **self._expiry()}

    def _update(self, pk: str, sk: str, *, set: Mapping[str, Any] | None = None, **kwargs: Any) -> UpdateResult:
        """`db.update` of a job's item, refreshing its expiry."""
        return self.db.update(pk, sk, set={**(set or {}), **self._expiry()}, **kwargs)

    # --- rows (items with their keys) ----------------------------------------------------------------

    @staticmethod
    def task_row(attributes: Item) -> Item:
        return {"PK": task_pk(attributes["task_id"]), "SK": META, "type": "task", **attributes}

    @staticmethod
    def input_row(task_id: str, text: str) -> Item:
        return {"PK": task_pk(task_id), "SK": INPUT, "input": text}

    @staticmethod
    def latch_bucket_row(owner: Owner, kind: str, bucket: int, total: int) -> Item:
        return {"PK": owner.pk, "SK": latch_sk(kind, bucket), "total": total}

    @staticmethod
    def sibling_bucket_row(job_id: str, group: str, bucket: int, total: int) -> Item:
        """The sibling bucket of up to 100 children of one parent (`group`: its id) or roots of a job (`group`:
        "root"), in the job's partition: their latch (`total`, `done`) and their figures (docs/architecture.md,
        "Sibling buckets")."""
        return {"PK": job_pk(job_id), "SK": stats_sk(group, bucket), "total": total}

    @staticmethod
    def spec_chunk_row(parent_id: str, parent_attempt: int, chunk: int, attributes: Item) -> Item:
        return {"PK": task_pk(parent_id), "SK": spec_chunk_sk(parent_attempt, chunk), "type": "specs", **attributes}

    def put_rows(self, rows: Iterable[Item]) -> None:
        """Unconditional batch puts: rows nobody else writes yet (ids are deterministic, so a rewrite is
        harmless). Each gets its expiry."""
        self.db.put_many(self._row(row) for row in rows)

    # --- clusters ------------------------------------------------------------------------------------

    def get_cluster(self, slug: str) -> Item | None:
        return self.db.get(CLUSTERS, cluster_sk(slug), consistent=False)

    def put_cluster_if_absent(self, attributes: Item) -> UpdateResult:
        item = {"PK": CLUSTERS, "SK": cluster_sk(attributes["slug"]), "type": "cluster", **attributes}
        return self.db.put(item, condition=ABSENT)

    def clusters(self) -> Iterator[Item]:
        return self.db.query_all(key_condition="#PK = :pk", values={":pk": CLUSTERS})

    def delete_cluster(self, slug: str) -> None:
        self.db.delete(CLUSTERS, cluster_sk(slug))

    def update_cluster(self, slug: str, changes: Mapping[str, Any]) -> Item:
        result = self.db.update(CLUSTERS, cluster_sk(slug), set=changes, condition=EXISTS)
        return result.item or {}

    # --- API keys (orchestrator/keys.py: never the token, only its hash) ------------------------------

    def get_key(self, key_id: str) -> Item | None:
        """Consistent: a key is usable as soon as it is made, and refused as soon as a cached answer expires."""
        return self.db.get(KEYS, key_sk(key_id))

    def put_key_if_absent(self, attributes: Item) -> UpdateResult:
        item = {"PK": KEYS, "SK": key_sk(attributes["key_id"]), "type": "key", **attributes}
        return self.db.put(item, condition=ABSENT)

    def api_keys(self) -> Iterator[Item]:
        return self.db.query_all(key_condition="#PK = :pk", values={":pk": KEYS})

    def revoke_key(self, key_id: str, now: int) -> UpdateResult:
        """Set `revoked_at` once: refused (with the current image) if the key is already revoked, and (with
        none) if there is no such key."""
        return self.db.update(
            KEYS, key_sk(key_id), set={"revoked_at": now}, condition=f"{EXISTS} AND attribute_not_exists(#revoked_at)"
        )

    # --- lanes (a cluster's queue per task identifier) -------------------------------------------------

    def get_lane(self, slug: str, key: str) -> Item | None:
        return self.db.get(lanes_pk(slug), key)

    def lanes(self, slug: str) -> list[Item]:
        return list(self.db.query_all(key_condition="#PK = :pk", values={":pk": lanes_pk(slug)}))

    def put_lane_if_absent(self, slug: str, key: str, attributes: Item) -> UpdateResult:
        item = {"PK": lanes_pk(slug), "SK": key, "type": "lane", **attributes}
        return self.db.put(item, condition=ABSENT)

    def touch_lane(self, slug: str, key: str, now: int) -> None:
        """A runner that may run this lane's tasks asked for it now."""
        self.db.update(lanes_pk(slug), key, set={"runner_seen_at": now}, condition=EXISTS, returns="NONE")

    def delete_lane(self, slug: str, key: str) -> None:
        self.db.delete(lanes_pk(slug), key)

    # --- jobs ----------------------------------------------------------------------------------------

    def get_job(self, job_id: str, *, brief: bool = False) -> Item | None:
        """The job item; `brief` reads only what a runner call needs (id, state, name, trace_parent)."""
        return self.db.get(job_pk(job_id), META, projection="job_id,state,name,trace_parent" if brief else None)

    def put_job_if_absent(self, attributes: Item, *, outbox_due: int) -> UpdateResult:
        """Create the job item, with its outbox entry due at `outbox_due` and its listing entry."""
        item = {
            "PK": job_pk(attributes["job_id"]),
            "SK": META,
            "type": "job",
            **attributes,
            "GSI1PK": JOBS,
            "GSI1SK": jobs_index_sk(attributes["submitted_at"], attributes["job_id"]),
            "outbox_at": outbox_due,
            "GSI2PK": OUTBOX,
            "GSI2SK": f"{outbox_due:015d}",
        }
        return self.db.put(self._row(item), condition=ABSENT)

    def take_submit_lock(self, job_id: str, now: int, stale_before: int) -> bool:
        """The client token's lock: one writer per token; a lock older than `stale_before` is taken over."""
        lock = self._row({"PK": job_pk(job_id), "SK": TOKEN, "at": now})
        return self.db.put(lock, condition=f"{ABSENT} OR #at < :stale", values={":stale": stale_before}).ok

    def job_transition(
        self,
        job_id: str,
        *,
        from_states: Collection[str],
        set: Mapping[str, Any],
        remove: Iterable[str] = (),
        outbox_due: int | None = None,
    ) -> UpdateResult:
        """Move a job out of one of `from_states` (a conditional update); with `outbox_due`, the job also
        gets an outbox entry that the sweeper redoes if the caller dies before clearing it."""
        condition, values = _states_in(from_states)
        fields = dict(set)
        if outbox_due is not None:
            fields.update({"outbox_at": outbox_due, "GSI2PK": OUTBOX, "GSI2SK": f"{outbox_due:015d}"})
        return self._update(job_pk(job_id), META, set=fields, remove=remove, condition=condition, values=values)

    def clear_outbox(self, job_id: str, *, dispatched: int | None = None) -> None:
        """The job's dispatch is done; `dispatched`, if given, is recorded as the last retry's answer."""
        record = {"retry_dispatched": dispatched} if dispatched is not None else None
        self._update(job_pk(job_id), META, set=record, remove=OUTBOX_ATTRIBUTES, condition=EXISTS)

    def due_outbox_job_ids(self, now: int, limit: int) -> list[str]:
        due, _ = self.db.query(
            index=OUTBOX_INDEX,
            key_condition="#GSI2PK = :o AND #GSI2SK <= :now",
            values={":o": OUTBOX, ":now": f"{now:015d}"},
            limit=limit,
        )
        return [str(entry["PK"]).removeprefix("JOB#") for entry in due]

    def list_jobs(
        self,
        *,
        states: Collection[str] = (),
        name: str | None = None,
        clusters: Collection[str] = (),
        automation_ids: Collection[str] = (),
        submitted: tuple[int, int] | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Jobs newest first, filtered (`submitted`: epoch ms, start inclusive, end exclusive; `name`: a part of the
        name, in any case); `cursor` is what the previous page returned. A page may hold fewer than `limit` jobs
        (filters apply after the read)."""
        filters, values = [], {":pk": JOBS}
        for attr, allowed in (("state", states), ("cluster", clusters)):  # attributes the index holds
            if allowed:
                names = [f":{attr}{i}" for i in range(len(allowed))]
                filters.append(f"#{attr} IN ({', '.join(names)})")
                values.update(zip(names, allowed, strict=True))
        key_condition = "#GSI1PK = :pk"
        if submitted is not None:
            key_condition += " AND #GSI1SK BETWEEN :lo AND :hi"
            values[":lo"] = f"{max(0, submitted[0]):015d}"
            values[":hi"] = f"{max(0, submitted[1] - 1):015d}~"  # every job id sorts before "~"
        items, last = self.db.query(
            index=JOBS_INDEX,
            key_condition=key_condition,
            values=values,
            forward=False,
            limit=limit,
            start_key=self._decode_cursor(cursor) if cursor else None,
            filter=" AND ".join(filters) or None,
        )
        # The index holds a few attributes; the page shows each job as `GET /jobs/{id}` does: its item.
        full = {j["job_id"]: j for j in self.db.batch_get([(job_pk(str(i["job_id"])), META) for i in items])}
        jobs = [full.get(str(i["job_id"]), i) for i in items]
        if automation_ids:  # not in the index: filtered on the job items
            jobs = [j for j in jobs if j.get("automation_id") in automation_ids]
        if name:  # the reference's match: part of the name, case-insensitively (DynamoDB has no casefold)
            wanted = name.casefold()
            jobs = [j for j in jobs if wanted in str(j.get("name") or "").casefold()]
        return Page(jobs, self._encode_cursor(last) if last else None)

    @staticmethod
    def jobs_cursor_after(job: Item) -> str:
        """The `list_jobs` cursor that goes on after this job: its key and index position, as the index returns
        them as LastEvaluatedKey."""
        job_id = str(job["job_id"])
        key = {"PK": job_pk(job_id), "SK": META, "GSI1PK": JOBS, "GSI1SK": jobs_index_sk(job["submitted_at"], job_id)}
        return Table._encode_cursor({name: {"S": value} for name, value in key.items()})

    @staticmethod
    def cursor_job_id(cursor: str) -> str:
        """The job a `list_jobs` cursor stops after (the last one the index read, listed or filtered out)."""
        return Table._decode_cursor(cursor)["GSI1SK"]["S"].split("#", 1)[1]

    @staticmethod
    def _encode_cursor(last: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(last).encode()).decode()

    @staticmethod
    def _decode_cursor(cursor: str) -> dict[str, Any]:
        try:
            start = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())
            # exactly the key shape this table returns, or DynamoDB rejects it (a 500, not a 400)
            if (
                not isinstance(start, dict)
                or set(start) != {"PK", "SK", "GSI1PK", "GSI1SK"}
                or not all(
                    isinstance(v, dict) and list(v) == ["S"] and isinstance(v["S"], str) and 0 < len(v["S"]) < 1024
                    for v in start.values()
                )
                or start["GSI1PK"]["S"] != JOBS
            ):
                raise ValueError
        except (ValueError, RecursionError):
            raise BadCursor("cursor is not one this API returned") from None
        return start

    # --- tasks ---------------------------------------------------------------------------------------

    def get_task(self, task_id: str, *, projection: str | None = None) -> Item | None:
        return self.db.get(task_pk(task_id), META, projection=projection)

    def get_tasks(self, task_ids: Iterable[str]) -> list[Item]:
        return self.db.batch_get([(task_pk(t), META) for t in task_ids])

    def get_input(self, task_id: str) -> str | None:
        spilled = self.db.get(task_pk(task_id), INPUT)
        return str(spilled["input"]) if spilled else None

    def get_spec_chunk(self, parent_id: str, parent_attempt: int, chunk: int, *, consistent: bool) -> Item | None:
        return self.db.get(task_pk(parent_id), spec_chunk_sk(parent_attempt, chunk), consistent=consistent)

    def claim_queued(self, task_id: str, lease: Mapping[str, Any], holder: Holder) -> UpdateResult:
        """QUEUED -> RUNNING with `lease` (hash, owner, expiry, start), as a new attempt, for a runner of the
        task's own cluster and job (`holder`, without a lease hash)."""
        guard, values = holder._replace(lease_hash=None).condition()
        return self._update(
            task_pk(task_id),
            META,
            set=lease,
            add={"attempt": 1},
            condition=f"{STATE_IS} AND {guard}",
            values={":state": "QUEUED", **values},
        )

    def create_claimed(self, row: Item) -> UpdateResult:
        """A deferred subtask's first claim: its item is created already RUNNING (a put if absent)."""
        return self.db.put(self._row(row), condition=ABSENT)

    def compare_and_set(
        self,
        task_id: str,
        *,
        state: str,
        attempt: int,
        set: Mapping[str, Any] | None = None,
        add: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        end_lease: bool = False,
        holder: Holder | None = None,
    ) -> UpdateResult:
        """Change one task attempt, only while it is in `state` with `attempt` (and, given a `holder`, only
        for it); `end_lease` removes the lease attributes too. On failure the result carries the current
        image."""
        removed = [*remove, *(LEASE_ATTRIBUTES if end_lease else ())]
        condition, values = STATE_AND_ATTEMPT, {":state": state, ":attempt": attempt}
        if holder is not None:
            guard, guard_values = holder.condition()
            condition, values = f"{condition} AND {guard}", {**values, **guard_values}
        return self._update(
            task_pk(task_id), META, set=set, add=add, remove=removed, condition=condition, values=values
        )

    def extend_lease(self, task_id: str, attempt: int, holder: Holder, expires: int) -> bool:
        guard, values = holder.condition()
        result = self._update(
            task_pk(task_id),
            META,
            set={"lease_expires": expires},
            condition=f"{STATE_AND_ATTEMPT} AND {guard}",
            values={":state": "RUNNING", ":attempt": attempt, **values},
            returns="NONE",
        )
        return result.ok

    def mark_completed(self, task_id: str) -> UpdateResult:
        """A COMPUTED task whose children all completed is completed (a stored flag)."""
        return self._update(
            task_pk(task_id), META, set={"completed": True}, condition=STATE_IS, values={":state": "COMPUTED"}
        )

    def mark_subtree_failed(self, root_id: str) -> None:
        """A task below this optional root failed: the subtree's queued tasks are to be skipped."""
        self._update(task_pk(root_id), META, set={"subtree_failed": True}, condition=EXISTS, returns="NONE")

    def subtree_failed(self, root_id: str) -> bool:
        root = self.db.get(task_pk(root_id), META, projection="subtree_failed")
        return bool(root and root.get("subtree_failed"))

    # --- job statistics (docs/architecture.md, "Job statistics and progress") -------------------------

    @contextmanager
    def _item_too_large(self) -> Iterator[None]:
        """DynamoDB's refusal of a write that would make an item too large, as ItemTooLarge."""
        try:
            yield
        except self.db.client.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") == "ValidationException":
                raise ItemTooLarge(str(err)) from None
            raise

    def record_finish(self, slot: StatsSlot, counters: Mapping[str, int], *, seen: str, stop: int) -> bool:
        """Add a finished task's `counters` to its stats bucket, once (its member joins the number set `seen`),
        unless a job retry took this very attempt out already (its attempt code is in `retried`: a late
        record of an attempt that is no longer the task's). `last_stop` becomes `stop` if that is the
        latest. False: nothing was counted."""
        pk, sk = slot.key
        add = {seen: {slot.member}, **{k: v for k, v in counters.items() if v}}
        once = f"NOT contains(#{seen}, :m) AND NOT contains(#retried, :a)"
        values = {":m": slot.member, ":a": slot.attempt_code}
        with self._item_too_large():
            first = self._update(
                pk,
                sk,
                set={"last_stop": stop},
                add=add,
                condition=f"{once} AND (attribute_not_exists(#last_stop) OR #last_stop < :t)",
                values={**values, ":t": stop},
                returns="NONE",
            )
            if first.ok:
                return True
            old = first.item or {}
            if slot.member in (old.get(seen) or ()) or slot.attempt_code in (old.get("retried") or ()):
                return False
            # not counted yet, and a later stop is recorded already: count it without moving `last_stop`
            return self._update(pk, sk, add=add, condition=once, values=values, returns="NONE").ok

    def unrecord_finish(self, slot: StatsSlot, counters: Mapping[str, int], *, seen: str) -> None:
        """Take a counted task's `counters` out of its stats bucket again (a job retry queues it anew), and
        mark the attempt (`retried`) so that a late record of it counts nothing."""
        pk, sk = slot.key
        values = {":m": slot.member, ":a": slot.attempt_code}
        while True:  # each step is conditional on `seen`, so a record racing in between is never missed
            taken = self._update(
                pk,
                sk,
                add={"retried": {slot.attempt_code}, **{k: -v for k, v in counters.items() if v}},
                delete={seen: {slot.member}},
                condition=f"contains(#{seen}, :m) AND NOT contains(#retried, :a)",
                values=values,
                returns="NONE",
            )
            if taken.ok or slot.attempt_code in ((taken.item or {}).get("retried") or ()):
                return  # done now, or by an earlier (or concurrent) retry of this very attempt
            marked = self._update(  # not counted (yet): only the mark, which keeps a late record out
                pk,
                sk,
                add={"retried": {slot.attempt_code}},
                condition=f"NOT contains(#{seen}, :m)",
                values={":m": slot.member},
                returns="NONE",
            )
            if marked.ok:
                return

    def settle_in_bucket(
        self, slots: Sequence[StatsSlot], counters: Mapping[str, int] | None, *, stop: int
    ) -> UpdateResult | None:
        """One write for tasks of one sibling bucket that settle (completed, FAILED_OPTIONAL, SKIPPED): their
        members join the bucket's latch (`done`) and, given `counters` (their sum), are counted as
        `record_finish` counts each. Ok: the bucket's image after it. Not ok (a replay, a later `last_stop`
        recorded already, a member counted before): the bucket's current image, and nothing changed; the
        caller takes the steps apart. None: the bucket holds no latch (a job written before sibling buckets:
        its latches live elsewhere)."""
        pk, sk = slots[0].key
        assert all(slot.key == (pk, sk) for slot in slots), "one bucket per write"
        members = {slot.member for slot in slots}
        add: dict[str, Any] = {"done": members}
        values: dict[str, Any] = {f":m{i}": slot.member for i, slot in enumerate(slots)}
        clauses = ["attribute_exists(#total)", *(f"NOT contains(#done, :m{i})" for i in range(len(slots)))]
        changes: dict[str, Any] = {}
        if counters is not None:
            add.update({"seen": members, **{k: v for k, v in counters.items() if v}})
            for i, slot in enumerate(slots):
                clauses += [f"NOT contains(#seen, :m{i})", f"NOT contains(#retried, :a{i})"]
                values[f":a{i}"] = slot.attempt_code
            clauses.append("(attribute_not_exists(#last_stop) OR #last_stop < :t)")
            values[":t"] = stop
            changes["last_stop"] = stop
        with self._item_too_large():
            result = self._update(pk, sk, set=changes, add=add, condition=" AND ".join(clauses), values=values)
        if not result.ok and "total" not in (result.item or {}):
            return None
        return result

    def stats_buckets(self, job_id: str) -> Iterator[Item]:
        """Every stats bucket of the job (one Query of its partition, paginated)."""
        return self.db.query_all(
            key_condition="#PK = :pk AND begins_with(#SK, :s)", values={":pk": job_pk(job_id), ":s": STATS}
        )

    # --- latches -------------------------------------------------------------------------------------

    def signal_bucket(self, owner: Owner, kind: str, bucket: int, member: int) -> Item | None:
        """Record `member` in a latch bucket (idempotent); the bucket's image after it (None: no such bucket).
        A replayed signal returns the current image, so a replay that finds the bucket full fires again."""
        return self._update(
            owner.pk,
            latch_sk(kind, bucket),
            add={"done": {member}},
            condition=f"{EXISTS} AND NOT contains(#done, :m)",
            values={":m": member},
        ).item

    def signal_owner(self, owner: Owner, kind: str, member: int) -> Item | None:
        """Record `member` in the latch kept on the owner item (idempotent); the owner's image after it
        (None: no such owner). A replay returns the current image, like `signal_bucket`."""
        attr = f"{kind}_done"
        return self._update(
            owner.pk,
            META,
            add={attr: {member}},
            condition=f"{EXISTS} AND NOT contains(#{attr}, :m)",
            values={":m": member},
        ).item
