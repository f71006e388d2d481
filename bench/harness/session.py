"""One measurement: start a server, check its response, warm it up, run the
load generator several times, read the server's statistics, stop it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import List, Optional

from . import load, procstat
from .environment import BENCH_DIR, BUILD_DIR
from .servers import Launch
from .workloads import Workload, request_body

STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0


@dataclass
class Plan:
    """How long and how often to measure, and which CPUs to use."""

    seconds: float
    warmup_seconds: float
    repeats: int
    server_cpu: Optional[int]  # None: not pinned
    load_cpu: Optional[int]
    load_threads: int


class Skip(Exception):
    """The server cannot take part in this workload. The message gives the reason."""


class ServerFailed(Exception):
    """The server did not start or sent a wrong response. The message describes the failure."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerProcess:
    """A server started in its own session so that it and its workers can be
    stopped together, by process group."""

    def __init__(self, launch: Launch, cpu: Optional[int], port: int) -> None:
        self.port = port
        self.argv = (["taskset", "-c", str(cpu)] if cpu is not None else []) + launch.argv
        os.makedirs(BUILD_DIR, exist_ok=True)
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", dir=BUILD_DIR, delete=False)
        env = dict(os.environ, **launch.env)
        env["PYTHONPATH"] = BENCH_DIR + os.pathsep + env.get("PYTHONPATH", "")
        # taskset executes the server in place, so the PID is the server's.
        self.process = subprocess.Popen(
            self.argv, cwd=BENCH_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, limit: int = 600) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as file:
            text = file.read().decode("utf-8", "replace").strip()
        return text[-limit:]

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"exited with {self.process.returncode} at start: {self.log_tail() or 'no output'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise ServerFailed(f"did not listen on port {self.port} within {STARTUP_SECONDS:g} s: {self.log_tail()}")

    def stop(self) -> None:
        """Send SIGINT to the group, then SIGKILL to what is left after STOP_SECONDS."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGINT)
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


def check_response(workload: Workload, port: int, strict_body: bool = True) -> Optional[str]:
    """Send one request like the load generator's and check status and body.

    Raises Skip for a 404 (the server has no such route) or a server without
    h2c, and ServerFailed for any other wrong response. With strict_body False
    a different body is allowed and described in the returned note.
    """
    if workload.http2:
        return _check_http2(workload, port, strict_body)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = request_body(workload) if workload.body_size else None
        connection.request(workload.method, workload.path, body=body)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise ServerFailed(f"{workload.method} {workload.path} failed: {error}") from error
    finally:
        connection.close()
    if response.status == 404:
        raise Skip(f"skipped: no route for {workload.method} {workload.path}")
    if response.status != 200:
        raise ServerFailed(f"{workload.method} {workload.path} returned status {response.status}: {data[:200]!r}")
    return _check_body(workload, data, strict_body)


def _check_http2(workload: Workload, port: int, strict_body: bool) -> Optional[str]:
    url = f"http://127.0.0.1:{port}{workload.path}"
    reason = load.probe_h2c(url)
    if reason is not None:
        raise Skip(f"skipped: no HTTP/2 over cleartext with prior knowledge ({reason})")
    if shutil.which("curl") is None:
        return "body not checked: curl is missing"
    try:
        completed = subprocess.run(
            ["curl", "--silent", "--http2-prior-knowledge", "--write-out", "\n%{http_code} %{http_version}", url],
            capture_output=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as error:
        raise ServerFailed(f"HTTP/2 {workload.method} {workload.path} timed out after 30 s") from error
    data, _, trailer = completed.stdout.rpartition(b"\n")
    if completed.returncode != 0 or trailer != b"200 2":
        raise ServerFailed(f"HTTP/2 {workload.method} {workload.path} failed: curl exit {completed.returncode}, {trailer!r}")
    return _check_body(workload, data, strict_body)


def _check_body(workload: Workload, data: bytes, strict_body: bool) -> Optional[str]:
    expected = workload.expected_body()
    if expected is not None and data != expected and not strict_body:
        return f"body {data[:40]!r} ({len(data)} bytes) instead of {len(expected)} bytes"
    if expected is not None and data != expected:
        raise ServerFailed(f"{workload.method} {workload.path} returned {len(data)} wrong bytes, expected {len(expected)}")
    if expected is None:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise ServerFailed(f"{workload.method} {workload.path} returned invalid JSON: {data[:200]!r}") from error
        if document.get("id") != 42:
            raise ServerFailed(f"{workload.method} {workload.path} returned the wrong document: {document!r}")
    return None


def rotated(items: list, turn: int) -> list:
    """Return items in the order of one turn: each turn starts with the next
    item, so that none always runs first or after the same neighbour."""
    shift = turn % len(items)
    return items[shift:] + items[:shift]


@dataclass
class Run:
    """One timed run with the server's figures over it."""

    load: dict
    cpu_us_per_request: Optional[float]
    threads_near_end: int


