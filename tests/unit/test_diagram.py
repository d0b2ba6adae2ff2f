"""The SVG task graph (taskfleet.diagram): structure, layout order, folding, escaping, determinism."""

from __future__ import annotations

import random
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from taskfleet.diagram import render_svg

NS = "{http://www.w3.org/2000/svg}"
Box = tuple[float, float, float, float]


def task(
    task_id: str,
    parent: str | None = None,
    index: int = 0,
    *,
    name: str | None = None,
    display: str | None = None,
    state: str = "COMPUTED",
    deps: tuple[str, ...] = (),
    subtasks: int = 0,
    optional: bool = False,
) -> dict[str, Any]:
    return {
        "id": task_id,
        "parent_id": parent,
        "index": index,
        "name": name or task_id,
        "display": display if display is not None else (name or task_id),
        "state": state,
        "depends_on": list(deps),
        "subtasks": subtasks,
        "optional": optional,
    }


def parse(svg: str) -> ET.Element:
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    return ET.fromstring(svg)


def nodes(root: ET.Element) -> dict[str, ET.Element]:
    found = [g for g in root.iter(f"{NS}g") if "task" in g.get("class", "").split()]
    by_id = {g.get("data-task-id", ""): g for g in found}
    assert len(by_id) == len(found), "one node per task id"
    return by_id


def box(element: ET.Element) -> Box:
    rect = element if element.tag == f"{NS}rect" else element.find(f"{NS}rect")
    assert rect is not None
    return tuple(float(rect.get(key, "nan")) for key in ("x", "y", "width", "height"))  # type: ignore[return-value]


def edges(root: ET.Element, kind: str) -> list[ET.Element]:
    return [p for p in root.iter(f"{NS}path") if p.get("class") == f"edge {kind}"]


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(inner: Box, outer: Box) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


def survey() -> list[dict[str, Any]]:
    """The sample job: Survey > 12 FetchScene (2 MakeTile each), DetectObjects after all scenes, an optional
    FetchWeather that failed, PublishReport after both."""
    scenes = [f"scene-{i}" for i in range(12)]
    tasks = [task("survey", name="Survey", state="RUNNING", subtasks=15)]
    tasks += [
        task(s, "survey", i, name="FetchScene", display=f"FetchScene {i}", subtasks=2) for i, s in enumerate(scenes)
    ]
    tasks += [
        task("detect", "survey", 12, name="DetectObjects", state="QUEUED", deps=tuple(scenes)),
        task("weather", "survey", 13, name="FetchWeather", state="FAILED_OPTIONAL", optional=True),
        task("publish", "survey", 14, name="PublishReport", state="QUEUED", deps=("detect", "weather")),
    ]
    tasks += [
        task(f"tile-{i}-{j}", s, j, name="MakeTile", display=f"MakeTile {i}/{j}")
        for i, s in enumerate(scenes)
        for j in range(2)
    ]
    return tasks


DIAMOND = [
    task("a", state="COMPUTED"),
    task("b", index=1, state="RUNNING", deps=("a",)),
    task("c", index=2, state="FAILED", deps=("a",)),
    task("d", index=3, state="QUEUED", deps=("b", "c")),
    task("e", index=4, state="SKIPPED", deps=("a", "d")),  # a long edge: a is two layers above
    task("f", index=5, state="FAILED_OPTIONAL", optional=True),
]


def test_the_document_is_standalone_svg_with_size_and_view_box():
    root = parse(render_svg(DIAMOND, title="A job"))
    assert root.tag == f"{NS}svg"
    width, height = float(root.get("width", "0")), float(root.get("height", "0"))
    assert width > 0 and height > 0
    assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"
    heading = [t for t in root.iter(f"{NS}text") if t.get("class") == "heading"]
    assert [t.text for t in heading] == ["A job"]


@pytest.mark.parametrize("direction", ["down", "right"])
def test_one_node_per_task_with_its_state(direction):
    found = nodes(parse(render_svg(DIAMOND, direction)))
    assert set(found) == {t["id"] for t in DIAMOND}
    for t in DIAMOND:
        node = found[t["id"]]
        assert node.get("class") == "task"
        assert node.get("data-state") == t["state"]
    assert found["f"].get("data-optional") == "true"
    assert "optional" in "".join(found["f"].itertext())
    assert found["a"].get("data-optional") is None


