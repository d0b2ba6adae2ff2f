"""A job's task graph as a standalone SVG document, drawn with the standard library only.

    from taskfleet.diagram import render_svg

    svg = render_svg(tasks, direction="down", title="Survey 2024-06")  # tasks: the dicts of GET /jobs/{id}/tasks
    Path("job.svg").write_text(svg, encoding="utf-8")

Each task dict has `id`, `parent_id` (None for a root), `index`, `name`, `display`, `state`, `depends_on`
(sibling ids), `subtasks` (a count) and `optional`. Missing keys get defaults; a `parent_id` that names no
task in the list makes a root, and a dependency on anything but a sibling is not drawn.

Layout: a small layered ("Sugiyama") layout, applied to one sibling group at a time, innermost groups first.
It works in (main, cross) coordinates: main runs across the layers (down: y, right: x), cross along a layer;
only the output maps them to (x, y).

1. Blocks. A task with subtasks is a block: its node, then (along main) a box, the "cluster", holding the
   layout of its subtasks' group. Clusters nest.
2. Folding. Siblings with no dependencies, no dependants and no subtasks of their own that share a `name`
   become one node when there are more than `fold_above` of them: labelled with the name and the count, with
   the count per state and a bar, coloured by the most significant state present (SEVERITY: FAILED > RUNNING >
   QUEUED > FAILED_OPTIONAL > SKIPPED > COMPUTED: what needs attention, then what is under way or still to do,
   then what is settled). A group of 10,000 such leaves is one node.
3. Layering. Longest-path layering: a task is one layer after its last dependency. A layer whose blocks would
   be wider than MAX_CROSS is wrapped: a block that does not fit moves to the next layer, and its dependants
   after it, so that a fan-out of distinct tasks becomes rows instead of one endless row.
4. Long edges. An edge spanning several layers passes through a narrow placeholder in each layer between, so
   it goes around the blocks there. Edges that share a source (or a target) share placeholders: a fan-in of
   500 tasks is one trunk that the edges join, and the document stays small.
5. Order. Barycenter sweeps reorder each layer to reduce crossings (ties keep the index order).
6. Coordinates. Each layer is placed along cross as close as it can to the mean position of its neighbours
   while keeping its order and spacing (isotonic regression by pool-adjacent-violators), so that chains are
   straight. Layers are stacked along main with a gap where the edges curve.

A dependency edge leaves its task's block at the far end, past the cluster when it has subtasks (a task counts
as completed for its dependants once its subtasks are), and enters the dependant's node. Within a layer the
blocks are aligned at its start, so the stretch of an edge from a short block to the layer's end is free.

Output: `<g class="task" data-task-id=… data-state=…>` per node (folded: `class="task folded"` and
`data-count`, with the id of its first task), `<path class="edge dependency">` per dependency (with
`data-from`/`data-to`), `<path class="edge subtask">` from a parent to its cluster, and
`<g class="subtasks" data-parent-id=…>` holding a cluster's box and contents. Everything taken from the tasks is
XML-escaped, and characters that XML 1.0 cannot hold are replaced by U+FFFD. The same input gives the same text.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple
from xml.sax.saxutils import escape, quoteattr

__all__ = ["SEVERITY", "STATE_COLOURS", "render_svg"]

# State: (fill, stroke, text colour).
STATE_COLOURS: dict[str, tuple[str, str, str]] = {
    "QUEUED": ("#e2e8f0", "#64748b", "#1e293b"),
    "RUNNING": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "COMPUTED": ("#dcfce7", "#16a34a", "#14532d"),
    "FAILED": ("#fee2e2", "#dc2626", "#7f1d1d"),
    "FAILED_OPTIONAL": ("#ffedd5", "#ea580c", "#7c2d12"),
    "SKIPPED": ("#f8fafc", "#94a3b8", "#64748b"),
}
UNKNOWN_COLOURS = ("#f5f5f4", "#a8a29e", "#44403c")
# Most significant first: a folded node takes the colour of the first one present. A state not listed ranks
# just after QUEUED.
SEVERITY = ("FAILED", "RUNNING", "QUEUED", "FAILED_OPTIONAL", "SKIPPED", "COMPUTED")
LEGEND_ORDER = ("QUEUED", "RUNNING", "COMPUTED", "FAILED", "FAILED_OPTIONAL", "SKIPPED")
DIRECTIONS = ("down", "right")

TIMES = "\N{MULTIPLICATION SIGN}"
SEPARATOR = " \N{MIDDLE DOT} "
FONT = 12  # label font size
SMALL = 10  # second lines, legend
MAX_LABEL = 40  # characters of a label before it is cut with an ellipsis
PAD_X = 12  # label to node border
NODE_MIN_W = 84
NODE_H = 34
OPTIONAL_H = 46  # a node with the "optional" line
FOLD_H = 58
STACK = 4  # offset of the card drawn behind a folded node
ITEM_GAP = 24  # between blocks in a layer
PLACEHOLDER = 2  # cross size of a long edge's placeholder
PLACEHOLDER_GAP = 10  # between a placeholder and its neighbours in a layer
PLACEHOLDER_WEIGHT = 1000.0  # how much more a placeholder than a node insists on its place in a layer
LAYER_GAP = 44  # between layers: where edges curve
SUB_GAP = 22  # from a node to its cluster
CLUSTER_PAD = 14
MAX_CROSS = {"down": 1600.0, "right": 1100.0}  # wrap a layer wider than this
PLACEHOLDER_BUDGET = 4  # placeholders per node in a group, at most
MARGIN = 16
HEADING = 28  # height of the title line
LEGEND_H = 28
FONT_FAMILY = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
EDGE_COLOUR = "#475569"
SUBTASK_COLOUR = "#94a3b8"
CLUSTER_FILLS = ("#f8fafc", "#f1f5f9")  # alternating with the depth
CLUSTER_STROKE = "#cbd5e1"

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SPACES = re.compile(r"\s+")


# ---------------------------------------------------------------------------------------------- text helpers


def _clean(value: object) -> str:
    """`value` as text that XML 1.0 can hold (control characters and lone surrogates become U+FFFD)."""
    return _XML_INVALID.sub("\ufffd", "" if value is None else str(value))


def _text(value: str) -> str:
    return escape(value)


def _attr(value: object) -> str:
    return quoteattr(_clean(value))


def _truncate(text: str, limit: int = MAX_LABEL) -> str:
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text_width(text: str, size: float) -> float:
    """An estimate of the width of `text` in a sans-serif font (wide East Asian characters count double)."""
    width = 0.0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += size * (1.0 if unicodedata.east_asian_width(char) in ("W", "F") else 0.62)
    return width


def _num(value: float) -> str:
    return f"{value:.1f}"


def _colours(state: str) -> tuple[str, str, str]:
    return STATE_COLOURS.get(state, UNKNOWN_COLOURS)


def _rank(state: str) -> float:
    return SEVERITY.index(state) if state in SEVERITY else 2.5


def _int(value: object) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return 0
    return 0


# ---------------------------------------------------------------------------------------------- model


class _Row(NamedTuple):
    """One task of the input, normalized."""

    id: str
    parent: str | None
    position: int  # the task's `index`
    name: str
    display: str
    state: str
    deps: tuple[str, ...]
    subtasks: int
    optional: bool


class _Slot:
    """A place in a layer: a block (a `_Node`) or a placeholder that long edges pass through."""

    __slots__ = ("center", "down", "key", "layer", "order", "size", "trunk", "up")

    def __init__(self, size: float) -> None:
        self.size = size  # extent along cross
        self.layer = 0
        self.order = 0  # position in its layer
        self.center = 0.0  # along cross, relative to its group's content
        self.key = 0.0  # sort key while ordering
        self.up: list[_Slot] = []  # neighbours in the layer before
        self.down: list[_Slot] = []  # neighbours in the layer after
        self.trunk: list[_Slot] = []  # a placeholder's neighbours along its channel: it lines up with them


class _Node(_Slot):
    """A task or a folded bundle of tasks, with the cluster of its subtasks if it has any."""

    __slots__ = (
        "bm",
        "counts",
        "deps",
        "group",
        "h",
        "label",
        "name",
        "nc",
        "nm",
        "optional",
        "seq",
        "state",
        "task_id",
        "title",
        "w",
    )

    def __init__(self, row: _Row, label: str, title: str, width: float, height: float) -> None:
        super().__init__(0.0)
        self.task_id = row.id  # a folded node: its first task's
        self.name = row.name
        self.label = label
        self.title = title
        self.state = row.state
        self.optional = row.optional
        self.counts: dict[str, int] | None = None  # per state, for a folded node
        self.w, self.h = width, height  # the node's box
        self.nm = self.nc = 0.0  # the node's box along main and cross
        self.bm = 0.0  # the block (node and cluster) along main
        self.seq = 0  # position in its group's items
        self.deps: list[_Node] = []
        self.group: _Group | None = None


class _Group:
    """The children of one parent (or the roots), laid out in layers."""

    __slots__ = (
        "cross",
        "depth",
        "edges",
        "items",
        "layer_size",
        "layer_start",
        "layers",
        "main",
        "oc",
        "om",
        "parent",
    )

    def __init__(self, parent: _Node | None, depth: int) -> None:
        self.parent = parent
        self.depth = depth
        self.items: list[_Node] = []
        self.layers: list[list[_Slot]] = []
        self.layer_start: list[float] = []
        self.layer_size: list[float] = []
        self.edges: list[_Edge] = []
        self.main = self.cross = 0.0  # size of the content
        self.om = self.oc = 0.0  # absolute origin of the content


class _Edge:
    """A dependency; `slots` is what its path is drawn through: from its source (or a placeholder where it
    leaves a shared trunk) to its target (or a placeholder where it joins one)."""

    __slots__ = ("dst", "slots", "src")

    def __init__(self, src: _Node, dst: _Node) -> None:
        self.src = src
        self.dst = dst
        self.slots: list[_Slot] = [src, dst]


class _Axes:
    """Maps (main, cross) to (x, y) for a direction, with the canvas offset."""

    def __init__(self, direction: str) -> None:
        self.down = direction == "down"
        self.max_cross = MAX_CROSS[direction]
        self.dx = self.dy = 0.0

    def split(self, width: float, height: float) -> tuple[float, float]:
        """(main, cross) extents of a (width, height) box."""
        return (height, width) if self.down else (width, height)

    def xy(self, main: float, cross: float) -> tuple[float, float]:
        x, y = (cross, main) if self.down else (main, cross)
        return x + self.dx, y + self.dy

    def box(self, main: float, cross: float, main_size: float, cross_size: float) -> tuple[float, float, float, float]:
        x, y = self.xy(main, cross)
        width, height = (cross_size, main_size) if self.down else (main_size, cross_size)
        return x, y, width, height


# ---------------------------------------------------------------------------------------------- input


def _read(tasks: Iterable[Mapping[str, Any]]) -> dict[str | None, list[_Row]]:
    """The tasks by parent id (None: the roots), each list in index order; the first of a duplicate id wins."""
    rows: dict[str, _Row] = {}
    for task in tasks:
        row = _row(task)
        rows.setdefault(row.id, row)
    children: dict[str | None, list[_Row]] = {}
    for row in rows.values():
        parent = row.parent if row.parent in rows and row.parent != row.id else None
        children.setdefault(parent, []).append(row)
    for siblings in children.values():
        siblings.sort(key=lambda r: (r.position, r.id))
    return children


def _row(task: Mapping[str, Any]) -> _Row:
    parent = task.get("parent_id")
    state = _clean(task.get("state") or "QUEUED")
    return _Row(
        id=_clean(task.get("id")),
        parent=None if parent is None else _clean(parent),
        position=_int(task.get("index")),
        name=_clean(task.get("name")),
        display=_clean(task.get("display")),
        state=state,
        deps=tuple(_clean(dep) for dep in task.get("depends_on") or ()),
        subtasks=_int(task.get("subtasks")),
        optional=bool(task.get("optional")),
    )


# ---------------------------------------------------------------------------------------------- nodes


def _task_node(row: _Row) -> _Node:
    label = _truncate(row.display or row.name or row.id) or "(unnamed)"
    width = max(NODE_MIN_W, _text_width(label, FONT) + 2 * PAD_X)
    return _Node(row, label, row.display or row.name or row.id, width, OPTIONAL_H if row.optional else NODE_H)


def _count_text(counts: Mapping[str, int]) -> str:
    return SEPARATOR.join(f"{state} {count}" for state, count in counts.items())


def _folded_node(rows: Sequence[_Row]) -> _Node:
    tally = Counter(row.state for row in rows)
    counts = {state: tally[state] for state in sorted(tally, key=lambda s: (_rank(s), s))}
    label = f"{_truncate(rows[0].name or '(unnamed)')} {TIMES} {len(rows)}"
    count_text = _count_text(counts)
    width = max(_text_width(label, FONT), _text_width(count_text, SMALL)) + 2 * PAD_X + STACK
    first = rows[0]._replace(state=next(iter(counts)), optional=all(row.optional for row in rows))
    node = _Node(first, label, f"{label}\n{count_text}", max(NODE_MIN_W, width), FOLD_H)
    node.counts = counts
    return node


def _make_items(rows: Sequence[_Row], parents: set[str | None], fold_above: int) -> list[_Node]:
    """The nodes of one sibling group in index order, folding what `fold_above` says, with their dependencies."""
    ids = {row.id for row in rows}
    deps = {row.id: list(dict.fromkeys(d for d in row.deps if d in ids and d != row.id)) for row in rows}
    depended = {dep for names in deps.values() for dep in names}
    bundles: dict[str, list[_Row]] = {}
    for row in rows:
        if not deps[row.id] and row.id not in depended and row.subtasks <= 0 and row.id not in parents:
            bundles.setdefault(row.name, []).append(row)
    folded = {row.id: bundle for bundle in bundles.values() if len(bundle) > fold_above for row in bundle}
    items: list[_Node] = []
    by_id: dict[str, _Node] = {}
    for row in rows:
        if row.id not in folded:
            by_id[row.id] = _task_node(row)
            items.append(by_id[row.id])
        elif folded[row.id][0] is row:
            items.append(_folded_node(folded[row.id]))
    for task_id, node in by_id.items():
        node.deps = [by_id[dep] for dep in deps[task_id]]
    for seq, node in enumerate(items):
        node.seq = seq
    return items


def _build(children: dict[str | None, list[_Row]], fold_above: int) -> list[_Group]:
    """All groups, breadth first from the roots' group."""
    parents = set(children)
    root = _Group(None, 0)
    groups = [root]
    queue: deque[tuple[_Group, list[_Row]]] = deque([(root, children.get(None, []))])
    while queue:
        group, rows = queue.popleft()
        group.items = _make_items(rows, parents, fold_above)
        for node in group.items:
            if node.counts is None and node.task_id in children:
                node.group = _Group(node, group.depth + 1)
                groups.append(node.group)
                queue.append((node.group, children[node.task_id]))
    return groups


