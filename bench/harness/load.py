"""Load generators: wrk for HTTP/1.1 and h2load for HTTP/2, with the figures
of one run parsed from their output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

from .workloads import H2_STREAMS, Workload, request_body

# wrk counts a request as failed when it gets no response within this time.
WRK_TIMEOUT = "5s"

_WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


@dataclass
class LoadResult:
    """Figures of one timed run of a load generator; latencies in milliseconds."""

    requests: int
    seconds: float
    requests_per_second: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    latency_max_ms: float
    socket_errors: int  # connect, read, write errors and timeouts
    status_errors: int  # responses with a status of 400 or more
    command: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


class LoadError(RuntimeError):
    """A load generator failed or printed output that could not be parsed."""


def _pin(cpu: Optional[int]) -> List[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


def write_wrk_script(workload: Workload, directory: str) -> str:
    """Write the Lua script that sets the request and prints the summary as JSON."""
    lines = [f'wrk.method = "{workload.method}"']
    if workload.body_size:
        lines.append(f'wrk.body = string.rep("y", {workload.body_size})')
        lines.append('wrk.headers["Content-Type"] = "application/octet-stream"')
    path = os.path.join(directory, f"wrk-{workload.name}.lua")
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n" + _WRK_DONE)
    return path


def wrk_command(workload: Workload, url: str, seconds: float, threads: int, cpu: Optional[int], script: str) -> List[str]:
    """Return the wrk command line of one run."""
    return _pin(cpu) + [
        "wrk",
        f"-t{min(threads, workload.connections)}",
        f"-c{workload.connections}",
        f"-d{seconds:g}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        script,
        url + workload.path,
    ]


def h2load_command(workload: Workload, url: str, seconds: float, threads: int, cpu: Optional[int], log_file: str) -> List[str]:
    """Return the h2load command line of one run (HTTP/2 prior knowledge over cleartext)."""
    return _pin(cpu) + [
        "h2load",
        f"--threads={min(threads, workload.connections)}",
        f"--clients={workload.connections}",
        f"--max-concurrent-streams={H2_STREAMS}",
        f"--duration={seconds:g}",
        f"--log-file={log_file}",
        url + workload.path,
    ]


def run_wrk(command: List[str], seconds: float, near_end: Optional[Callable[[], None]] = None) -> LoadResult:
    """Run wrk; call near_end shortly before the run ends, under full load."""
    output = _run(command, seconds, near_end)
    match = re.search(r"^WRK_RESULT (\{.*\})$", output, re.MULTILINE)
    if match is None:
        raise LoadError(f"wrk printed no summary: {output[-500:]!r}")
    data = json.loads(match.group(1))
    elapsed = data["duration_us"] / 1e6
    return LoadResult(
        requests=data["requests"],
        seconds=elapsed,
        requests_per_second=data["requests"] / elapsed if elapsed else 0.0,
        latency_p50_ms=data["p50"] / 1000,
        latency_p90_ms=data["p90"] / 1000,
        latency_p99_ms=data["p99"] / 1000,
        latency_p999_ms=data["p999"] / 1000,
        latency_max_ms=data["max"] / 1000,
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        status_errors=data["status"],
        command=command,
    )


def run_h2load(command: List[str], seconds: float, log_file: str, near_end: Optional[Callable[[], None]] = None) -> LoadResult:
    """Run h2load; latencies come from its per-request log file."""
    output = _run(command, seconds, near_end)
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", output)
    counts = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", output)
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    if not (finished and counts and statuses):
        raise LoadError(f"h2load printed no summary: {output[-500:]!r}")
    elapsed = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    done = int(counts.group(2))
    latencies = _h2load_latencies(log_file)
    return LoadResult(
        requests=done,
        seconds=elapsed,
        requests_per_second=done / elapsed if elapsed else 0.0,
        latency_p50_ms=_percentile(latencies, 50),
        latency_p90_ms=_percentile(latencies, 90),
        latency_p99_ms=_percentile(latencies, 99),
        latency_p999_ms=_percentile(latencies, 99.9),
        latency_max_ms=latencies[-1] if latencies else 0.0,
        socket_errors=int(counts.group(5)) + int(counts.group(6)),
        status_errors=int(statuses.group(3)) + int(statuses.group(4)),
        command=command,
    )


def probe_h2c(url: str) -> Optional[str]:
    """Send one HTTP/2 request with prior knowledge; return None when it
    succeeds, else h2load's reason."""
    try:
        completed = subprocess.run(
            ["h2load", "-n", "1", "-c", "1", url], capture_output=True, text=True, timeout=15
        )
    except subprocess.TimeoutExpired:
        return "h2load timed out"
    output = completed.stdout + completed.stderr
    if re.search(r"requests: 1 total, 1 started, 1 done, 1 succeeded", output):
        return None
    for line in output.splitlines():
        if line.startswith("requests:"):
            return "h2load: the request failed"
        if "error" in line.lower():
            return "h2load: " + line.strip()
    return "h2load: no HTTP/2 response"


def h2load_log_path(directory: str) -> str:
    handle, path = tempfile.mkstemp(prefix="h2load-", suffix=".log", dir=directory)
    os.close(handle)
    return path


def _run(command: List[str], seconds: float, near_end: Optional[Callable[[], None]]) -> str:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        if near_end is not None:
            time.sleep(max(seconds - 0.5, seconds * 0.8))
            near_end()
        output, _ = process.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired as error:
        process.kill()
        process.wait()
        raise LoadError(f"{command} did not finish within {seconds + 60:g} s") from error
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        raise LoadError(f"{command[0] if command[0] != 'taskset' else command[3]} exited with {process.returncode}: {output[-500:]!r}")
    return output


def _h2load_latencies(log_file: str) -> List[float]:
    latencies = []
    with open(log_file) as file:
        for line in file:
            fields = line.split("\t")
            if len(fields) >= 3:
                latencies.append(int(fields[2]) / 1000)
    latencies.sort()
    return latencies


def _percentile(sorted_values: List[float], percent: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(round(percent / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]
