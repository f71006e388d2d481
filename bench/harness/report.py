"""docs/benchmarks.md, written from the raw results only."""

from __future__ import annotations

import os
import re
import shlex
from typing import Dict, List, Optional

from . import analysis, servers
from .environment import REPO_DIR
from .workloads import BY_NAME, H2_STREAMS

MIB = 1024 * 1024

LENS_TEXT = {
    "pinned": "Pinned: the server runs on CPU 0 (`taskset -c 0`) and the load generator on CPU 1 (`taskset -c 1`). "
    "Go's GOMAXPROCS is left to Go, which follows the CPU affinity and sets it to 1; gobind raises it to 2, "
    "still on CPU 0, while its handlers block and while its ASGI event loop runs (docs/architecture.md).",
    "unpinned": "Unpinned: server and load generator share every CPU, as the scheduler decides.",
}


def command_text(argv: List[str]) -> str:
    """Return argv as a shell command with paths relative to the repository root."""
    prefix = REPO_DIR + os.sep
    return shlex.join(arg.replace(prefix, "") for arg in argv) if argv else "none"


TARGETS_TEXT = [
    "Single-process rows of the same run. The reference is the row named in the target; for the 10 ms wait it is "
    "the lower of 51,200 req/s (512 connections / 10 ms) and the best peer. Against another row, \"measured\" is "
    "the median of the ratios of the two rows' runs in the same turn. A drift of the machine's speed between "
    "turns does not change it, so it can differ from the ratio of the medians beside it. When the two rows do not "
    "have one run per turn each, and for the 10 ms wait, it is the ratio of the medians. \"not measured\" means "
    "a row is missing or skipped. The last four columns are the gobind row's.",
]
README_BEGIN = "<!-- targets: begin (written by bench/run.py) -->"
README_END = "<!-- targets: end -->"


def replace_section(path: str, begin: str, end: str, section: str) -> None:
    """Replace the text from begin to end (markers included) in the file at path, or append section."""
    with open(path) as file:
        text = file.read()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as file:
        file.write(text)


def readme_targets(data: dict, page_link: str) -> str:
    """Return the bench/README.md section with the speed targets of a run, markers included."""
    meta = data["meta"]
    lines = [
        README_BEGIN,
        "",
        f"From `{meta['command_line']}`, started {meta['started']} UTC ({meta['mode']} mode). "
        f"Every table, the exact commands and the machine are on [the results page]({page_link}).",
        "",
    ]
    if meta.get("note"):
        lines += [f"Note: {meta['note']}", ""]
    lines += TARGETS_TEXT + [""] + targets_table(selected_targets(data)) + ["", README_END]
    return "\n".join(lines)