# ---------------------------------------------------------------------------------------------- layout


def _size_block(node: _Node, axes: _Axes) -> None:
    node.nm, node.nc = axes.split(node.w, node.h)
    node.bm, node.size = node.nm, node.nc
    if node.group is not None:
        node.bm += SUB_GAP + node.group.main + 2 * CLUSTER_PAD
        node.size = max(node.nc, node.group.cross + 2 * CLUSTER_PAD)


def _longest_path(items: Sequence[_Node]) -> list[int]:
    """Longest-path layer of each item (Kahn's algorithm; a cycle, which valid jobs lack, is cut where found)."""
    count = len(items)
    layer = [0] * count
    pending = [len(node.deps) for node in items]
    dependants: list[list[int]] = [[] for _ in items]
    for node in items:
        for dep in node.deps:
            dependants[dep.seq].append(node.seq)
    ready = deque(i for i in range(count) if pending[i] == 0)
    done = [False] * count
    cursor = 0
    while True:
        while ready:
            i = ready.popleft()
            done[i] = True
            for j in dependants[i]:
                layer[j] = max(layer[j], layer[i] + 1)
                pending[j] -= 1
                if pending[j] == 0:
                    ready.append(j)
        while cursor < count and done[cursor]:
            cursor += 1
        if cursor == count:
            return layer
        pending[cursor] = 0
        ready.append(cursor)


