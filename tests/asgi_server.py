"""Start tests/apps/serve.py in a subprocess and read its bound URL back."""

import os
import re
import signal
import subprocess
import sys
import threading

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")
SERVING = re.compile(r"Serving on (http://\S+|unix:\S+) \(pid \d+, ASGI")


class AsgiProcess:
    """A server process; its stderr lines are collected in `log`."""

    def __init__(self, app: str, *options: str, wait_until_serving: bool = True) -> None:
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(APPS, "serve.py"), app, *options],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.log: list[str] = []
        self.url = None
        self.logged = threading.Condition()
        ready = threading.Event()

        def collect() -> None:
            for line in self.process.stderr:
                with self.logged:
                    self.log.append(line)
                    self.logged.notify_all()
                match = SERVING.search(line)
                if match:
                    self.url = match.group(1)
                    ready.set()
            ready.set()

        self.reader = threading.Thread(target=collect, daemon=True)
        self.reader.start()
        if wait_until_serving:
            ready.wait(60)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def text(self) -> str:
        return "".join(self.log)

    def logs(self, text: str) -> bool:
        """Wait up to 10 s for text to appear in the log; stderr arrives
        after the response that caused it."""
        with self.logged:
            return self.logged.wait_for(lambda: text in self.text, timeout=10)

    def wait(self) -> int:
        code = self.process.wait(30)
        self.reader.join(10)
        return code

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait()
