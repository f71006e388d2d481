"""Server statistics read from /proc: CPU time, memory and threads of a
process and all its descendants (worker processes included)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class TreeSample:
    """CPU time, memory and thread counts summed over a process tree."""

    pids: List[int]
    cpu_seconds: float  # utime + stime of live processes + cutime + cstime of the root
    threads: int
    rss_bytes: int  # sum of VmRSS
    peak_rss_bytes: int  # sum of VmHWM: each process's peak, an upper bound of the tree's peak


def _read_stat(pid: int) -> List[str]:
    with open(f"/proc/{pid}/stat", "rb") as file:
        data = file.read().decode("ascii", "replace")
    # The command name (field 2) is in parentheses and may contain spaces.
    return data[data.rindex(")") + 2 :].split()


def _children_map() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _read_stat(int(entry))
        except (OSError, ValueError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(root: int) -> List[int]:
    """Return root and every live descendant of it."""
    children = _children_map()
    found = [root]
    index = 0
    while index < len(found):
        found.extend(children.get(found[index], []))
        index += 1
    return found


def _memory_bytes(pid: int) -> Dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, amount, _unit = line.split()
                values[name[:-1]] = int(amount) * 1024
    return values


def sample(root: int) -> TreeSample:
    """Read CPU time, threads and memory of root and its descendants.

    Processes that exit while being read are left out. The CPU time of
    children that the root already reaped is in the root's cutime and cstime.
    """
    pids = []
    ticks = 0
    threads = 0
    rss = 0
    peak = 0
    for pid in descendants(root):
        try:
            fields = _read_stat(pid)
            memory = _memory_bytes(pid)
            thread_count = len(os.listdir(f"/proc/{pid}/task"))
        except (OSError, ValueError):
            continue
        # Fields after the command name, 0-based: utime 11, stime 12,
        # cutime 13, cstime 14 (proc(5) numbers them 14 to 17).
        ticks += int(fields[11]) + int(fields[12])
        if pid == root:
            ticks += int(fields[13]) + int(fields[14])
        pids.append(pid)
        threads += thread_count
        rss += memory.get("VmRSS", 0)
        peak += memory.get("VmHWM", 0)
    return TreeSample(pids, ticks / CLOCK_TICKS, threads, rss, peak)