def _assign_layers(group: _Group, max_cross: float) -> None:
    """Longest-path layers, wrapped so that the blocks of a layer fit in `max_cross` (a dependant stays after
    its dependencies)."""
    longest = _longest_path(group.items)
    used: list[float] = []
    placed: set[int] = set()
    onward: list[int] = []  # a layer's own index while open; a later one's once something did not fit in it
    for node in sorted(group.items, key=lambda n: (longest[n.seq], n.seq)):
        layer = _open_layer(onward, max((dep.layer + 1 for dep in node.deps if dep.seq in placed), default=0))
        while layer < len(used) and used[layer] + ITEM_GAP + node.size > max_cross:
            onward[layer] = layer + 1
            layer = _open_layer(onward, layer + 1)
        if layer == len(used):
            used.append(-ITEM_GAP)
            onward.append(layer)
            group.layers.append([])
        used[layer] += ITEM_GAP + node.size
        node.layer = layer
        group.layers[layer].append(node)
        placed.add(node.seq)


def _open_layer(onward: list[int], layer: int) -> int:
    """The first open layer from `layer` on (or a new one), shortening the links it follows."""
    found = layer
    while found < len(onward) and onward[found] != found:
        found = onward[found]
    while layer < found:
        onward[layer], layer = found, onward[layer]
    return found