def test_states_have_distinct_colours_and_the_legend_counts_them():
    root = parse(render_svg(DIAMOND))
    fills = {node.get("data-state"): box_fill(node) for node in nodes(root).values()}
    assert len(set(fills.values())) == len(fills) == 6
    legend = {
        g.get("data-state"): "".join(g.itertext()) for g in root.iter(f"{NS}g") if g.get("class") == "legend-item"
    }
    assert legend["RUNNING"] == "RUNNING 1"
    assert legend["QUEUED"] == "QUEUED 1"
    assert "optional" in legend.values()


def box_fill(element: ET.Element) -> str:
    rect = element.find(f"{NS}rect")
    assert rect is not None
    return rect.get("fill", "")


@pytest.mark.parametrize("direction", ["down", "right"])
def test_one_dependency_edge_per_dependency(direction):
    root = parse(render_svg(DIAMOND, direction))
    drawn = sorted((p.get("data-from"), p.get("data-to")) for p in edges(root, "dependency"))
    assert drawn == sorted((dep, t["id"]) for t in DIAMOND for dep in t["depends_on"])
    assert all(p.get("d", "").startswith("M") for p in edges(root, "dependency"))


@pytest.mark.parametrize(("direction", "axis"), [("down", 1), ("right", 0)])
def test_a_dependant_is_placed_after_its_dependencies(direction, axis):
    found = nodes(parse(render_svg(DIAMOND, direction)))
    for t in DIAMOND:
        for dep in t["depends_on"]:
            before, after = box(found[dep]), box(found[t["id"]])
            assert before[axis] + before[axis + 2] < after[axis], (dep, t["id"])


def test_layers_follow_the_dependencies_not_the_index_order():
    tasks = [
        task("last", index=0, deps=("middle",)),
        task("middle", index=1, deps=("first",)),
        task("first", index=2),
        task("free", index=3),
    ]
    found = nodes(parse(render_svg(tasks)))
    tops = {task_id: box(node)[1] for task_id, node in found.items()}
    assert tops["first"] == tops["free"] < tops["middle"] < tops["last"]


@pytest.mark.parametrize("direction", ["down", "right"])
def test_nodes_and_clusters_do_not_overlap(direction):
    root = parse(render_svg(survey(), direction))
    boxes = [box(node) for node in nodes(root).values()]
    assert len(boxes) == 1 + 15 + 24
    for i, first in enumerate(boxes):
        for second in boxes[i + 1 :]:
            assert not overlap(first, second), (first, second)
    groups = [g for g in root.iter(f"{NS}g") if g.get("class") == "subtasks"]
    clusters = {g.get("data-parent-id"): box(g) for g in groups}
    scene_clusters = [clusters[f"scene-{i}"] for i in range(12)]
    for i, first in enumerate(scene_clusters):
        for second in scene_clusters[i + 1 :]:
            assert not overlap(first, second)


@pytest.mark.parametrize(("direction", "axis"), [("down", 1), ("right", 0)])
def test_subtasks_are_drawn_inside_nested_groups_after_their_parent(direction, axis):
    root = parse(render_svg(survey(), direction))
    outer = [g for g in root.iter(f"{NS}g") if g.get("data-parent-id") == "survey"]
    assert len(outer) == 1
    children = {g.get("data-task-id") for g in outer[0].findall(f"{NS}g") if g.get("class") == "task"}
    assert children == {f"scene-{i}" for i in range(12)} | {"detect", "weather", "publish"}
    inner = {g.get("data-parent-id"): g for g in outer[0].findall(f"{NS}g") if g.get("class") == "subtasks"}
    assert set(inner) == {f"scene-{i}" for i in range(12)}
    found = nodes(root)
    survey_cluster = box(outer[0])
    for i in range(12):
        group = inner[f"scene-{i}"]
        tiles = {g.get("data-task-id") for g in group.findall(f"{NS}g") if g.get("class") == "task"}
        assert tiles == {f"tile-{i}-0", f"tile-{i}-1"}
        cluster = box(group)
        assert inside(cluster, survey_cluster)
        for tile in tiles:
            assert inside(box(found[str(tile)]), cluster)
        parent = box(found[f"scene-{i}"])
        assert parent[axis] + parent[axis + 2] < cluster[axis]  # below (down) or right of (right) its parent
    assert len(edges(root, "subtask")) == 13  # survey and each scene
    assert len(edges(root, "dependency")) == 14


def test_a_task_with_subtasks_has_its_dependants_after_its_whole_group():
    found_root = parse(render_svg(survey()))
    found = nodes(found_root)
    clusters = {g.get("data-parent-id"): box(g) for g in found_root.iter(f"{NS}g") if g.get("class") == "subtasks"}
    detect = box(found["detect"])
    for i in range(12):
        cluster = clusters[f"scene-{i}"]
        assert cluster[1] + cluster[3] < detect[1]