def _number(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _ratio(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.2f}×"


def _table(rows: List[dict], refs: dict) -> List[str]:
    lines = [
        "| Server | req/s | × best peer | × Go | p50 ms | p99 ms | CPU µs/req | peak RSS MiB | threads | errors | note |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    ok = sorted((row for row in rows if row["status"] == "ok"), key=lambda row: -row["median"]["requests_per_second"])
    others = [row for row in rows if row["status"] != "ok"]
    for row in ok:
        median = row["median"]
        ref = refs.get((row["lens"], row["group"], row["workload"]), {})
        value = median["requests_per_second"]
        notes = [f"{row['workers']} workers"] if row["workers"] > 1 else []
        if row.get("note"):
            notes.append(row["note"])
        note = "; ".join(notes).replace("|", "\\|")
        lines.append(
            f"| {row['server_title']} | {_number(value)} | {_ratio(analysis.ratio(value, ref.get('best_peer')))} "
            f"| {_ratio(analysis.ratio(value, ref.get('go')))} | {_number(median['latency_p50_ms'], 2)} "
            f"| {_number(median['latency_p99_ms'], 2)} | {_number(median['cpu_us_per_request'], 1)} "
            f"| {_number(median['peak_rss_bytes'] / MIB, 1)} | {_number(median['threads'])} "
            f"| {median['errors']:,} | {note} |"
        )
    for row in others:
        reason = row["reason"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {row['server_title']} | — | — | — | — | — | — | — | — | — | {reason} |")
    return lines


def targets_table(checks: List[dict]) -> List[str]:
    """Return the Markdown table of the speed targets, with the gobind row's own figures."""
    lines = [
        "| Target | lens | workload | gobind req/s | reference req/s | measured | target | met "
        "| CPU µs/req | p99 ms | threads | peak RSS MiB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for check in checks:
        if check["met"] is None:
            met = "not measured"
        elif check["met"]:
            met = "yes"
        else:
            met = "**no**"
        median = check["median"] or {}
        peak = median.get("peak_rss_bytes")
        lines.append(
            f"| {check['description']} | {check['lens']} | {check['workload']} | {_number(check['value'])} "
            f"| {_number(check['reference'])} | {_ratio(check['ratio'])} | ≥ {check['target']:.2f}× | {met} "
            f"| {_number(median.get('cpu_us_per_request'), 1)} | {_number(median.get('latency_p99_ms'), 2)} "
            f"| {_number(median.get('threads'))} | {_number(peak / MIB if peak else None, 1)} |"
        )
    return lines


def _method(meta: dict) -> List[str]:
    plan = meta["plan"]
    lines = [
        "## Method",
        "",
        f"- Mode: {meta['mode']}. The servers of a table take {plan['repeats']} turn{'s' if plan['repeats'] != 1 else ''}, "
        f"so that a change in the machine's speed reaches them alike. In each turn a server is started, one request is "
        f"checked for status and body, a {plan['warmup_seconds']:g} s warm-up run is discarded, one run of "
        f"{plan['seconds']:g} s is measured, and the server is stopped. Tables show medians of the runs; errors are summed over them.",
        "- Traffic goes over loopback (127.0.0.1) only. HTTP/1.1 load comes from wrk with keep-alive connections. "
        "Its Lua script, written by bench/harness/load.py into bench/.build/, sets the method and body and prints "
        "the summary as JSON. HTTP/2 load comes from h2load with prior knowledge over cleartext (h2c), "
        f"{H2_STREAMS} concurrent streams per connection, with latencies from its per-request log.",
        "- Lenses: " + " ".join(LENS_TEXT[lens] for lens in meta["lenses"]),
        "- Each server runs as one process (one worker) with access logs off. Sync servers (gobind handler, "
        f"gobind WSGI, gunicorn gthread, granian WSGI) run {plan['sync_threads']} Python thread(s) for the "
        f"workloads that do not block and {plan['blocking_threads']} for the handlers that wait 10 ms and 100 ms. "
        "Async servers use uvloop where they can.",
        f"- Multi-core rows (unpinned lens only) run {meta['machine']['nproc']} worker processes, one per CPU, "
        "for the servers that have workers; Go uses every CPU.",
        "- In the Flask and FastAPI tables the Go row serves the same JSON document from Go (bench/gohello), "
        "as a ceiling; every other row runs the Flask or FastAPI app.",
        "- req/s: completed requests divided by the run time. Latency: p50 and p99 of request latency as the "
        "load generator measured it.",
        "- CPU µs/req: user plus system CPU time of the server process and all its descendants "
        "(utime + stime from /proc/PID/stat, plus cutime + cstime of reaped children), the delta over a run "
        "divided by the requests it completed.",
        "- Peak RSS: VmHWM from /proc/PID/status, summed over the server's processes at the end of the last run.",
        "- Threads: OS threads (/proc/PID/task) of the server and its descendants, 0.5 s before a run ends, "
        "while the load is on.",
        "- Errors: socket errors (connect, read, write, timeout after "
        "5 s) plus responses with status 400 or more.",
        "- × best peer: requests/s divided by the best non-gobind, non-Go server of the same table. "
        "× Go: divided by the Go net/http row of the same table. Both come from the same run of the runner.",
        "",
    ]
    return lines


def _configurations(meta: dict) -> List[str]:
    lines = ["## Server configurations", "", "N is the thread count given under Method.", "", "| Server | Configuration |", "| --- | --- |"]
    for name in meta["servers"]:
        spec = servers.BY_NAME[name]
        lines.append(f"| {spec.title} | {spec.configuration} |")
    return lines + [""]


def _machine(meta: dict) -> List[str]:
    machine = meta["machine"]
    memory = machine.get("memory_bytes")
    return [
        "## Machine",
        "",
        f"- CPUs: {machine['nproc']} ({machine['cpu_model']})",
        f"- Memory: {_number(memory / (1024 ** 3), 1) if memory else 'unknown'} GiB",
        f"- Kernel: {machine['system']} {machine['kernel']}",
        f"- Load average (1, 5, 15 min) at start: {', '.join(f'{value:.2f}' for value in machine['load_average_start'])}; "
        f"at end: {', '.join(f'{value:.2f}' for value in meta.get('load_average_end', []))}",
        "",
    ]


def _versions(meta: dict) -> List[str]:
    gobind = meta["gobind"]
    lines = [
        "## Versions",
        "",
        "| Component | Version |",
        "| --- | --- |",
        f"| Python | {meta['machine']['python_implementation']} {meta['machine']['python']} |",
        f"| Go (builds bench/gohello) | {meta['go']['version'] or 'not found'} (from {meta['go']['source']}) |",
        f"| gobind | {gobind.get('version', 'not importable')} (commit {gobind.get('commit') or 'unknown'}) |",
    ]
    for name, version in meta["packages"].items():
        lines.append(f"| {name} | {version or 'not installed'} |")
    for name, version in meta["tools"].items():
        lines.append(f"| {name} | {version or 'not installed'} |")
    if meta.get("cpp_binary"):
        lines.append(f"| C++ hello binary | `{meta['cpp_binary']}` |")
    lines.append("")
    return lines


def _commands(results: List[dict]) -> List[str]:
    lines = [
        "## Exact commands",
        "",
        "Paths are relative to the repository root. Servers run with `bench/` as the working directory and on "
        "`PYTHONPATH`; ports are free ports picked at run time.",
        "<details><summary>Server and load-generator command of every row</summary>",
        "",
    ]
    seen = set()
    for row in results:
        if not row.get("server_command"):
            continue
        load = row["load_commands"][0] if row.get("load_commands") else None
        key = (row["lens"], row["group"], row["workload"], row["server"])
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"- {row['lens']}, {row['workload']}, {row['server_title']}:")
        lines.append(f"  - server: `{command_text(row['server_command'])}`")
        if load:
            lines.append(f"  - load: `{command_text(load)}`")
    lines += ["", "</details>", ""]
    return lines


def selected_targets(data: dict) -> List[dict]:
    """Return the target checks whose gobind server took part in the run."""
    meta = data["meta"]
    return [check for check in analysis.check_targets(data["results"], meta["lenses"]) if check["server"] in meta["servers"]]


def render(data: dict, plots: List[dict], plot_dir_link: str) -> str:
    """Return the whole page as Markdown."""
    meta = data["meta"]
    results = data["results"]
    refs = analysis.references(results)
    lines = [
        "# Benchmarks",
        "",
        "This page is written by `bench/run.py`; it is not edited by hand. To produce it again, see "
        "[bench/README.md](../bench/README.md).",
        "",
        f"- Run: `{meta['command_line']}`",
        f"- Started {meta['started']} UTC, took {meta['elapsed_minutes']:.1f} min. Raw results: "
        f"[{plot_dir_link}/results.json]({plot_dir_link}/results.json).",
    ]
    if meta.get("note"):
        lines.append(f"- Note: {meta['note']}")
    lines.append("")

    if meta["missing"]:
        lines += ["## Missing on this machine", ""] + [f"- {line}" for line in meta["missing"]] + [""]

    checks = selected_targets(data)
    if checks:
        lines += ["## Targets", ""] + TARGETS_TEXT + [""]
        lines += targets_table(checks) + [""]

    for lens in meta["lenses"]:
        lines += [f"## Results: {lens}", "", LENS_TEXT[lens], ""]
        for group, label in (("single", "one process"), ("multi", "workers = cores")):
            group_rows = [row for row in results if row["lens"] == lens and row["group"] == group]
            if not group_rows:
                continue
            if group == "multi":
                lines += [f"### Multi-core ({label})", ""]
            for plot in plots:
                if plot["lens"] == lens and plot["group"] == group:
                    lines += [f"![{plot['kind']}, {lens}, {label}]({plot_dir_link}/{plot['file']})", ""]
            for name in meta["workloads"]:
                rows = [row for row in group_rows if row["workload"] == name]
                if not rows:
                    continue
                heading = "###" if group == "single" else "####"
                lines += [f"{heading} {BY_NAME[name].title} ({name}, {label})", ""]
                lines += _table(rows, refs) + [""]

    lines += _method(meta) + _configurations(meta) + _machine(meta) + _versions(meta) + _commands(results)
    return "\n".join(lines)