def _link(upper: _Slot, lower: _Slot, linked: set[tuple[int, int]]) -> None:
    pair = (id(upper), id(lower))  # membership only: the lists keep the (deterministic) order of linking
    if pair not in linked:
        linked.add(pair)
        upper.down.append(lower)
        lower.up.append(upper)


def _connect(group: _Group) -> None:
    """The edges of the group. A long edge gets placeholders in the layers it crosses, shared by the edges of
    its channel (one source or one target); past a budget (a dense graph of thousands of siblings), the
    channels that span the most layers are drawn straight instead."""
    edges = [_Edge(dep, node) for node in group.items for dep in node.deps]
    linked: set[tuple[int, int]] = set()
    channels: dict[tuple[bool, int], list[_Edge]] = {}
    long_edges = [edge for edge in edges if edge.dst.layer - edge.src.layer > 1]
    long_out = Counter(edge.src.seq for edge in long_edges)
    long_in = Counter(edge.dst.seq for edge in long_edges)
    for edge in edges:
        if edge.dst.layer - edge.src.layer == 1:
            _link(edge.src, edge.dst, linked)
        elif edge.dst.layer - edge.src.layer > 1:
            by_source = long_out[edge.src.seq] > long_in[edge.dst.seq]
            channels.setdefault((by_source, edge.src.seq if by_source else edge.dst.seq), []).append(edge)
    budget = PLACEHOLDER_BUDGET * len(group.items)
    for (by_source, _), members in sorted(channels.items(), key=lambda kv: _span(kv[0][0], kv[1])):
        budget -= _span(by_source, members)
        if budget < 0:
            break
        if by_source:
            _source_channel(group, members, linked)
        else:
            _target_channel(group, members, linked)
    group.edges = edges


