"""Fixtures that run gobind apps from tests/apps/ in their own processes.

Each app serves on port 0; the fixture reads the bound address back from
the "Serving on ..." line that gobind logs at start, and stops the process
by its PID at teardown.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import httpx
import pytest

APPS = Path(__file__).parent / "apps"

# Maximum wait in seconds for an app to log its address. It is generous
# because an editable install may rebuild the module on import.
START_TIMEOUT = 180.0

SERVING = re.compile(r"Serving on (?:http://)?(\S+) \(pid (\d+),")


class AppProcess:
    """A running app: its process, bound address and output files."""

    def __init__(self, popen: subprocess.Popen, stdout_path: Path, stderr_path: Path) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.address: Optional[str] = None
        self.logged_pid: Optional[int] = None

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Return the exit code; raises subprocess.TimeoutExpired after timeout seconds."""
        return self.popen.wait(timeout)

    def wait_for_output(self, pattern: str, timeout: float = 30.0, stream: str = "stderr") -> re.Match:
        """Wait until the stdout or stderr file matches pattern."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = compiled.search(getattr(self, stream))
            if match:
                return match
            if self.popen.poll() is not None:
                match = compiled.search(getattr(self, stream))
                if match:
                    return match
                pytest.fail(
                    f"app exited with {self.popen.returncode} before {stream} matched {pattern!r}\n"
                    f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{stream} did not match {pattern!r} within {timeout} s\nstderr:\n{self.stderr}")
            time.sleep(0.02)

    def wait_until_serving(self) -> None:
        match = self.wait_for_output(SERVING.pattern, START_TIMEOUT)
        self.address = match.group(1)
        self.logged_pid = int(match.group(2))

    def status(self, field: str) -> int:
        """A kB or count field of /proc/PID/status, such as VmHWM or Threads."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0])
        raise KeyError(field)

    def thread_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(15)


@pytest.fixture(scope="session", autouse=True)
def built_module() -> None:
    """Import gobind once here, so that an editable install rebuilds the
    module before, and not concurrently inside, the app processes."""
    import gobind  # noqa: F401


# A command prefix that runs a program with SIGINT ignored, as a
# non-interactive shell starts a background job.
SIGINT_IGNORED = ("sh", "-c", "trap '' INT && exec \"$@\"", "sh")


def start_app(
    directory: Path, script: str, *args: str, serving: bool = True, sigint_ignored: bool = False
) -> AppProcess:
    """Start tests/apps/SCRIPT with arguments, its output going to files in
    directory; wait for its address unless serving is False."""
    index = len(list(directory.glob("app*.stderr")))
    stdout_path = directory / f"app{index}.stdout"
    stderr_path = directory / f"app{index}.stderr"
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        popen = subprocess.Popen(
            [*(SIGINT_IGNORED if sigint_ignored else ()), sys.executable, str(APPS / script), *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=directory,
        )
    app = AppProcess(popen, stdout_path, stderr_path)
    if serving:
        try:
            app.wait_until_serving()
        except BaseException:
            app.stop()
            raise
    return app


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    """A function that starts an app (see start_app); every app started is
    stopped at teardown."""
    started: list[AppProcess] = []

    def start(script: str, *args: str, serving: bool = True, sigint_ignored: bool = False) -> AppProcess:
        app = start_app(tmp_path, script, *args, serving=serving, sigint_ignored=sigint_ignored)
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


@pytest.fixture(scope="module")
def shared_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """tests/apps/handlers.py with its default settings, shared by the tests
    of a module that leave no state behind."""
    app = start_app(tmp_path_factory.mktemp("shared"), "handlers.py")
    yield app
    app.stop()


@pytest.fixture
def handlers_app(launch: Callable[..., AppProcess]) -> AppProcess:
    """tests/apps/handlers.py with its default settings, for one test."""
    return launch("handlers.py")


class BackgroundGet:
    """A GET request sent from a thread; join() returns the response or
    the exception it raised."""

    def __init__(self, url: str) -> None:
        self.result: object = None
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        try:
            self.result = httpx.get(url, timeout=60)
        except Exception as error:  # noqa: BLE001 - handed to the test
            self.result = error

    def join(self) -> object:
        self.thread.join(90)
        assert not self.thread.is_alive(), "request thread still running"
        return self.result


def half_closed_exchange(address: str, request: bytes) -> bytes:
    """Send request to address (host:port), shut the sending side, and
    return every byte received until the server closes."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def read_steadily(sock: socket.socket, request: bytes) -> bytes:
    """Send request, then read the response as a slow but steady client
    does, 64 KiB every 20 ms (about 3 MB/s), until the server closes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(request)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
        time.sleep(0.02)
    return received


def upload_in_two_parts(
    address: str, path: str, body: bytes, split: int, chunked: bool, marker: bytes, expect_continue: bool = False
) -> tuple[bytes, bytes]:
    """POST body to path on a new connection in two parts: the head and
    body[:split], then, once the response contains marker, the rest. Return the
    response bytes received before the rest was sent, and the whole
    response, whose body must be chunked. The connection stays open, as
    net/http reads a body before it responds only on such connections. A
    server that insists on the whole body before it responds makes this time
    out. With expect_continue, the request carries Expect: 100-continue."""
    host, _, port = address.rpartition(":")
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % len(body)
    if expect_continue:
        framing += b"\r\nExpect: 100-continue"
    head = b"POST %s HTTP/1.1\r\nHost: test\r\n%s\r\n\r\n" % (path.encode(), framing)

    def frame(part: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(part), part) if chunked and part else part

    with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as sock:
        sock.sendall(head + frame(body[:split]))
        early = b""
        while marker not in early:
            chunk = sock.recv(65536)
            if not chunk:
                break
            early += chunk
        sock.sendall(frame(body[split:]) + (b"0\r\n\r\n" if chunked else b""))
        response = early
        while not response.endswith(b"\r\n0\r\n\r\n") and (chunk := sock.recv(65536)):
            response += chunk
    return early, response
