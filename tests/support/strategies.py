"""Hypothesis strategies for hostile API input: adversarial strings and numbers, any JSON, valid bodies
with one part broken (`mutated`), raw bodies that are not JSON at all (`RAW`), and ids."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

ADVERSARIAL = [
    "",
    " ",
    "#state = :x",
    ":x",
    "#PK",
    "${}",
    "${jndi:ldap://x}",
    "'; DROP TABLE jobs; --",
    '" OR 1=1 --',
    "../../etc/passwd",
    "%00",
    "\x00",
    "\u202e",
    "é",
    "日本語",
    "😀" * 50,
    "a" * 5000,
    "JOBS",
    "CLUSTERS",
    "C#default",
    "TASK#x",
    "default",
    "-",
    "--",
    "0" * 64,
    "00000000-0000-0000-0000-000000000000",
    "null",
    "true",
    "[]",
    "{}",
    "NaN",
    "1e999",
    "-1",
    "9" * 400,
    "<script>alert(1)</script>",
    "\\",
    "/",
]
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 10**30, 1_000_001, 10_001]),
    st.floats(allow_nan=True, allow_infinity=True),
)
STRINGS = st.one_of(st.sampled_from(ADVERSARIAL), st.text(max_size=300))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(STRINGS, inner, max_size=5)),
    max_leaves=25,
)


def task_spec() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"name": st.sampled_from(["Leaf", "T"])},
        optional={
            "version": st.sampled_from(["v0.0", "v1.2"]),
            "input": JSON,
            "depends_on": st.lists(st.integers(0, 3), max_size=3),
            "max_retries": st.integers(0, 3),
            "display": st.text(max_size=50),
        },
    )


def mutated(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body with one key dropped, replaced by any JSON, or an unknown key added."""

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        body = dict(draw(valid))
        how = draw(st.sampled_from(["drop", "replace", "add", "deep"]))
        key = draw(st.sampled_from(sorted(body))) if body else "x"
        if how == "drop":
            body.pop(key, None)
        elif how == "replace":
            body[key] = draw(JSON)
        elif how == "add":
            body[draw(STRINGS)] = draw(JSON)
        else:  # the same key replaced inside a nested object, if there is one
            for value in body.values():
                if isinstance(value, dict) and value:
                    value[draw(st.sampled_from(sorted(value)))] = draw(JSON)
                elif isinstance(value, list) and value and isinstance(value[0], dict) and value[0]:
                    value[0] = {**value[0], draw(st.sampled_from(sorted(value[0]))): draw(JSON)}
        return body

    return build()


RAW = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "{",
            "[" * 5000 + "]" * 5000,
            '{"a":' * 3000 + "1" + "}" * 3000,
            "\x00",
            "null",
            "1",
            '"x"',
            "[]",
            '{"name":"x","tasks":[{"name":"T","input":"\\ud800"}]}',
            '{"name":"\\udfff","tasks":[{"name":"T"}]}',
            '{"name":"x","tasks":[{"name":"T","input":' + "[" * 990 + "]" * 990 + "}]}",
            '{"name":"x","tasks":[{"name":"T","input":1e400}]}',
            '{"name":"x","tasks":[{"name":"T","input":NaN}]}',
            '{"runner_id":"r","claim":{"job_id":"\\ud800","task_id":"t"}}',
            "\ufeff{}",
        ]
    ),
)


def body_strategy(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[str]:
    as_json = st.one_of(valid, mutated(valid), JSON).map(json.dumps)
    return st.one_of(as_json, RAW)


IDS = st.one_of(STRINGS, st.sampled_from(["<job>", "<task>"]))
