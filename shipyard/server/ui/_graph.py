"""A small layered layout for the UI's graphs (pipeline DAGs, lineage), drawn as inline SVG.

Nodes go in columns by their longest path from a source (so every edge points right), rows in
the order they were given; edges are cubic curves between the nodes' sides. The page renders
the result with ``templates/_graph.html``: an ``<svg>`` whose nodes are links, styled by class
(status, kind), with no script and no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

NODE_W, NODE_H = 180, 54
GAP_X, GAP_Y = 60, 22
PAD = 10


@dataclass
class Node:
    id: str
    label: str
    sublabel: str = ""
    kind: str = ""
    """CSS class(es): ``status-succeeded``, ``kind-model``..."""
    href: str | None = None
    title: str = ""
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class Edge:
    source: str
    target: str


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int = 0
    height: int = 0
    paths: list[str] = field(default_factory=list)

    @property
    def node_w(self) -> int:
        return NODE_W

    @property
    def node_h(self) -> int:
        return NODE_H


def layout(
    nodes: Sequence[Node], edges: Sequence[Edge], columns: dict[str, int] | None = None
) -> Graph:
    """Place ``nodes``; ``columns`` pins a node's column (lineage: data, run, model, ...).

    Edges naming unknown nodes are dropped; a cycle (not expected) falls back to the given order.
    """
    by_id = {n.id: n for n in nodes}
    kept = [e for e in edges if e.source in by_id and e.target in by_id and e.source != e.target]
    column: dict[str, int] = {}
    if columns is not None:
        column = {n.id: columns.get(n.id, 0) for n in nodes}
    else:
        incoming: dict[str, list[str]] = {n.id: [] for n in nodes}
        for e in kept:
            incoming[e.target].append(e.source)

        def depth(node_id: str, seen: frozenset[str]) -> int:
            if node_id in column:
                return column[node_id]
            if node_id in seen:  # a cycle: stop climbing
                return 0
            parents = incoming[node_id]
            d = 1 + max((depth(p, seen | {node_id}) for p in parents), default=-1)
            column[node_id] = d
            return d

        for n in nodes:
            depth(n.id, frozenset())
    rows: dict[int, int] = {}
    for n in nodes:
        c = column[n.id]
        r = rows.get(c, 0)
        rows[c] = r + 1
        n.x = PAD + c * (NODE_W + GAP_X)
        n.y = PAD + r * (NODE_H + GAP_Y)
    ncols = max(column.values(), default=-1) + 1
    nrows = max(rows.values(), default=0)
    graph = Graph(
        list(nodes),
        kept,
        width=2 * PAD + ncols * NODE_W + max(0, ncols - 1) * GAP_X,
        height=2 * PAD + nrows * NODE_H + max(0, nrows - 1) * GAP_Y,
    )
    for e in kept:
        a, b = by_id[e.source], by_id[e.target]
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        if x2 <= x1:  # same column (pinned layouts): loop around the right side
            x2, y2 = b.x + NODE_W, b.y + NODE_H // 2
            bend = x1 + GAP_X // 2
            graph.paths.append(f"M{x1},{y1} C{bend},{y1} {bend},{y2} {x2},{y2}")
            continue
        mid = (x1 + x2) // 2
        graph.paths.append(f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}")
    return graph
