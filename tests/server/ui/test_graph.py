from __future__ import annotations

from shipyard.server.ui._graph import Edge, Node, layout


def test_columns_follow_the_longest_path_so_edges_point_right() -> None:
    nodes = [Node(n, n) for n in ("load", "clean", "stats", "train")]
    edges = [Edge("load", "clean"), Edge("clean", "stats"), Edge("clean", "train"),
             Edge("stats", "train")]  # fmt: skip
    g = layout(nodes, edges)
    x = {n.id: n.x for n in g.nodes}
    assert x["load"] < x["clean"] < x["stats"] < x["train"]
    assert len(g.paths) == 4
    assert g.width >= x["train"] + g.node_w


def test_unknown_edges_are_dropped_and_cycles_terminate() -> None:
    nodes = [Node("a", "a"), Node("b", "b")]
    g = layout(nodes, [Edge("a", "b"), Edge("b", "a"), Edge("a", "missing"), Edge("a", "a")])
    assert {(e.source, e.target) for e in g.edges} == {("a", "b"), ("b", "a")}
    assert len(g.paths) == 2


def test_pinned_columns_stack_rows() -> None:
    nodes = [Node("d1", "d1"), Node("d2", "d2"), Node("run", "run")]
    g = layout(nodes, [Edge("d1", "run"), Edge("d2", "run")], {"d1": 0, "d2": 0, "run": 1})
    d1, d2, run = g.nodes
    assert d1.x == d2.x < run.x
    assert d1.y < d2.y
    assert g.height >= d2.y + g.node_h
