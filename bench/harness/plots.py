"""PNG plots of the results with matplotlib: requests/s per workload and
latency percentiles, one figure per lens and server group."""

from __future__ import annotations

import math
import os
from typing import Dict, List

from .servers import GO, GOBIND

COLORS = {GO: "#4d4d4d", GOBIND: "#1f77b4"}
PEER_COLOR = "#ff7f0e"


def _color(row: dict) -> str:
    return COLORS.get(row["family"], PEER_COLOR)


def _legend(figure) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=COLORS[GO], label="Go"), Patch(color=COLORS[GOBIND], label="gobind"), Patch(color=PEER_COLOR, label="peers")]
    figure.legend(handles=handles, loc="lower center", fontsize=8, ncols=3, frameon=False)


def _grid(count: int):
    columns = min(3, count)
    return math.ceil(count / columns), columns


def _by_workload(rows: List[dict], workload_order: List[str]) -> Dict[str, List[dict]]:
    grouped: Dict[str, List[dict]] = {}
    for name in workload_order:
        members = [row for row in rows if row["workload"] == name and row["status"] == "ok"]
        if members:
            grouped[name] = members
    return grouped


def plot_requests(rows: List[dict], workload_order: List[str], titles: Dict[str, str], heading: str, path: str) -> bool:
    """Draw requests/s per workload, one bar per server; return False when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grouped = _by_workload(rows, workload_order)
    if not grouped:
        return False
    nrows, ncols = _grid(len(grouped))
    tallest = max(len(members) for members in grouped.values())
    figure, axes = plt.subplots(nrows, ncols, figsize=(max(7.0, 5.2 * ncols), (0.35 * tallest + 1.3) * nrows + 0.6), squeeze=False)
    for axis in axes.flat[len(grouped) :]:
        axis.set_visible(False)
    for axis, (name, members) in zip(axes.flat, grouped.items()):
        members = sorted(members, key=lambda row: row["median"]["requests_per_second"])
        values = [row["median"]["requests_per_second"] for row in members]
        labels = [row["server_title"] for row in members]
        bars = axis.barh(labels, values, color=[_color(row) for row in members])
        axis.bar_label(bars, labels=[f"{value:,.0f}" for value in values], padding=3, fontsize=7)
        axis.set_title(titles.get(name, name), fontsize=9)
        axis.set_xlabel("requests/s (median)", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.set_xlim(0, max(values) * 1.25)
    _legend(figure)
    figure.suptitle(heading, fontsize=11)
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_latency(rows: List[dict], workload_order: List[str], titles: Dict[str, str], heading: str, path: str) -> bool:
    """Draw p50, p90 and p99 latency per server and workload on a log scale,
    one line per server from its p50 to its p99."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    grouped = _by_workload(rows, workload_order)
    if not grouped:
        return False
    nrows, ncols = _grid(len(grouped))
    tallest = max(len(members) for members in grouped.values())
    figure, axes = plt.subplots(nrows, ncols, figsize=(max(7.0, 5.2 * ncols), (0.35 * tallest + 1.4) * nrows + 0.6), squeeze=False)
    for axis in axes.flat[len(grouped) :]:
        axis.set_visible(False)
    markers = [("latency_p50_ms", "p50", "o"), ("latency_p90_ms", "p90", "s"), ("latency_p99_ms", "p99", "^")]
    for axis, (name, members) in zip(axes.flat, grouped.items()):
        members = sorted(members, key=lambda row: -row["median"]["latency_p99_ms"])
        for position, row in enumerate(members):
            values = [max(row["median"][key], 0.001) for key, _, _ in markers]
            axis.plot([values[0], values[-1]], [position, position], color=_color(row), linewidth=1.5)
            for value, (_, label, marker) in zip(values, markers):
                axis.plot([value], [position], marker=marker, color=_color(row), markersize=5, linestyle="none")
        axis.set_yticks(range(len(members)), [row["server_title"] for row in members])
        axis.set_ylim(-0.7, len(members) - 0.3)
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        axis.set_title(titles.get(name, name), fontsize=9)
        axis.set_xlabel("latency, ms (log scale): o p50, ■ p90, ▲ p99", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(axis="x", which="major", alpha=0.3)
    _legend(figure)
    figure.suptitle(heading, fontsize=11)
    figure.tight_layout(rect=(0, 0.04, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_all(results: List[dict], lenses: List[str], workload_order: List[str], titles: Dict[str, str], directory: str) -> List[dict]:
    """Write every figure into directory; return [{"lens", "group", "kind", "file"}]."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for lens in lenses:
        for group, suffix, label in (("single", "", "one process"), ("multi", "-multicore", "workers = cores")):
            rows = [row for row in results if row["lens"] == lens and row["group"] == group]
            for kind, draw in (("requests", plot_requests), ("latency", plot_latency)):
                name = f"{kind}-{lens}{suffix}.png"
                heading = f"{'Requests/s' if kind == 'requests' else 'Latency'}, {lens}, {label}"
                if draw(rows, workload_order, titles, heading, os.path.join(directory, name)):
                    written.append({"lens": lens, "group": group, "kind": kind, "file": name})
    return written