def _span(by_source: bool, edges: Sequence[_Edge]) -> int:
    """How many placeholders a channel needs."""
    if by_source:
        return max(edge.dst.layer for edge in edges) - edges[0].src.layer - 1
    return edges[0].dst.layer - min(edge.src.layer for edge in edges) - 1


def _chain(group: _Group, first: int, last: int, end: _Node, linked: set[tuple[int, int]]) -> dict[int, _Slot]:
    """Linked placeholders in layers `first` to `last`, each lined up with its neighbour towards `end` (the
    channel's source or target), so that the trunk is straight."""
    placeholders: dict[int, _Slot] = {}
    for layer in range(first, last + 1):
        slot = placeholders[layer] = _Slot(PLACEHOLDER)
        slot.layer = layer
        group.layers[layer].append(slot)
        if layer > first:
            _link(placeholders[layer - 1], slot, linked)
    for layer, slot in placeholders.items():
        toward = layer - 1 if end.layer < first else layer + 1
        slot.trunk.append(placeholders.get(toward, end))
    return placeholders


def _source_channel(group: _Group, edges: Sequence[_Edge], linked: set[tuple[int, int]]) -> None:
    """Edges from one source along one trunk; the first edge to go further draws it on from where it ends."""
    source = edges[0].src
    placeholders = _chain(group, source.layer + 1, max(edge.dst.layer for edge in edges) - 1, source, linked)
    _link(source, placeholders[source.layer + 1], linked)
    drawn = source.layer
    for edge in sorted(edges, key=lambda e: e.dst.layer):
        last = edge.dst.layer - 1
        _link(placeholders[last], edge.dst, linked)
        if last > drawn:
            head: list[_Slot] = [source] if drawn == source.layer else [placeholders[drawn]]
            edge.slots = [*head, *(placeholders[k] for k in range(drawn + 1, last + 1)), edge.dst]
            drawn = last
        else:
            edge.slots = [placeholders[last], edge.dst]


def _target_channel(group: _Group, edges: Sequence[_Edge], linked: set[tuple[int, int]]) -> None:
    """Edges into one target along one trunk: the nearest source draws it; the others draw until they join."""
    target = edges[0].dst
    placeholders = _chain(group, min(edge.src.layer for edge in edges) + 1, target.layer - 1, target, linked)
    _link(placeholders[target.layer - 1], target, linked)
    joined = target.layer
    for edge in sorted(edges, key=lambda e: -e.src.layer):
        first = edge.src.layer + 1
        _link(edge.src, placeholders[first], linked)
        if first < joined:
            tail: list[_Slot] = [target] if joined == target.layer else [placeholders[joined]]
            edge.slots = [edge.src, *(placeholders[k] for k in range(first, joined)), *tail]
            joined = first
        else:
            edge.slots = [edge.src, placeholders[first]]


def _renumber(layer: list[_Slot]) -> None:
    for order, slot in enumerate(layer):
        slot.order = order


def _position(slot: _Slot, size: int) -> float:
    return (slot.order + 0.5) / size


def _order(layers: list[list[_Slot]], sweeps: int = 4) -> None:
    """Barycenter sweeps, down then up: a slot moves to the mean relative position of its neighbours."""
    for layer in layers:
        _renumber(layer)
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        indices = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
        for index in indices:
            layer = layers[index]
            other = len(layers[index - 1 if downward else index + 1])
            for slot in layer:
                neighbours = slot.up if downward else slot.down
                if neighbours:
                    slot.key = sum(_position(n, other) for n in neighbours) / len(neighbours)
                else:
                    slot.key = _position(slot, len(layer))
            layer.sort(key=lambda s: (s.key, s.order))
            _renumber(layer)


def _gap(left: _Slot, right: _Slot) -> float:
    both = isinstance(left, _Node) and isinstance(right, _Node)
    return (ITEM_GAP if both else PLACEHOLDER_GAP) + (left.size + right.size) / 2


def _pack(layer: Sequence[_Slot], desired: Sequence[float]) -> None:
    """Centers as close as they can be to `desired` (weighted least squares; a placeholder weighs more, so that
    trunks stay straight) keeping order and gaps: with the offsets o_i of a packed row, y_i = center_i - o_i
    must not decrease, which pool-adjacent-violators solves."""
    offsets = [0.0]
    for left, right in itertools.pairwise(layer):
        offsets.append(offsets[-1] + _gap(left, right))
    sums: list[float] = []  # per pooled block: the weighted sum of y, the weight, the number of slots
    weights: list[float] = []
    counts: list[int] = []
    for slot, want, offset in zip(layer, desired, offsets, strict=True):
        weight = 1.0 if isinstance(slot, _Node) else PLACEHOLDER_WEIGHT
        sums.append((want - offset) * weight)
        weights.append(weight)
        counts.append(1)
        while len(sums) > 1 and sums[-2] * weights[-1] > sums[-1] * weights[-2]:
            total, pooled, count = sums.pop(), weights.pop(), counts.pop()
            sums[-1] += total
            weights[-1] += pooled
            counts[-1] += count
    index = 0
    for total, weight, count in zip(sums, weights, counts, strict=True):
        for _ in range(count):
            layer[index].center = total / weight + offsets[index]
            index += 1


