"""Worker processes (--workers): a supervisor shares one listening socket
among new interpreters, replaces those that exit, and stops them all."""

import concurrent.futures
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from cliserver import APPS, CLIServer, run_to_exit

STARTED = re.compile(r"Started (\d+) workers on (\S+) \(supervisor pid (\d+), worker pids ([\d, ]+)\)")


class Workers:
    """A supervisor started by `gobind ARGS --workers N` and its workers."""

    def __init__(self, *args, count=2, cwd=APPS, env=None):
        self.cli = CLIServer(["--workers", str(count), *args], env=env, cwd=cwd)
        if not self.cli.wait_output("Started", timeout=120):
            self.cli.stop()
            raise RuntimeError(f"workers did not start; output:\n{self.cli.output}")
        match = STARTED.search(self.cli.output)
        self.address = match.group(2)
        self.url = f"http://{self.address}"
        self.pids = {int(pid) for pid in match.group(4).split(", ")}
        assert int(match.group(3)) == self.cli.process.pid

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.cli.stop()

    def signal(self, signum):
        self.cli.process.send_signal(signum)

    def served_by(self, connections=64, requests=512):
        """Return the pids that served requests sent on many new connections at once."""
        def one(_):
            return int(httpx.get(self.url + "/", headers={"Connection": "close"}, timeout=10).text)

        with concurrent.futures.ThreadPoolExecutor(connections) as pool:
            return set(pool.map(one, range(requests)))


