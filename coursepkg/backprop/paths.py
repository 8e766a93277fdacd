"""Gradients as sums over paths (chapter 3, eqs. ``eq-ch3-path-sum`` and ``eq-ch3-count-paths``).

A derivative d target / d source is the sum, over every path from source to target, of the product of the local
derivatives along it. There can be exponentially many paths; backpropagation shares their partial sums and
touches each edge once. A graph here is a mapping from each node to its children (the nodes computed from it).
"""

from __future__ import annotations

import graphlib
from collections.abc import Hashable, Iterable, Iterator, Mapping

from .. import validation

__all__ = ["count_paths", "enumerate_paths", "layered_graph", "path_sum"]

Graph = Mapping[Hashable, Iterable[Hashable]]


def _children_and_parents(graph: Graph) -> tuple[dict, dict]:
    """Both directions of the edges, with every node (also those that appear only as a child) as a key."""
    children = {node: list(kids) for node, kids in graph.items()}
    for kids in list(children.values()):
        for kid in kids:
            children.setdefault(kid, [])
    parents: dict = {node: [] for node in children}
    for node, kids in children.items():
        for kid in kids:
            parents[kid].append(node)
    return children, parents


def _topological_order(parents: dict) -> list:
    """The nodes, each after its parents; a ValueError when the graph has a cycle (it cannot be a computation)."""
    try:
        return list(graphlib.TopologicalSorter(parents).static_order())
    except graphlib.CycleError as error:
        cycle = " -> ".join(repr(node) for node in error.args[1])
        raise ValueError(f"graph has a cycle ({cycle}): a computation graph must be a directed acyclic graph") from None


def count_paths(graph: Graph, output: Hashable | None = None) -> int:
    """The number of paths from the inputs (nodes without parents) to ``output`` in a DAG.

    ``graph`` maps each node to its children (the nodes computed from it). ``output`` defaults to the one node
    without children. By dynamic programming in topological order, paths(input) = 1 and paths(v) = sum of
    paths(p) over the parents p of v (eq. ``eq-ch3-count-paths``): work linear in the number of edges, although the
    count itself can grow exponentially with depth. Returns an exact Python int.
    """
    children, parents = _children_and_parents(graph)
    if not children:
        raise ValueError("graph is empty")
    if output is None:
        sinks = [node for node, kids in children.items() if not kids]
        if len(sinks) != 1:
            raise ValueError(f"graph has {len(sinks)} nodes without children; pass output= to choose one")
        output = sinks[0]
    elif output not in children:
        raise ValueError(f"output {output!r} is not a node of graph")
    paths: dict = {}
    for node in _topological_order(parents):
        paths[node] = sum(paths[p] for p in parents[node]) if parents[node] else 1
    return paths[output]


def enumerate_paths(graph: Graph, source: Hashable, target: Hashable) -> Iterator[tuple]:
    """Every path from ``source`` to ``target`` in a DAG, as a tuple of nodes (iterative depth-first search)."""
    children, _ = _children_and_parents(graph)
    for node, name in ((source, "source"), (target, "target")):
        if node not in children:
            raise ValueError(f"{name} {node!r} is not a node of graph")
    stack = [(source,)]
    while stack:
        path = stack.pop()
        if path[-1] == target:
            yield path
            continue
        stack.extend(path + (kid,) for kid in reversed(children[path[-1]]))


def path_sum(graph: Graph, local_derivative: Mapping[tuple, float], source: Hashable, target: Hashable) -> float:
    """d target / d source as the sum over all paths of the product of local derivatives along each path.

    ``local_derivative[(u, v)]`` is dv/du for each edge u -> v (eq. ``eq-ch3-path-sum``). Exponential work on deep
    layered graphs: compare with backpropagation, which shares the partial sums.
    """
    total = 0.0
    for path in enumerate_paths(graph, source, target):
        product = 1.0
        for u, v in zip(path[:-1], path[1:], strict=True):
            product *= local_derivative[(u, v)]
        total += product
    return total


def layered_graph(widths: Iterable[int]) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """A fully connected layered DAG: node (l, i) is unit i of layer l; every unit feeds every unit above.

    From inputs to a single output, ``layered_graph((w0, ..., w_{L-1}, 1))`` has w0 w1 ... w_{L-1} paths
    but only w0 w1 + w1 w2 + ... edges.
    """
    widths = [validation.integer(w, "each entry of widths", minimum=1) for w in widths]
    if not widths:
        raise ValueError("widths must hold at least one layer width")
    graph: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for l, width in enumerate(widths):
        above = [(l + 1, j) for j in range(widths[l + 1])] if l + 1 < len(widths) else []
        for i in range(width):
            graph[(l, i)] = list(above)
    return graph