@dataclass
class Measurement:
    """All runs of one server on one workload, with their medians."""

    runs: List[Run] = field(default_factory=list)
    peak_rss_bytes: int = 0
    rss_bytes: int = 0
    load_commands: List[List[str]] = field(default_factory=list)

    def medians(self) -> dict:
        def median(values):
            values = [value for value in values if value is not None]
            return statistics.median(values) if values else None

        loads = [run.load for run in self.runs]
        return {
            "requests_per_second": median(item["requests_per_second"] for item in loads),
            "latency_p50_ms": median(item["latency_p50_ms"] for item in loads),
            "latency_p90_ms": median(item["latency_p90_ms"] for item in loads),
            "latency_p99_ms": median(item["latency_p99_ms"] for item in loads),
            "latency_p999_ms": median(item["latency_p999_ms"] for item in loads),
            "cpu_us_per_request": median(run.cpu_us_per_request for run in self.runs),
            "threads": median(run.threads_near_end for run in self.runs),
            "errors": sum(item["socket_errors"] + item["status_errors"] for item in loads),
            "socket_errors": sum(item["socket_errors"] for item in loads),
            "status_errors": sum(item["status_errors"] for item in loads),
            "requests": sum(item["requests"] for item in loads),
            "peak_rss_bytes": self.peak_rss_bytes,
        }


def measure(server: ServerProcess, workload: Workload, plan: Plan) -> Measurement:
    """Warm the server up, then run the load plan.repeats times."""
    url = f"http://127.0.0.1:{server.port}"
    result = Measurement()
    _one_run(server, workload, plan, url, plan.warmup_seconds, sample=False)
    for _ in range(plan.repeats):
        if server.process.poll() is not None:
            raise ServerFailed(f"exited with {server.process.returncode} under load: {server.log_tail()}")
        run, command = _one_run(server, workload, plan, url, plan.seconds, sample=True)
        result.runs.append(run)
        result.load_commands.append(command)
    final = procstat.sample(server.pid)
    result.peak_rss_bytes = final.peak_rss_bytes
    result.rss_bytes = final.rss_bytes
    return result


def _one_run(server: ServerProcess, workload: Workload, plan: Plan, url: str, seconds: float, sample: bool):
    threads_seen = []

    def near_end() -> None:
        threads_seen.append(procstat.sample(server.pid).threads)

    before = procstat.sample(server.pid)
    hook = near_end if sample else None
    if workload.http2:
        log_file = load.h2load_log_path(BUILD_DIR)
        try:
            command = load.h2load_command(workload, url, seconds, plan.load_threads, plan.load_cpu, log_file)
            outcome = load.run_h2load(command, seconds, log_file, hook)
        finally:
            os.unlink(log_file)
    else:
        script = load.write_wrk_script(workload, BUILD_DIR)
        command = load.wrk_command(workload, url, seconds, plan.load_threads, plan.load_cpu, script)
        outcome = load.run_wrk(command, seconds, hook)
    after = procstat.sample(server.pid)
    cpu = None
    if outcome.requests:
        cpu = (after.cpu_seconds - before.cpu_seconds) / outcome.requests * 1e6
    run = Run(outcome.to_dict(), cpu, threads_seen[-1] if threads_seen else after.threads)
    return run, command