def gone(pid, timeout=20.0):
    """Wait until pid has exited (a zombie counts: its parent is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_workers_share_one_socket():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--no-access-log") as workers:
        assert len(workers.pids) == 2
        seen = set()
        for _ in range(10):
            seen |= workers.served_by()
            if seen == workers.pids:
                break
        assert seen == workers.pids
        assert workers.cli.output.count("Serving on " + workers.url) == 2


@pytest.mark.parametrize("app", ["worker_apps:asgi_pid", "worker_apps:server"])
def test_workers_serve_asgi_and_server_apps(app):
    with Workers(app, "--port", "0") as workers:
        assert int(httpx.get(workers.url + "/", timeout=10).text) in workers.pids


def test_workers_replace_a_worker_that_dies():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--no-access-log") as workers:
        victim = min(workers.pids)
        os.kill(victim, signal.SIGKILL)
        assert workers.cli.wait_output(f"Worker {victim} exited with signal SIGKILL; starting a new one")
        match = re.search(r"Worker (\d+) serves", workers.cli.output) if workers.cli.wait_output(" serves", 60) else None
        assert match, workers.cli.output
        replacement = int(match.group(1))
        assert replacement not in workers.pids
        survivors = (workers.pids - {victim}) | {replacement}
        assert workers.served_by() <= survivors


def test_workers_retry_a_start_that_the_system_refuses():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--no-access-log") as workers:
        supervisor = workers.cli.process.pid
        limits = resource.prlimit(supervisor, resource.RLIMIT_NOFILE)
        # The limit caps descriptor numbers: below the lowest free one, no
        # number is left for the socket pair of a new worker.
        used = {int(name) for name in os.listdir(f"/proc/{supervisor}/fd")}
        lowest_free = min(set(range(len(used) + 1)) - used)
        resource.prlimit(supervisor, resource.RLIMIT_NOFILE, (lowest_free, limits[1]))
        os.kill(min(workers.pids), signal.SIGKILL)
        assert workers.cli.wait_output(
            "Cannot start a worker process: [Errno 24] Too many open files; trying again in 1 s"
        ), workers.cli.output
        resource.prlimit(supervisor, resource.RLIMIT_NOFILE, limits)
        assert workers.cli.wait_output(" serves", 60), workers.cli.output
        assert workers.cli.process.poll() is None


def test_workers_stop_gracefully():
    with Workers("worker_apps:wsgi_pid", "--port", "0") as workers:
        result = {}
        slow = threading.Thread(target=lambda: result.update(response=httpx.get(workers.url + "/slow", timeout=30)))
        slow.start()
        assert workers.cli.wait_output('"GET /slow HTTP/1.1"', 0.5) is False  # still running
        time.sleep(0.3)
        workers.signal(signal.SIGTERM)
        slow.join(30)
        assert workers.cli.process.wait(30) == 0
        assert result["response"].status_code == 200
        assert int(result["response"].text) in workers.pids
        assert all(gone(pid) for pid in workers.pids)
        assert "Received SIGTERM; stopping the workers gracefully" in workers.cli.output


def start_slow_request(workers, seconds):
    """Start a request that takes seconds to serve; return its thread and a
    list that receives its status code or the name of its error."""
    outcome = []

    def slow_request():
        try:
            outcome.append(httpx.get(f"{workers.url}/slow?{seconds}", timeout=30).status_code)
        except httpx.TransportError as error:
            outcome.append(type(error).__name__)

    slow = threading.Thread(target=slow_request, daemon=True)
    slow.start()
    time.sleep(0.3)
    return slow, outcome


def test_workers_second_signal_stops_at_once():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--timeout-graceful-shutdown", "60") as workers:
        slow, outcome = start_slow_request(workers, 20)
        workers.signal(signal.SIGINT)
        assert workers.cli.wait_output("Stopping 2 workers")
        workers.signal(signal.SIGINT)
        assert workers.cli.process.wait(10) == 1
        assert all(gone(pid, 5) for pid in workers.pids)
        slow.join(10)
        assert outcome and outcome[0] != 200


def test_workers_two_quick_signals_stop_at_once():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--timeout-graceful-shutdown", "60") as workers:
        slow, outcome = start_slow_request(workers, 20)
        workers.signal(signal.SIGTERM)
        time.sleep(0.01)
        workers.signal(signal.SIGTERM)
        assert workers.cli.process.wait(15) == 1
        assert "Received a second signal; stopping the workers at once" in workers.cli.output
        slow.join(10)
        assert outcome and outcome[0] != 200


@pytest.mark.parametrize("app", ["worker_apps:wsgi_pid", "worker_apps:asgi_pid"])
def test_workers_stop_gracefully_when_every_process_gets_sigterm(app):
    # systemd's default stop sends SIGTERM to every process of a service,
    # and the supervisor passes its own on: two SIGTERMs reach each worker.
    with Workers(app, "--port", "0", "--timeout-graceful-shutdown", "60") as workers:
        slow, outcome = start_slow_request(workers, 2)
        workers.signal(signal.SIGTERM)
        for pid in workers.pids:
            os.kill(pid, signal.SIGTERM)
        assert workers.cli.process.wait(30) == 0, workers.cli.output
        slow.join(10)
        assert outcome == [200]
        assert "Second interrupt" not in workers.cli.output


WSGI_FLAGS = {"wsgi.multithread": False, "wsgi.run_once": False}


def test_wsgi_multiprocess_with_workers():
    with Workers("worker_apps:wsgi_pid", "--port", "0") as workers:
        assert httpx.get(workers.url + "/environ", timeout=10).json() == {"wsgi.multiprocess": True, **WSGI_FLAGS}


def test_wsgi_not_multiprocess_alone():
    with CLIServer(["worker_apps:wsgi_pid", "--port", "0"]) as server:
        url = server.wait_ready().url
        assert httpx.get(url + "/environ", timeout=10).json() == {"wsgi.multiprocess": False, **WSGI_FLAGS}


def test_workers_exit_if_supervisor_killed():
    with Workers("worker_apps:wsgi_pid", "--port", "0") as workers:
        workers.signal(signal.SIGKILL)
        assert all(gone(pid) for pid in workers.pids), workers.cli.output
        assert workers.cli.output.count("The supervisor is gone; shutting down") == 2


def test_workers_sighup_replaces_every_worker():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--no-access-log") as workers:
        workers.signal(signal.SIGHUP)
        assert workers.cli.wait_output("Replaced 2 workers", 60), workers.cli.output
        assert all(gone(pid) for pid in workers.pids)
        new = workers.served_by()
        assert new and not new & workers.pids


def test_sighup_reaps_others_while_new_worker_starts():
    # While a new worker takes 3 s to import, an old one that dies is noticed
    # then, not once the whole replacement has ended.
    env = {"GOBIND_TEST_IMPORT_SECONDS": "3"}
    with Workers("worker_startup:slow_app", "--port", "0", env=env) as workers:
        workers.signal(signal.SIGHUP)
        assert workers.cli.wait_output("Replacing 2 workers", 30), workers.cli.output
        victim = max(workers.pids)
        os.kill(victim, signal.SIGKILL)
        assert workers.cli.wait_output("Replaced 2 workers", 60), workers.cli.output
        output = workers.cli.output
        exited = output.find(f"Worker {victim} exited with signal SIGKILL")
        assert exited != -1, output
        assert exited < output.find("Replaced 2 workers")


def test_stop_after_sighup_finishes_requests():
    with Workers("worker_apps:wsgi_pid", "--port", "0") as workers:
        result = {}
        slow = threading.Thread(target=lambda: result.update(response=httpx.get(workers.url + "/slow?4", timeout=30)))
        slow.start()
        time.sleep(0.3)
        workers.signal(signal.SIGHUP)
        assert workers.cli.wait_output("Replaced 2 workers", 60)
        workers.signal(signal.SIGTERM)
        slow.join(30)
        assert result["response"].status_code == 200
        assert workers.cli.process.wait(30) == 0


def test_sigttin_sigttou_change_count():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--no-access-log") as workers:
        workers.signal(signal.SIGTTIN)
        assert workers.cli.wait_output("Received SIGTTIN; running 3 workers")
        assert workers.cli.wait_output(" serves", 60)
        workers.signal(signal.SIGTTOU)
        assert workers.cli.wait_output("Received SIGTTOU; running 2 workers")
        assert workers.cli.wait_output("Stopping worker ")
        # The remaining workers go on serving.
        assert httpx.get(workers.url + "/", timeout=10).status_code == 200


def test_workers_unix_socket_removed_at_exit(tmp_path):
    path = tmp_path / "gobind.sock"
    with Workers("worker_apps:wsgi_pid", "--uds", str(path)) as workers:
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            assert int(client.get("http://gobind/").text) in workers.pids
        workers.signal(signal.SIGTERM)
        assert workers.cli.process.wait(30) == 0
    assert not path.exists()


@pytest.mark.parametrize(
    "app, args, status, message",
    [
        ("nosuch:app", [], 1, "gobind: error: module 'nosuch' not found"),
        ("failing_lifespan:app", ["--lifespan", "on"], 3, "Application startup failed. Exiting."),
    ],
)
def test_failed_start_exits_with_status(app, args, status, message):
    result = run_to_exit(app, "--port", "0", "--workers", "3", *args)
    assert result.returncode == status
    # The first worker fails alone, so the error appears once.
    assert result.stderr.count(message) == 1, result.stderr
    assert re.search(rf"Worker \d+ exited with status {status} before it served; stopping", result.stderr)
    assert "Started" not in result.stderr


def test_workers_after_double_dash():
    with Workers("--port", "0", "--no-access-log", "--", "worker_apps:wsgi_pid") as workers:
        assert int(httpx.get(workers.url + "/", timeout=10).text) in workers.pids


def test_ready_when_app_server_listens():
    # The app's own extra server starts at import; the app then fails.
    result = run_to_exit("worker_startup:sidecar_app", "--port", "0", "--workers", "2", "--lifespan", "on",
                         env={"GOBIND_TEST_SIDECAR": "1"})
    assert result.returncode == 3
    assert result.stderr.count("Application startup failed. Exiting.") == 1, result.stderr
    assert "Started" not in result.stderr


def children(pid):
    """Return the pids whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def test_workers_exit_if_supervisor_dies_importing():
    cli = CLIServer(["worker_startup:slow_app", "--port", "0", "--workers", "2"],
                    env={"GOBIND_TEST_IMPORT_SECONDS": "60"})
    try:
        deadline = time.monotonic() + 30
        while not (workers := children(cli.process.pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 1  # the first worker starts alone
        cli.process.kill()
        assert gone(workers[0], 10), cli.output
    finally:
        cli.stop()


def test_stopping_workers_queue_nothing():
    with Workers("worker_apps:wsgi_pid", "--port", "0") as workers:
        slow = threading.Thread(target=lambda: httpx.get(workers.url + "/slow?6", timeout=30))
        slow.start()
        time.sleep(0.3)
        workers.signal(signal.SIGTERM)
        assert workers.cli.wait_output("Stopping 2 workers")
        time.sleep(0.5)
        # Served by a worker that accepted it before it closed its listener,
        # or refused: not left in a queue until the slow request ends.
        started = time.monotonic()
        try:
            status = httpx.get(workers.url + "/", timeout=10).status_code
        except httpx.TransportError:
            status = None
        assert time.monotonic() - started < 3
        assert status in (200, None)
        slow.join(30)
        assert workers.cli.process.wait(30) == 0


def test_sighup_under_load_loses_nothing():
    with Workers("worker_apps:wsgi_pid", "--port", "0", "--no-access-log") as workers:
        failures, served = [], []
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    response = httpx.get(workers.url + "/", headers={"Connection": "close"}, timeout=10)
                    served.append(response.status_code)
                except httpx.TransportError as error:
                    failures.append(repr(error))

        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        try:
            for replacements in (1, 2):
                time.sleep(0.5)
                workers.signal(signal.SIGHUP)
                deadline = time.monotonic() + 60
                while workers.cli.output.count("Replaced 2 workers") < replacements:
                    assert time.monotonic() < deadline, workers.cli.output
                    time.sleep(0.05)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in clients:
                thread.join(30)
        assert failures == []
        assert set(served) == {200}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "0"], "gobind: error: invalid --workers 0: must be 1 or more"),
        (["--fd", "-1"], "gobind: error: invalid --fd -1: must be a descriptor number, 0 or more"),
        (["--fd", "3", "--port", "9000", "--uds", "x.sock"],
         "gobind: error: --fd and --port, --uds cannot be given together: --fd replaces the address"),
        (["--host", "", "--workers", "2"],
         "gobind: error: cannot listen on :8000: invalid host '': give an address such as 127.0.0.1, "
         "or 0.0.0.0 for every interface"),
        (["--host", "", "--workers", "1"],
         "gobind: error: cannot listen on :8000: invalid host '': give an address such as 127.0.0.1, "
         "or 0.0.0.0 for every interface"),
        (["--fd", "97"], "gobind: error: cannot listen on fd:97: bad file descriptor"),
        (["--fd", "97", "--workers", "2"], "gobind: error: cannot listen on fd:97: bad file descriptor"),
        (["--fd", "0", "--workers", "2"], "gobind: error: cannot listen on fd:0: socket operation on non-socket"),
        (["--fd", "{idle}"], "gobind: error: cannot listen on fd:{idle}: descriptor {idle} is a socket that does not listen"),
        (["--fd", "{idle}", "--workers", "2"],
         "gobind: error: cannot listen on fd:{idle}: descriptor {idle} is a socket that does not listen"),
    ],
)
def test_workers_and_fd_usage_errors(args, message):
    # {idle} stands for a socket that is bound but does not listen.
    with socket.socket() as idle:
        idle.bind(("127.0.0.1", 0))
        fd = str(idle.fileno())
        args = [arg.replace("{idle}", fd) for arg in args]
        message = message.replace("{idle}", fd)
        result = subprocess.run(
            [sys.executable, "-m", "gobind", "worker_apps:wsgi_pid", *args],
            cwd=APPS, capture_output=True, text=True, timeout=60, pass_fds=(idle.fileno(),),
        )
    assert result.stderr.strip().splitlines()[-1] == message, result.stderr
    assert result.returncode == 1


def test_workers_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit("worker_apps:wsgi_pid", "--port", str(port), "--workers", "2")
    assert result.stderr.strip().splitlines()[-1] == f"gobind: error: cannot listen on 127.0.0.1:{port}: address already in use"
    assert result.returncode == 1


@pytest.mark.parametrize("workers", ["1", "2"])
def test_fd_serves_an_inherited_socket(workers):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    process = subprocess.Popen(
        [sys.executable, "-m", "gobind", "worker_apps:wsgi_pid", "--fd", str(fd), "--workers", workers],
        cwd=APPS, pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    listener.close()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                break
            except httpx.TransportError:
                assert process.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        assert int(response.text) != process.pid or workers == "1"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert f"Serving on http://127.0.0.1:{port}" in output
