"""Ratios and target checks computed from the raw results."""

from __future__ import annotations

import statistics
from typing import Dict, Iterable, List, Optional, Tuple

from .servers import GO, PEER

# Requests/s of a handler that waits 10 ms, with 512 connections: 512 / 0.010 s.
SLEEP_IDEAL_RPS = 512 / 0.010

Key = Tuple[str, str, str]  # (lens, group, workload)


def ok_rows(results: Iterable[dict]) -> List[dict]:
    return [row for row in results if row["status"] == "ok"]


def find(results: Iterable[dict], lens: str, group: str, workload: str, server: str) -> Optional[dict]:
    for row in results:
        if (row["lens"], row["group"], row["workload"], row["server"]) == (lens, group, workload, server):
            return row
    return None


def rps(row: Optional[dict]) -> Optional[float]:
    if row is None or row["status"] != "ok":
        return None
    return row["median"]["requests_per_second"]


def references(results: List[dict]) -> Dict[Key, dict]:
    """Return, per (lens, group, workload), the Go row's and the best peer's requests/s."""
    table: Dict[Key, dict] = {}
    for row in ok_rows(results):
        key = (row["lens"], row["group"], row["workload"])
        entry = table.setdefault(key, {"go": None, "best_peer": None, "best_peer_server": None})
        value = row["median"]["requests_per_second"]
        if row["family"] == GO:
            entry["go"] = value
        elif row["family"] == PEER and (entry["best_peer"] is None or value > entry["best_peer"]):
            entry["best_peer"] = value
            entry["best_peer_server"] = row["server"]
    return table


def ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or not reference:
        return None
    return value / reference


def turn_ratio(runs: List[dict], reference_runs: List[dict]) -> Optional[float]:
    """Return the median of the per-turn ratios of runs to reference_runs,
    or None without one run per turn on both sides.

    Runs of the same turn are measured within a minute or so, so a drift of
    the machine's speed over several turns does not change their ratio."""
    if not runs or len(runs) != len(reference_runs):
        return None
    ratios = [
        run["load"]["requests_per_second"] / reference_run["load"]["requests_per_second"]
        for run, reference_run in zip(runs, reference_runs)
        if reference_run["load"]["requests_per_second"]
    ]
    return statistics.median(ratios) if ratios else None


# (description, server, workloads, reference kind, reference server, target ratio)
# Reference kinds: "server" (another row of the same table), "sleep" (the
# lower of the ideal rate and the best peer).
TARGETS = [
    ("gobind handler hello vs Go net/http", "gobind", ("hello-64", "hello-512"), "server", "gohello", 0.85),
    ("gobind WSGI hello vs granian WSGI", "gobind-wsgi", ("hello-64", "hello-512"), "server", "granian-wsgi", 1.4),
    ("gobind WSGI Flask vs granian WSGI", "gobind-wsgi", ("flask-64",), "server", "granian-wsgi", 1.2),
    ("gobind ASGI hello vs granian ASGI", "gobind-asgi", ("hello-64", "hello-512"), "server", "granian-asgi", 1.3),
    ("gobind ASGI hello vs uvicorn", "gobind-asgi", ("hello-64", "hello-512"), "server", "uvicorn", 1.5),
    ("gobind ASGI 10 ms wait vs min(ideal 51,200/s, best peer)", "gobind-asgi", ("sleep-512",), "sleep", None, 0.9),
    ("gobind C++ hello vs Go net/http", "gobind-cpp", ("hello-64", "hello-512"), "server", "gohello", 0.95),
]


def check_targets(results: List[dict], lenses: List[str]) -> List[dict]:
    """Evaluate every target on single-process rows of each lens."""
    checks = []
    refs = references(results)
    for lens in lenses:
        for description, server, workloads, kind, reference_server, target in TARGETS:
            for workload in workloads:
                row = find(results, lens, "single", workload, server)
                value = rps(row)
                if kind == "sleep":
                    best_peer = refs.get((lens, "single", workload), {}).get("best_peer")
                    reference = min(SLEEP_IDEAL_RPS, best_peer) if best_peer else SLEEP_IDEAL_RPS
                    measured = ratio(value, reference)
                else:
                    reference_row = find(results, lens, "single", workload, reference_server)
                    reference = rps(reference_row)
                    measured = ratio(value, reference)
                    if measured is not None:
                        measured = turn_ratio(row["runs"], reference_row["runs"]) or measured
                checks.append(
                    {
                        "lens": lens,
                        "server": server,
                        "description": description,
                        "workload": workload,
                        "target": target,
                        "value": value,
                        "reference": reference,
                        "ratio": measured,
                        "met": None if measured is None else measured >= target,
                        "median": row["median"] if value is not None else None,
                    }
                )
    return checks
