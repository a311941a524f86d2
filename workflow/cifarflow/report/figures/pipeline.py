"""The report's figures of its *8. Pipeline* category: the rule graph and what each job cost."""

import colorsys
import re
from collections import defaultdict

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyBboxPatch

from .style import registered, save


_NODE = re.compile(r'^\s*(\d+)\s*\[label\s*=\s*"([^"]*)"(?:,\s*color\s*=\s*"([^"]*)")?')


_EDGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)")


def parse_dot(text: str) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Nodes ({id: {label, color}}) and edges ((from, to)) of Snakemake's ``--rulegraph`` DOT output."""
    nodes, edges = {}, []
    for line in text.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2)))
            continue
        node = _NODE.match(line)
        if node:
            nodes[node.group(1)] = {"label": node.group(2).replace("\\n", "\n"), "color": node.group(3)}
    return nodes, edges


def _layers(nodes: dict, edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering: every rule one row below the deepest rule it needs."""
    parents = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
    depth: dict[str, int] = {}

    def visit(node, seen=()):
        if node not in depth:
            depth[node] = 0 if node in seen else 1 + max((visit(p, seen + (node,)) for p in parents[node]), default=-1)
        return depth[node]

    for node in nodes:
        visit(node)
    return depth


def _order_rows(rows: dict[int, list[str]], edges: list[tuple[str, str]], sweeps: int = 4) -> dict[str, tuple[float, float]]:
    """Order the rules in each row so that edges cross less (barycenter heuristic, sweeping down then up): a rule
    moves towards the mean position of the rules it needs, then of the rules that need it."""
    parents, children = defaultdict(list), defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    x = {}

    def place(level):
        for i, node in enumerate(rows[level]):
            x[node] = i - (len(rows[level]) - 1) / 2

    levels = sorted(rows)
    for level in levels:
        place(level)
    for _ in range(sweeps):
        for order, links in ((levels[1:], parents), (levels[-2::-1], children)):
            for level in order:
                rows[level].sort(key=lambda n: np.mean([x[m] for m in links[n]]) if links[n] else x[n])
                place(level)
    return {node: (x[node], -level) for level in levels for node in rows[level]}


def rule_graph(dot: str, path, leave_out: tuple[str, ...] = ("all",)) -> None:
    """Draw Snakemake's rule graph (DOT text) with matplotlib, so no graphviz is needed. An arrow goes from a rule to
    the rules that use its output; each row holds the rules at the same dependency depth. The target rule ``all``,
    which only collects every output, is left out to keep the graph readable."""
    nodes, edges = parse_dot(dot)
    dropped = {n for n, node in nodes.items() if node["label"] in leave_out}
    nodes = {n: node for n, node in nodes.items() if n not in dropped}
    edges = [(a, b) for a, b in edges if a in nodes and b in nodes]
    depth = _layers(nodes, edges)
    rows = defaultdict(list)
    for node in sorted(nodes, key=lambda n: nodes[n]["label"]):
        rows[depth[node]].append(node)
    position = _order_rows(rows, edges)
    widest = max((len(r) for r in rows.values()), default=1)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.1 * widest), 1.0 * max(1, len(rows)) + 0.6))
    for a, b in edges:
        (xa, ya), (xb, yb) = position[a], position[b]
        # an edge that skips rows bends, so it does not run straight behind the rules in between
        bend = 0.0 if ya - yb <= 1 else 0.15 * (np.sign(xb - xa) or 1.5)
        ax.annotate("", xy=(xb, yb + 0.19), xytext=(xa, ya - 0.19), zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#a0a0a0", "lw": 1.0, "alpha": 0.8, "shrinkA": 0,
                                "shrinkB": 0, "connectionstyle": f"arc3,rad={bend}"})
    for node, (x, y) in position.items():
        color = _dot_color(nodes[node]["color"])
        ax.add_patch(FancyBboxPatch((x - 0.44, y - 0.19), 0.88, 0.38, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor="white", edgecolor=color, lw=2, zorder=3))
        ax.text(x, y, nodes[node]["label"], ha="center", va="center", fontsize=8, zorder=4)
    xs = [p[0] for p in position.values()] or [0]
    ys = [p[1] for p in position.values()] or [0]
    ax.set_xlim(min(xs) - 0.55, max(xs) + 0.55)
    ax.set_ylim(min(ys) - 0.4, max(ys) + 0.4)
    ax.axis("off")
    left_out = f" ({', '.join(sorted(leave_out))} left out)" if dropped else ""
    ax.set_title(f"Rule graph: {len(nodes)} rules, {len(edges)} dependencies{left_out}")
    save(fig, path)


def _dot_color(hsv: str | None) -> tuple:
    try:
        h, s, v = (float(part) for part in hsv.split())
        return colorsys.hsv_to_rgb(h, s, v)
    except (AttributeError, ValueError):
        return (0.4, 0.4, 0.4)


@registered("Run time and memory per job", csv=True)
def job_costs(benchmarks: pd.DataFrame) -> dict:
    """Wall time and peak memory (max RSS) of each benchmarked job (``benchmarks``: ``tables.read_benchmarks``),
    grouped by rule; the figure, and the table as CSV text (six significant digits)."""
    csv = benchmarks.to_csv(index=False, float_format="%.6g")
    table = benchmarks.copy()
    table["name"] = [f"{r}: {j}" if j else r for r, j in zip(table["rule"], table["job"])]
    order = table.groupby("rule", sort=False)["seconds"].transform("sum")
    table = table.assign(_order=order).sort_values(["_order", "rule", "seconds"], ascending=[False, True, False])
    rules = list(dict.fromkeys(table["rule"]))
    palette = plt.get_cmap("tab10" if len(rules) <= 10 else "tab20")
    colors = [palette(rules.index(r) % palette.N) for r in table["rule"]]
    y = np.arange(len(table))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.3 * len(table) + 1.6), sharey=True)
    panels = ((axes[0], "seconds", "wall time (s)", "{:.1f}"), (axes[1], "max_rss_mb", "peak memory, max RSS (MB)", "{:.0f}"))
    for ax, column, title, fmt in panels:
        values = table[column].fillna(0).to_numpy(dtype=float)
        ax.barh(y, values, color=colors)
        for yi, value, raw in zip(y, values, table[column]):
            ax.text(value, yi, " " + ("n/a" if pd.isna(raw) else fmt.format(value)), va="center", fontsize=7)
        ax.set_title(title)
        ax.set_xlim(0, max(values.max(), 1e-9) * 1.25)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, table["name"], fontsize=7 if len(table) > 30 else 8)
    axes[0].invert_yaxis()
    total = table["seconds"].sum()
    fig.suptitle(f"Benchmarked jobs: {len(table)} jobs, {total / 60:.1f} minutes of wall time in all")
    fig.tight_layout()
    return {"figure": fig, "csv": csv}