def test_a_wide_layer_is_wrapped_and_its_dependant_still_comes_after_it():
    sources = [task(f"s{i}", index=i, name=f"Source{i}", display=f"Source number {i}") for i in range(60)]
    tasks = [*sources, task("sum", index=60, name="Summary", deps=tuple(s["id"] for s in sources))]
    root = parse(render_svg(tasks))
    assert float(root.get("width", "0")) < 2000  # not one row of 60 nodes
    found = nodes(root)
    rows = {box(found[s["id"]])[1] for s in sources}
    assert len(rows) > 2
    summary = box(found["sum"])
    assert all(box(found[s["id"]])[1] + box(found[s["id"]])[3] < summary[1] for s in sources)
    assert len(edges(root, "dependency")) == 60
    assert sum(1 for p in edges(root, "dependency") if p.get("marker-end")) >= 1  # joiners end on the trunk


def test_a_fan_out_of_identical_leaves_is_folded_into_one_node_with_per_state_counts():
    states = ["COMPUTED"] * 200 + ["RUNNING"] * 10 + ["QUEUED"] * 88 + ["FAILED"] * 2
    random.Random(7).shuffle(states)
    tasks = [task("job", name="Mosaic", state="RUNNING", subtasks=301)]
    tasks += [task(f"t{i}", "job", i, name="MakeTile", state=s) for i, s in enumerate(states)]
    tasks.append(task("merge", "job", 300, name="Merge", state="QUEUED"))
    root = parse(render_svg(tasks))
    found = nodes(root)
    folded = [g for g in found.values() if g.get("class") == "task folded"]
    assert len(folded) == 1
    node = folded[0]
    assert node.get("data-count") == "300"
    assert node.get("data-state") == "FAILED"  # the most significant state present
    text = "".join(node.itertext())
    assert "MakeTile \N{MULTIPLICATION SIGN} 300" in text
    for part in ("FAILED 2", "RUNNING 10", "QUEUED 88", "COMPUTED 200"):
        assert part in text
    assert set(found) == {"job", "merge", node.get("data-task-id")}


@pytest.mark.parametrize(("count", "folded"), [(12, False), (13, True)])
def test_folding_starts_above_the_threshold(count, folded):
    tasks = [task("p", subtasks=count)] + [task(f"c{i}", "p", i, name="Leaf") for i in range(count)]
    found = nodes(parse(render_svg(tasks)))
    assert len(found) == (2 if folded else count + 1)
    assert len(nodes(parse(render_svg(tasks, fold_above=count)))) == count + 1


def test_only_interchangeable_leaves_are_folded():
    tasks = [task("p", subtasks=60)]
    tasks += [task(f"a{i}", "p", i, name="Leaf") for i in range(20)]
    tasks += [task(f"b{i}", "p", 20 + i, name="Leaf", deps=("a0",)) for i in range(20)]  # has a dependency
    tasks += [task(f"c{i}", "p", 40 + i, name="Other", state="QUEUED") for i in range(20)]  # another name
    tasks += [task("x", "p", 60, name="Leaf", subtasks=1), task("xx", "x", 0)]  # has subtasks
    root = parse(render_svg(tasks))
    folded = {g.get("data-name"): g.get("data-count") for g in nodes(root).values() if g.get("data-count")}
    assert folded == {"Leaf": "19", "Other": "20"}  # a0 has dependants
    assert len(edges(root, "dependency")) == 20


def test_ten_thousand_leaves_make_a_small_document():
    tasks = [task("p", name="Survey", subtasks=10_000)]
    tasks += [task(f"t{i}", "p", i, name="MakeTile", state="QUEUED" if i % 3 else "COMPUTED") for i in range(10_000)]
    svg = render_svg(tasks)
    assert len(svg) < 20_000
    found = nodes(parse(svg))
    assert len(found) == 2
    assert [g.get("data-count") for g in found.values() if g.get("data-count")] == ["10000"]


@pytest.mark.parametrize("direction", ["down", "right"])
def test_five_thousand_tasks_render_quickly(direction):
    rng = random.Random(3)
    tasks = [task(f"p{i}", None, i, name=f"Scene{i}", subtasks=4) for i in range(1_000)]
    for i in range(1_000):
        for j in range(4):
            deps = (f"c{i}-{j - 1}",) if j and rng.random() < 0.5 else ()
            tasks.append(task(f"c{i}-{j}", f"p{i}", j, name=f"Step{j}", deps=deps))
    started = time.perf_counter()
    svg = render_svg(tasks, direction)
    elapsed = time.perf_counter() - started
    assert len(nodes(parse(svg))) == 5_000
    assert elapsed < 3.0  # about 0.2 s on a laptop; this catches a quadratic step, not a slow machine


