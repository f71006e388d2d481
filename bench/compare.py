"""Compare the hello-world speed of two gobind builds in one run.

    python bench/compare.py --before /tmp/a/bin/python --after /tmp/b/bin/python

Each PYTHON is an environment with its own gobind installed. Both servers
(bench/apps/gobind_app.py, one Python thread, no access log) run pinned to
CPU 0 and wrk to CPU 1. Each round starts a fresh server of each build, in
alternating order, so that drift of the machine and the luck of one process
hit both builds alike. The medians and their ratios are printed as a
Markdown table, and written into bench/README.md with --write.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
README = BENCH / "README.md"
BEGIN, END = "<!-- compare results: begin (written by bench/compare.py) -->", "<!-- compare results: end -->"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(python: str, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["taskset", "-c", "0", python, "-m", "apps.gobind_app", "--port", str(port), "--threads", "1"],
        cwd=BENCH, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"server of {python} did not listen on port {port} within 60 s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure(pid: int, port: int, connections: int, seconds: float) -> tuple[float, float]:
    """Return requests/s and server CPU microseconds per request."""
    before = cpu_seconds(pid)
    output = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", f"http://127.0.0.1:{port}/hello"],
        capture_output=True, text=True, check=True,
    ).stdout
    used = cpu_seconds(pid) - before
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return rate, used * 1e6 / max(requests, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, metavar="PYTHON", help="interpreter of the first build")
    parser.add_argument("--after", required=True, metavar="PYTHON", help="interpreter of the second build")
    parser.add_argument("--label", default="", help="what the two builds differ in, for the table's heading")
    parser.add_argument("--connections", default="64,512", help="comma-separated wrk connection counts (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="runs per build and connection count (default: %(default)s)")
    parser.add_argument("--write", action="store_true", help="write the table into bench/README.md")
    options = parser.parse_args()

    builds = {"before": options.before, "after": options.after}
    counts = [int(c) for c in options.connections.split(",")]
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for round_index in range(options.rounds):
        # One process can stay faster or slower than the next for its whole
        # life, so each round starts fresh ones, in alternating order.
        order = list(builds.items())
        if round_index % 2:
            order.reverse()
        for name, python in order:
            port = free_port()
            process = start_server(python, port)
            try:
                measure(process.pid, port, 64, 1)  # warm-up
                for connections in counts:
                    samples.setdefault((name, connections), []).append(
                        measure(process.pid, port, connections, options.duration))
            finally:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    # A loaded machine can hold a graceful stop past 10 s.
                    process.kill()
                    process.wait()

    lines = [
        f"{options.label or 'before and after'}: `python bench/compare.py {' '.join(sys.argv[1:])}`, "
        f"measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; medians of {options.rounds} runs "
        f"of {options.duration:g} s, a fresh server process per run, server on CPU 0, wrk on CPU 1.",
        "",
        "| connections | before req/s | after req/s | after / before | before CPU µs/req | after CPU µs/req |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for connections in counts:
        before = samples[("before", connections)]
        after = samples[("after", connections)]
        rate_before = statistics.median(rate for rate, _ in before)
        rate_after = statistics.median(rate for rate, _ in after)
        cpu_before = statistics.median(cpu for _, cpu in before)
        cpu_after = statistics.median(cpu for _, cpu in after)
        lines.append(f"| {connections} | {rate_before:,.0f} | {rate_after:,.0f} | {rate_after / rate_before:.3f} "
                     f"| {cpu_before:.1f} | {cpu_after:.1f} |")
    table = "\n".join(lines)
    print(table)
    if options.write:
        text = README.read_text()
        section = f"{BEGIN}\n\n{table}\n\n{END}"
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n## Comparing two builds\n\n" + section + "\n"
        README.write_text(text)


if __name__ == "__main__":
    main()