def _mean_center(slots: Sequence[_Slot], default: float) -> float:
    return sum(slot.center for slot in slots) / len(slots) if slots else default


def _place_cross(layers: list[list[_Slot]], iterations: int = 7) -> float:
    """Cross positions of all slots, from 0; returns the extent."""
    for layer in layers:
        _pack(layer, [0.0] * len(layer))
        shift = (layer[0].center + layer[-1].center) / 2 if layer else 0.0
        for slot in layer:
            slot.center -= shift
    neighbours = {id(slot): slot.trunk or slot.up + slot.down for layer in layers for slot in layer}
    for iteration in range(iterations):
        for layer in layers if iteration % 2 == 0 else reversed(layers):
            _pack(layer, [_mean_center(neighbours[id(slot)], slot.center) for slot in layer])
    slots = [slot for layer in layers for slot in layer]
    if not slots:
        return 0.0
    left = min(slot.center - slot.size / 2 for slot in slots)
    for slot in slots:
        slot.center -= left
    return max(slot.center + slot.size / 2 for slot in slots)


def _place_main(group: _Group) -> None:
    main = 0.0
    for layer in group.layers:
        size = max((slot.bm for slot in layer if isinstance(slot, _Node)), default=0.0)
        group.layer_start.append(main)
        group.layer_size.append(size)
        main += size + LAYER_GAP
    group.main = max(0.0, main - LAYER_GAP)


def _layout_group(group: _Group, axes: _Axes) -> None:
    for node in group.items:
        _size_block(node, axes)
    _assign_layers(group, axes.max_cross)
    _connect(group)
    _order(group.layers)
    group.cross = _place_cross(group.layers)
    _place_main(group)


def _place_absolute(groups: Sequence[_Group]) -> None:
    """Content origins, breadth first (a parent's group before its children's)."""
    for group in groups:
        for node in group.items:
            if node.group is not None:
                cluster_cross = node.group.cross + 2 * CLUSTER_PAD
                node.group.om = group.om + group.layer_start[node.layer] + node.nm + SUB_GAP + CLUSTER_PAD
                node.group.oc = group.oc + node.center - cluster_cross / 2 + CLUSTER_PAD


# ---------------------------------------------------------------------------------------------- output


def _node_box(node: _Node, group: _Group, axes: _Axes) -> tuple[float, float, float, float]:
    main = group.om + group.layer_start[node.layer]
    return axes.box(main, group.oc + node.center - node.nc / 2, node.nm, node.nc)


def _rect(x: float, y: float, width: float, height: float, extra: str) -> str:
    return f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(width)}" height="{_num(height)}" {extra}/>'


def _node_style(node: _Node) -> str:
    fill, stroke, _ = _colours(node.state)
    dashed = ' stroke-dasharray="5 3"' if node.optional or node.state == "SKIPPED" else ""
    return f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dashed}'


def _label(x: float, y: float, text: str, *, size: int, colour: str, extra: str = "") -> str:
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="middle" font-size="{size}" fill="{colour}"{extra}>'
        f"{_text(text)}</text>"
    )


def _task_svg(node: _Node, group: _Group, axes: _Axes) -> str:
    x, y, width, height = _node_box(node, group, axes)
    colour = _colours(node.state)[2]
    optional = ' data-optional="true"' if node.optional else ""
    parts = [
        f'<g class="task" data-task-id={_attr(node.task_id)} data-state={_attr(node.state)} '
        f"data-name={_attr(node.name)}{optional}>",
        f"<title>{_text(node.title)}</title>",
        _rect(x, y, width, height, _node_style(node)),
        _label(x + width / 2, y + (19 if node.optional else 21), node.label, size=FONT, colour=colour),
    ]
    if node.optional:
        parts.append(_label(x + width / 2, y + 35, "optional", size=SMALL, colour=colour, extra=' font-style="italic"'))
    parts.append("</g>")
    return "".join(parts)


def _folded_svg(node: _Node, group: _Group, axes: _Axes) -> str:
    counts = node.counts or {}
    x, y, width, height = _node_box(node, group, axes)
    width, height = width - STACK, height - STACK
    colour = _colours(node.state)[2]
    spans: list[str] = []
    for state, count in counts.items():
        if spans:
            spans.append(f'<tspan fill="#64748b">{SEPARATOR}</tspan>')
        spans.append(f'<tspan fill="{_colours(state)[1]}">{_text(state)} {count}</tspan>')
    total = sum(counts.values())
    return "".join(
        [
            f'<g class="task folded" data-task-id={_attr(node.task_id)} data-state={_attr(node.state)} '
            f'data-name={_attr(node.name)} data-count="{total}">',
            f"<title>{_text(node.title)}</title>",
            _rect(x + STACK, y + STACK, width, height, _node_style(node)),
            _rect(x, y, width, height, _node_style(node)),
            _label(x + width / 2, y + 19, node.label, size=FONT, colour=colour, extra=' font-weight="bold"'),
            f'<text x="{_num(x + width / 2)}" y="{_num(y + 35)}" text-anchor="middle" font-size="{SMALL}" '
            'xml:space="preserve">',  # or renderers trim the spaces around the separators
            *spans,
            "</text>",
            *_bar(x + 8, y + height - 12, width - 16, counts),
            "</g>",
        ]
    )


