"""Runs the gobind command in a subprocess for end-to-end tests and reads
the bound URL back from its start-up log line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

APPS = Path(__file__).parent / "apps"
SERVING = re.compile(r"Serving on (\S+) \(pid (\d+)")
START_TIMEOUT = 60.0


class CLIServer:
    """`python -m gobind ARGS` started in tests/apps, with output collected."""

    def __init__(
        self,
        args: Sequence[str],
        env: Optional[dict] = None,
        cwd: Path = APPS,
        command: Sequence[str] = ("-m", "gobind"),
        launcher: Sequence[str] = (),
    ) -> None:
        environ = dict(os.environ)
        environ.update(env or {})
        self.args = list(args)
        self.process = subprocess.Popen(
            [*launcher, sys.executable, *command, *args],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: List[str] = []
        self.url: Optional[str] = None
        self.pid: Optional[int] = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            match = SERVING.search(line)
            if match and self.url is None:
                self.url, self.pid = match.group(1), int(match.group(2))
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> "CLIServer":
        self._ready.wait(START_TIMEOUT)
        if self.url is None:
            self.stop()
            raise RuntimeError(f"gobind {' '.join(self.args)} did not start; output:\n{self.output}")
        return self

    def __enter__(self) -> "CLIServer":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_output(self, text: str, timeout: float = 10.0) -> bool:
        """Wait until text appears in the output; log lines can follow the
        response they describe."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            time.sleep(0.05)
        return text in self.output

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(30)
        self._reader.join(5)
        return code


def start(*args: str, env: Optional[dict] = None) -> CLIServer:
    """Start `gobind ARGS --port 0` and wait for its URL."""
    return CLIServer([*args, "--port", "0"], env=env).wait_ready()


def run_to_exit(*args: str, env: Optional[dict] = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run `gobind ARGS` expecting it to exit by itself (an error)."""
    environ = dict(os.environ)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gobind", *args],
        cwd=APPS,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