SCRIPT = "<script>alert(1)</script> & \"x\" 'y'"


def test_user_text_is_escaped_and_round_trips():
    hostile_id = 'a"b<c>&d'
    tasks = [
        task(hostile_id, name="<b>Name</b>", display=SCRIPT),
        task("ü-日本", index=1, name="Ünïcode", display="Ünïcode 日本語 ✓", deps=(hostile_id,)),
    ]
    svg = render_svg(tasks, title="</svg><script>x()</script>")
    assert "<script" not in svg
    assert "<b>" not in svg
    root = parse(svg)
    found = nodes(root)
    node = found[hostile_id]
    assert node.get("data-name") == "<b>Name</b>"
    title = node.find(f"{NS}title")
    assert title is not None and title.text == SCRIPT
    label = [t for t in node.findall(f"{NS}text")]
    assert [t.text for t in label] == [SCRIPT]  # short enough to be shown whole
    assert found["ü-日本"].find(f"{NS}text").text == "Ünïcode 日本語 ✓"  # type: ignore[union-attr]
    (edge,) = edges(root, "dependency")
    assert (edge.get("data-from"), edge.get("data-to")) == (hostile_id, "ü-日本")
    heading = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "heading"]
    assert heading == ["</svg><script>x()</script>"]


def test_long_labels_are_cut_but_the_title_keeps_the_whole_text():
    display = "Process the scene " + "very " * 20 + "carefully"
    node = nodes(parse(render_svg([task("t", display=display)])))["t"]
    label = node.find(f"{NS}text")
    assert label is not None and label.text is not None
    assert len(label.text) == 40 and label.text.endswith("…")
    assert display.startswith(label.text[:-1].rstrip())
    title = node.find(f"{NS}title")
    assert title is not None and title.text == display


def test_characters_xml_cannot_hold_are_replaced():
    svg = render_svg([task("t\x00", display="a\x01b\x1b[31mc\ud800")])
    node = nodes(parse(svg))["t\ufffd"]
    title = node.find(f"{NS}title")
    assert title is not None and title.text == "a\ufffdb\ufffd[31mc\ufffd"


@pytest.mark.parametrize("direction", ["up", "left", "", "DOWN", None])
def test_an_unknown_direction_is_rejected(direction):
    with pytest.raises(ValueError, match="direction must be one of 'down', 'right'"):
        render_svg(DIAMOND, direction)
    with pytest.raises(ValueError, match="direction"):
        render_svg([], direction)


@pytest.mark.parametrize("title", [None, "Empty <job>"])
def test_no_tasks_gives_a_small_valid_document(title):
    svg = render_svg([], title=title)
    root = parse(svg)
    assert float(root.get("width", "0")) > 0 and float(root.get("height", "0")) > 0
    assert root.get("viewBox")
    assert nodes(root) == {}
    assert "no tasks" in "".join(root.itertext())
    assert len(svg) < 2_000


def test_the_same_tasks_in_any_order_give_the_same_document():
    tasks = survey() + DIAMOND
    first = render_svg(tasks, title="job")
    assert render_svg(tasks, title="job") == first
    shuffled = list(tasks)
    random.Random(1).shuffle(shuffled)
    assert render_svg(shuffled, title="job") == first
    assert render_svg(tasks, "right", title="job") != first


def test_unusual_input_is_drawn_rather_than_refused():
    tasks = [
        task("orphan", "missing-parent", name="Orphan"),  # its parent is not in the list: a root
        task("odd", index=1, state="PAUSED", deps=("nowhere", "odd", "orphan")),  # unknown state and deps
        task("x", index=2, deps=("y",)),
        task("y", index=3, deps=("x",)),  # a cycle, which the API never returns
        task("orphan", index=4, name="Duplicate"),  # the first of a duplicate id wins
    ]
    tasks[0]["index"] = None
    root = parse(render_svg(tasks))
    found = nodes(root)
    assert set(found) == {"orphan", "odd", "x", "y"}
    assert found["odd"].get("data-state") == "PAUSED"
    assert found["orphan"].get("data-name") == "Orphan"
    assert len(edges(root, "dependency")) == 3  # odd <- orphan, x <- y, y <- x
    legend = [g.get("data-state") for g in root.iter(f"{NS}g") if g.get("class") == "legend-item"]
    assert "PAUSED" in legend