def _bar(x: float, y: float, width: float, counts: Mapping[str, int]) -> list[str]:
    """A stacked bar of the states, settled ones first."""
    total = sum(counts.values()) or 1
    parts = [_rect(x, y, width, 5, 'fill="#ffffff" stroke="#cbd5e1" stroke-width="0.5"')]
    for state in sorted(counts, key=lambda s: (-_rank(s), s)):
        share = width * counts[state] / total
        parts.append(_rect(x, y, share, 5, f'class="bar" fill="{_colours(state)[1]}"'))
        x += share
    return parts


def _point(axes: _Axes, main: float, cross: float) -> str:
    x, y = axes.xy(main, cross)
    return f"{_num(x)},{_num(y)}"


def _edge_path(edge: _Edge, group: _Group, axes: _Axes) -> str:
    """M/L/C commands through `edge.slots`: straight within a layer, a curve across each gap."""
    first = edge.slots[0]
    start, size = group.om + group.layer_start[first.layer], group.layer_size[first.layer]
    cross = group.oc + first.center
    if isinstance(first, _Node):
        commands = [f"M{_point(axes, start + first.bm, cross)}"]
        if first.bm < size:
            commands.append(f"L{_point(axes, start + size, cross)}")
    else:
        commands = [f"M{_point(axes, start + size, cross)}"]
    main = start + size
    for position, slot in enumerate(edge.slots[1:], start=2):
        entry, to_cross = group.om + group.layer_start[slot.layer], group.oc + slot.center
        bend = (entry - main) / 2 if entry > main else LAYER_GAP / 2
        commands.append(
            f"C{_point(axes, main + bend, cross)} {_point(axes, entry - bend, to_cross)} "
            f"{_point(axes, entry, to_cross)}"
        )
        main, cross = entry, to_cross
        if not isinstance(slot, _Node) and position < len(edge.slots):
            main = entry + group.layer_size[slot.layer]
            commands.append(f"L{_point(axes, main, cross)}")
    return " ".join(commands)


def _edge_svg(edge: _Edge, group: _Group, axes: _Axes) -> str:
    arrow = ' marker-end="url(#tf-arrow)"' if isinstance(edge.slots[-1], _Node) else ""
    return (
        f'<path class="edge dependency" data-from={_attr(edge.src.task_id)} data-to={_attr(edge.dst.task_id)} '
        f'd="{_edge_path(edge, group, axes)}" fill="none" stroke="{EDGE_COLOUR}" stroke-width="1.4"{arrow}/>'
    )


def _subtask_edge_svg(node: _Node, group: _Group, axes: _Axes) -> str:
    main = group.om + group.layer_start[node.layer] + node.nm
    cross = group.oc + node.center
    return (
        f'<path class="edge subtask" data-from={_attr(node.task_id)} d="M{_point(axes, main, cross)} '
        f'L{_point(axes, main + SUB_GAP - 1, cross)}" fill="none" stroke="{SUBTASK_COLOUR}" stroke-width="1.4" '
        'stroke-dasharray="3 2" marker-end="url(#tf-arrow-sub)"/>'
    )


def _group_open(group: _Group, axes: _Axes) -> list[str]:
    parent = group.parent
    if parent is None:
        return ['<g class="graph">']
    x, y, width, height = axes.box(
        group.om - CLUSTER_PAD, group.oc - CLUSTER_PAD, group.main + 2 * CLUSTER_PAD, group.cross + 2 * CLUSTER_PAD
    )
    fill = CLUSTER_FILLS[group.depth % 2]
    return [
        f'<g class="subtasks" data-parent-id={_attr(parent.task_id)}>',
        f"<title>{_text(f'Subtasks of {parent.label} ({len(group.items)} nodes)')}</title>",
        _rect(x, y, width, height, f'class="cluster" rx="8" fill="{fill}" stroke="{CLUSTER_STROKE}"'),
    ]


def _group_body(group: _Group, axes: _Axes) -> list[str]:
    parts = [_subtask_edge_svg(node, group, axes) for node in group.items if node.group is not None]
    parts += [_edge_svg(edge, group, axes) for edge in group.edges]
    for node in group.items:
        parts.append(_task_svg(node, group, axes) if node.counts is None else _folded_svg(node, group, axes))
    return parts


