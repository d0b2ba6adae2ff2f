"""Pure rules: versions, identifiers, inputs, dependencies, ids, latches."""

from __future__ import annotations

import pytest
from taskfleet import rules
from taskfleet_functions.orchestrator.latches import latch_full, plan_latch, plan_sibling_latch


@pytest.mark.parametrize(
    ("registered", "submitted", "ok"),
    [
        ("v1.3", "v1.3", True),
        ("v1.5", "v1.3", True),
        ("v1.2", "v1.3", False),
        ("v2.0", "v1.3", False),
        ("v1.3", "v2.3", False),
        ("v0.0", "v0.0", True),
        ("bad", "v0.0", False),
        ("v1.3", "1.3", False),
    ],
)
def test_version_compatibility_is_same_major_and_at_least_the_minor(registered, submitted, ok):
    assert rules.can_run(registered, submitted) is ok


@pytest.mark.parametrize("version", ["1.0", "v1", "v1.0.0", "V1.0", "v-1.0", "", "v1.x", "v1.2\n", " v1.2"])
def test_malformed_versions_are_rejected_with_the_expected_shape_named(version):
    with pytest.raises(rules.RuleViolation, match=r"v1\.2"):
        rules.parse_version(version)


def test_input_encoding_rejects_non_json_nan_and_oversize():
    assert rules.encode_input({"a": [1, "x"]}) == '{"a":[1,"x"]}'
    with pytest.raises(rules.RuleViolation, match="not JSON-serializable"):
        rules.encode_input({"a": object()})
    with pytest.raises(rules.RuleViolation, match="not JSON-serializable"):
        rules.encode_input(float("nan"))
    with pytest.raises(rules.RuleViolation, match=f"limit is {rules.MAX_INPUT_BYTES}"):
        rules.encode_input("x" * rules.MAX_INPUT_BYTES)


def test_dependencies_may_only_name_earlier_siblings():
    assert rules.check_dependencies(3, [0, 2, 2]) == [0, 2]
    bad_cases: list[list[int]] = [[3], [4], [-1], [True]]  # True: a bool is an int, and is still rejected
    for bad in bad_cases:
        with pytest.raises(rules.RuleViolation, match="earlier"):
            rules.check_dependencies(3, bad)


def test_child_ids_are_deterministic_per_parent_attempt():
    assert rules.child_task_id("p", 1, 0) == rules.child_task_id("p", 1, 0)
    assert rules.child_task_id("p", 1, 0) != rules.child_task_id("p", 2, 0)
    assert rules.child_task_id("p", 1, 0) != rules.child_task_id("p", 1, 1)
    assert rules.job_id_for_token("t") == rules.job_id_for_token("t") != rules.job_id_for_token("u")


@pytest.mark.parametrize("slug", ["default", "gpu-1a2b3c", "a", "x9"])
def test_valid_slugs(slug):
    assert rules.check_slug(slug) == slug


@pytest.mark.parametrize("slug", ["", "-a", "a-", "A", "a_b", "a" * 41, "a/b", "${x}", "gpu\n", "default\n", "gpu--a"])
def test_invalid_slugs(slug):
    with pytest.raises(rules.RuleViolation):
        rules.check_slug(slug)


@pytest.mark.parametrize("text", ["", "a" * 65, "abc\n", "ab c", "../x"])
def test_implausible_ids_are_recognized(text):
    assert not rules.is_plausible_id(text)


def test_small_dependency_latches_live_on_the_owner_and_large_ones_are_bucketed():
    owner, buckets = plan_latch("deps", range(100))
    assert owner == {"deps_total": 100, "deps_bucketed": False} and buckets == {}
    owner, buckets = plan_latch("deps", range(250))
    assert owner == {"deps_total": 3, "deps_bucketed": True}
    assert buckets == {0: 100, 1: 100, 2: 50}
    # dependencies on scattered siblings: only the buckets that have members exist
    owner, buckets = plan_latch("deps", [*range(0, 150), 950])
    assert owner["deps_total"] == 3 and list(buckets) == [0, 1, 9]


def test_children_and_roots_are_always_in_sibling_buckets():
    # one child: one bucket of one, which holds its figures too; the owner counts full buckets
    assert plan_sibling_latch("children", 1) == ({"children_total": 1, "children_bucketed": True}, {0: 1})
    owner, buckets = plan_sibling_latch("roots", 250)
    assert owner == {"roots_total": 3, "roots_bucketed": True} and buckets == {0: 100, 1: 100, 2: 50}


def test_latch_is_full_when_every_member_arrived():
    assert latch_full({"deps_total": 0}, "deps")
    assert not latch_full({"deps_total": 2, "deps_done": {0}}, "deps")
    assert latch_full({"deps_total": 2, "deps_done": {0, 1}}, "deps")
