"""A thin, typed layer over DynamoDB's low-level client: conditional updates that return the item's
new image on success and its current image on failure (ReturnValuesOnConditionCheckFailure=ALL_OLD), so
that callers never need a read-modify-write. Numbers are ints (times are epoch milliseconds)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Item = dict[str, Any]

_NAME = re.compile(r"#(\w+)")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")

# BatchWriteItem/BatchGetItem return unprocessed keys under load; retry them with jittered backoff,
# a bounded number of times (then raise: the caller's request fails and is retried by its client).
_BATCH_RETRIES = 8


# Our own (de)serializer for the few types taskfleet stores (str, int, bool, None, list, dict, sets of
# numbers): boto3's TypeSerializer would pull boto3 into every handler's cold import.
def to_attribute(value: Any) -> dict[str, Any]:  # noqa: PLR0911  one return per stored type: a flat dispatch
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, float):
        raise TypeError("floats are not stored; use integers (times are epoch milliseconds)")
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, set | frozenset):
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError("only non-empty sets of integers are stored")
        return {"NS": [str(v) for v in value]}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    raise TypeError(f"cannot store a {type(value).__name__}")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def from_attribute(attribute: Mapping[str, Any]) -> Any:  # noqa: PLR0911  one return per DynamoDB type: a flat dispatch
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return _number(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "NS":
        return {_number(v) for v in value}
    if kind == "SS":
        return set(value)
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    raise TypeError(f"unexpected DynamoDB type {kind}")


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in item.items() if v is not None}


def deserialize(raw: Mapping[str, Any] | None) -> Item | None:
    if raw is None:
        return None
    return {k: from_attribute(v) for k, v in raw.items()}


@dataclass(frozen=True)
class UpdateResult:
    ok: bool
    item: Item | None  # new image when ok, current image (or None if absent) when not


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())


class Dynamo:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {"PK": {"S": pk}, "SK": {"S": sk}}

    def get(self, pk: str, sk: str, *, consistent: bool = True, projection: str | None = None) -> Item | None:
        kwargs: dict[str, Any] = {"TableName": self.table, "Key": self._key(pk, sk), "ConsistentRead": consistent}
        if projection:
            names = {f"#{n}": n for n in projection.replace(" ", "").split(",")}
            kwargs["ProjectionExpression"] = ",".join(names)
            kwargs["ExpressionAttributeNames"] = names
        return deserialize(self.client.get_item(**kwargs).get("Item"))

    def batch_get(self, keys: Sequence[tuple[str, str]], *, consistent: bool = True) -> list[Item]:
        out: list[Item] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {
                self.table: {
                    "Keys": [self._key(pk, sk) for pk, sk in keys[start : start + 100]],
                    "ConsistentRead": consistent,
                }
            }
            for resp in self._until_processed(self.client.batch_get_item, pending, "UnprocessedKeys"):
                out.extend(deserialize(raw) or {} for raw in resp.get("Responses", {}).get(self.table, []))
        return out

    @staticmethod
    def _until_processed(call: Any, pending: dict[str, Any], left: str) -> Iterator[dict[str, Any]]:
        """Call a batch API until nothing is left unprocessed (bounded, with backoff); yield each response."""
        for attempt in range(_BATCH_RETRIES + 1):
            resp = call(RequestItems=pending)
            yield resp
            pending = resp.get(left) or {}
            if not pending:
                return
            if attempt == _BATCH_RETRIES:
                raise RuntimeError(f"{left} remained after {_BATCH_RETRIES} retries")
            _backoff(attempt)

    def put_many(self, items: Iterable[Item]) -> None:
        """Unconditional puts, 25 per BatchWriteItem, retrying unprocessed items."""
        batch: list[dict[str, Any]] = []
        for item in items:
            batch.append({"PutRequest": {"Item": serialize(item)}})
            if len(batch) == 25:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        for _ in self._until_processed(self.client.batch_write_item, {self.table: requests}, "UnprocessedItems"):
            pass

    def put(self, item: Item, *, condition: str | None = None, values: Mapping[str, Any] | None = None) -> UpdateResult:
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": serialize(item)}
        if condition:
            kwargs["ConditionExpression"] = condition
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            names = {f"#{n}": n for n in _NAME.findall(condition)}
            if names:
                kwargs["ExpressionAttributeNames"] = names
            if values:
                kwargs["ExpressionAttributeValues"] = serialize(values)
        try:
            self.client.put_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException as err:
            return UpdateResult(False, deserialize(err.response.get("Item")))
        return UpdateResult(True, item)

    def update(
        self,
        pk: str,
        sk: str,
        *,
        set: Mapping[str, Any] | None = None,
        add: Mapping[str, Any] | None = None,
        delete: Mapping[str, Any] | None = None,
        remove: Iterable[str] = (),
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        returns: str = "ALL_NEW",
    ) -> UpdateResult:
        """UpdateItem: SET `set`, ADD `add`, DELETE `delete` (elements from sets), REMOVE `remove`
        (explicitly; a None in `set` is an error). `condition` uses `#attr` for names and `:name` for
        `values`. Attribute names that are not identifiers (`pt#<label>`) get placeholders of their own."""
        names: dict[str, str] = {}
        vals: dict[str, Any] = dict(values or {})
        clauses: list[str] = []

        def name(attr: str) -> str:
            placeholder = f"#{attr}" if _IDENTIFIER.fullmatch(attr) else f"#_n{len(names)}"
            names[placeholder] = attr
            return placeholder

        set_parts = []
        for i, (attr, value) in enumerate((set or {}).items()):
            if value is None:  # DynamoDB stores no "absent" value: removing an attribute is said with `remove`
                raise TypeError(f"update(set={{{attr!r}: None}}): name {attr!r} in remove= to delete it")
            vals[f":_s{i}"] = value
            set_parts.append(f"{name(attr)} = :_s{i}")
        if set_parts:
            clauses.append("SET " + ", ".join(set_parts))
        for keyword, prefix, changes in (("ADD", "a", add), ("DELETE", "d", delete)):
            parts = []
            for i, (attr, value) in enumerate((changes or {}).items()):
                vals[f":_{prefix}{i}"] = value
                parts.append(f"{name(attr)} :_{prefix}{i}")
            if parts:
                clauses.append(f"{keyword} " + ", ".join(parts))
        removed = list(dict.fromkeys(remove))
        if removed:
            clauses.append("REMOVE " + ", ".join(name(a) for a in removed))
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(pk, sk),
            "UpdateExpression": " ".join(clauses),
            "ReturnValues": returns,
        }
        if condition:
            names.update({f"#{n}": n for n in _NAME.findall(condition)})
            kwargs["ConditionExpression"] = condition
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if vals:
            kwargs["ExpressionAttributeValues"] = serialize(vals)
        try:
            resp = self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException as err:
            return UpdateResult(False, deserialize(err.response.get("Item")))
        return UpdateResult(True, deserialize(resp.get("Attributes")))

    def delete(self, pk: str, sk: str) -> None:
        self.client.delete_item(TableName=self.table, Key=self._key(pk, sk))

    def query(
        self,
        *,
        key_condition: str,
        values: Mapping[str, Any],
        index: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        start_key: dict[str, Any] | None = None,
        filter: str | None = None,
    ) -> tuple[list[Item], dict[str, Any] | None]:
        expr = key_condition + " " + (filter or "")
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": serialize(values),
            "ScanIndexForward": forward,
        }
        names = {f"#{n}": n for n in _NAME.findall(expr)}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if index:
            kwargs["IndexName"] = index
        if limit:
            kwargs["Limit"] = limit
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        if filter:
            kwargs["FilterExpression"] = filter
        resp = self.client.query(**kwargs)
        items = [deserialize(raw) or {} for raw in resp.get("Items", [])]
        return items, resp.get("LastEvaluatedKey")

    def query_all(self, **kwargs: Any) -> Iterator[Item]:
        start: dict[str, Any] | None = None
        while True:
            items, start = self.query(start_key=start, **kwargs)
            yield from items
            if not start:
                return