def _graph_svg(root: _Group, axes: _Axes) -> list[str]:
    """The groups nested as in the job (iteratively: nesting may be deep)."""
    parts: list[str] = []
    stack: list[_Group | None] = [root]
    while stack:
        group = stack.pop()
        if group is None:
            parts.append("</g>")
            continue
        parts += _group_open(group, axes)
        parts += _group_body(group, axes)
        stack.append(None)
        stack.extend(node.group for node in reversed(group.items) if node.group is not None)
    return parts


def _legend(totals: Mapping[str, int], x: float, y: float) -> tuple[list[str], float]:
    """The state colours with the number of tasks in each; returns the parts and the width."""
    parts = ['<g class="legend">']
    start = x
    entries: list[tuple[str, str, str]] = [(s, f"{s} {totals.get(s, 0)}", _node_style_for(s)) for s in LEGEND_ORDER]
    entries += [(s, f"{s} {totals[s]}", _node_style_for(s)) for s in sorted(totals) if s not in STATE_COLOURS]
    entries.append(("", "optional", 'rx="3" fill="#ffffff" stroke="#64748b" stroke-width="1.2" stroke-dasharray="3 2"'))
    for state, text, style in entries:
        data = f" data-state={_attr(state)}" if state else ""
        parts.append(f'<g class="legend-item"{data}>')
        parts.append(_rect(x, y, 14, 14, style))
        parts.append(f'<text x="{_num(x + 20)}" y="{_num(y + 11)}" font-size="{SMALL + 1}">{_text(text)}</text></g>')
        x += 20 + _text_width(text, SMALL + 1) + 18
    parts.append("</g>")
    return parts, x - start - 18


def _node_style_for(state: str) -> str:
    fill, stroke, _ = _colours(state)
    dashed = ' stroke-dasharray="3 2"' if state == "SKIPPED" else ""
    return f'rx="3" fill="{fill}" stroke="{stroke}" stroke-width="1.2"{dashed}'


def _defs() -> str:
    marker = (
        '<marker id="{id}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="{size}" markerHeight="{size}" '
        'orient="auto" markerUnits="userSpaceOnUse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
    )
    return (
        "<defs>"
        + marker.format(id="tf-arrow", size=9, colour=EDGE_COLOUR)
        + marker.format(id="tf-arrow-sub", size=7, colour=SUBTASK_COLOUR)
        + "</defs>"
    )


def _document(width: float, height: float, title: str | None, body: Iterable[str]) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" font-family="{FONT_FAMILY}" role="img">'
    )
    label = f"<title>{_text(_clean(title))}</title>" if title else ""
    background = _rect(0, 0, width, height, 'class="background" fill="#ffffff"')
    return "".join([head, label, _defs(), background, *body, "</svg>"])


def _heading(title: str | None) -> tuple[list[str], float]:
    if not title:
        return [], 0.0
    text = _clean(title)
    line = (
        f'<text class="heading" x="{MARGIN}" y="{MARGIN + 17}" font-size="16" font-weight="bold" fill="#0f172a">'
        f"{_text(text)}</text>"
    )
    return [line], _text_width(text, 16) * 1.1


def _empty(title: str | None) -> str:
    heading, heading_width = _heading(title)
    top = MARGIN + (HEADING if title else 0)
    width = max(160.0, heading_width + 2 * MARGIN)
    note = f'<text class="empty" x="{MARGIN}" y="{top + 14}" font-size="{FONT}" fill="#64748b">no tasks</text>'
    return _document(width, top + 20 + MARGIN, title, [*heading, note])


def render_svg(
    tasks: list[dict[str, Any]], direction: str = "down", *, title: str | None = None, fold_above: int = 12
) -> str:
    """A standalone SVG document of a job's tasks (the dicts of GET /jobs/{id}/tasks); see the module docs.

    `direction`: "down" (layers top to bottom, subtasks below their parent) or "right" (left to right).
    `title`: a heading. `fold_above`: fold more than this many interchangeable leaf siblings into one node.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(map(repr, DIRECTIONS))}, not {direction!r}")
    if not tasks:
        return _empty(title)
    children = _read(tasks)
    groups = _build(children, fold_above)
    axes = _Axes(direction)
    for group in reversed(groups):
        _layout_group(group, axes)
    _place_absolute(groups)
    totals = Counter(row.state for rows in children.values() for row in rows)
    heading, heading_width = _heading(title)
    legend_y = MARGIN + (HEADING if title else 0)
    legend, legend_width = _legend(totals, MARGIN, legend_y)
    root = groups[0]
    axes.dx, axes.dy = MARGIN, legend_y + LEGEND_H
    _, _, width, height = axes.box(0, 0, root.main, root.cross)
    canvas_width = max(width, legend_width, heading_width) + 2 * MARGIN
    return _document(canvas_width, axes.dy + height + MARGIN, title, [*heading, *legend, *_graph_svg(root, axes)])
