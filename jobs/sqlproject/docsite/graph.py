"""The lineage graph as an SVG drawn here, so the site needs no graph library and no network: sources, models,
recipes and deployed versions in columns from left to right, each box a link.

Layout: a node's column is one past the furthest of its inputs (sources first, recipes one past the last model,
deployed versions last); within a column, nodes are ordered by the mean position of their inputs, twice over, which
keeps the lines from crossing in projects of this size.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from jobs.sqlproject.docsite.catalog import Node

BOX_WIDTH, BOX_HEIGHT = 190, 46
COLUMN_GAP, ROW_GAP, MARGIN = 70, 18, 12
_KIND_ORDER = {"source": 0, "model": 1, "recipe": 2, "deployed": 3}


def _columns(nodes: Sequence[Node], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    inputs: dict[str, list[str]] = {n.id: [] for n in nodes}
    for a, b in edges:
        if a in inputs and b in inputs:
            inputs[b].append(a)
    column: dict[str, int] = {}

    def place(node: str, seen: frozenset = frozenset()) -> int:
        if node not in column:
            if node in seen:  # a cycle is reported by the project; draw it flat rather than loop
                return 0
            column[node] = 1 + max((place(i, seen | {node}) for i in inputs[node]), default=-1)
        return column[node]

    for node in nodes:
        place(node.id)
    last_model = max((column[n.id] for n in nodes if n.kind == "model"), default=0)
    for node in nodes:  # recipes and deployed versions line up at the right, whatever model they read
        if node.kind == "recipe":
            column[node.id] = last_model + 1
        elif node.kind == "deployed":
            column[node.id] = last_model + 2
    return column


def layout(nodes: Sequence[Node], edges: Sequence[tuple[str, str]]) -> dict[str, tuple[float, float]]:
    """Top-left corner of each node's box."""
    column = _columns(nodes, edges)
    by_column: dict[int, list[str]] = {}
    for node in sorted(nodes, key=lambda n: (_KIND_ORDER[n.kind], n.label)):
        by_column.setdefault(column[node.id], []).append(node.id)
    inputs = {n.id: [a for a, b in edges if b == n.id] for n in nodes}
    outputs = {n.id: [b for a, b in edges if a == n.id] for n in nodes}
    rank = {node: float(i) for ids in by_column.values() for i, node in enumerate(ids)}
    for _ in range(2):
        for index in sorted(by_column):
            ids = by_column[index]
            ids.sort(key=lambda n: sum(rank[i] for i in inputs[n]) / len(inputs[n]) if inputs[n] else rank[n])
            rank.update({n: float(i) for i, n in enumerate(ids)})
        for index in sorted(by_column, reverse=True):
            ids = by_column[index]
            ids.sort(key=lambda n: sum(rank[o] for o in outputs[n]) / len(outputs[n]) if outputs[n] else rank[n])
            rank.update({n: float(i) for i, n in enumerate(ids)})
    tallest = max((len(ids) for ids in by_column.values()), default=1)
    height = tallest * (BOX_HEIGHT + ROW_GAP)
    positions = {}
    for index, ids in by_column.items():
        offset = (height - len(ids) * (BOX_HEIGHT + ROW_GAP)) / 2
        for row, node in enumerate(ids):
            x = MARGIN + index * (BOX_WIDTH + COLUMN_GAP)
            positions[node] = (x, MARGIN + offset + row * (BOX_HEIGHT + ROW_GAP))
    return positions


def _short(text: str, width: int = 26) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def svg(nodes: Sequence[Node], edges: Sequence[tuple[str, str]], prefix: str = "") -> str:
    """The graph as an inline ``<svg>``; ``prefix`` goes before every link (``../`` from a model's page)."""
    if not nodes:
        return '<p class="empty">The project has no models.</p>'
    positions = layout(nodes, edges)
    width = max(x for x, _ in positions.values()) + BOX_WIDTH + MARGIN
    height = max(y for _, y in positions.values()) + BOX_HEIGHT + MARGIN
    parts = [
        f'<svg class="graph" role="img" aria-label="Lineage: sources, models, recipes, deployed versions" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>',
    ]
    for a, b in edges:
        if a not in positions or b not in positions:
            continue
        (x1, y1), (x2, y2) = positions[a], positions[b]
        sx, sy, ex, ey = x1 + BOX_WIDTH, y1 + BOX_HEIGHT / 2, x2 - 2, y2 + BOX_HEIGHT / 2
        bend = (ex - sx) / 2
        parts.append(
            f'<path class="edge" data-from="{escape(a)}" data-to="{escape(b)}" marker-end="url(#arrow)" '
            f'd="M {sx:.1f} {sy:.1f} C {sx + bend:.1f} {sy:.1f}, {ex - bend:.1f} {ey:.1f}, {ex:.1f} {ey:.1f}"/>'
        )
    for node in nodes:
        x, y = positions[node.id]
        title = f"{node.kind}: {node.label}" + (f" ({node.detail})" if node.detail else "")
        parts.append(
            f'<a href="{escape(prefix + node.href)}" class="node-link">'
            f'<g class="node node-{node.kind}" data-node="{escape(node.id)}" transform="translate({x:.1f},{y:.1f})">'
            f"<title>{escape(title)}</title>"
            f'<rect width="{BOX_WIDTH}" height="{BOX_HEIGHT}" rx="6"/>'
            f'<text class="kind" x="10" y="15">{escape(node.kind)}</text>'
            f'<text class="label" x="10" y="33">{escape(_short(node.label))}</text>'
            + (
                f'<text class="detail" x="{BOX_WIDTH - 8}" y="15">{escape(_short(node.detail, 22))}</text>'
                if node.detail
                else ""
            )
            + "</g></a>"
        )
    parts.append("</svg>")
    return "\n".join(parts)
