"""Worker processes of the gobind command (--workers).

The supervisor binds the listening socket once, then runs each worker as a
new interpreter, ``python -m gobind ... --fd N``: never a fork, because the
Go runtime of a process does not survive fork(). The workers inherit the
socket and share its accept queue, so a connection waiting there is served
by whichever worker accepts first, also when another worker dies.

Each worker has one end of a socket pair, and the supervisor keeps the
other end. The worker writes one byte to it once it serves. When the
supervisor dies, even by SIGKILL, the worker reads the end of the stream
and shuts down gracefully.

Signals: SIGINT and SIGTERM stop the workers gracefully (a second one stops
them at once), SIGHUP replaces them one by one with new workers, SIGTTIN
and SIGTTOU add and remove one. The workers run in their own session, so
Ctrl-C in a terminal reaches the supervisor only, which passes it on as
SIGTERM. A worker ignores a SIGTERM after its first, because systemd's
default stop sends one to every process of a service, in addition to the
one the supervisor passes on. The supervisor forces a stop with SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, Iterable, List, Optional, Sequence

from . import _server

logger = logging.getLogger("gobind")

# How long the supervisor waits, beyond the graceful-shutdown timeout, for
# a worker to exit before it kills it: longer than the 5 s a worker itself
# gives handlers that are still running before it exits with status 1.
EXIT_GRACE_SECONDS = 7.0
# Delays before a worker that failed to start is started again.
FIRST_RETRY_SECONDS, LAST_RETRY_SECONDS = 1.0, 30.0
POLL_SECONDS = 0.2


class Worker:
    """One worker process and the supervisor's end of its link."""

    def __init__(self, process: subprocess.Popen, link: socket.socket) -> None:
        self.process = process
        self.link = link
        self.ready = False
        self.stopping = False  # the supervisor asked it to stop: not replaced
        self.kill_at = float("inf")  # when a stopping worker is killed

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, kill_after: float = float("inf")) -> None:
        """Send SIGTERM, and set when the worker is killed if it still runs."""
        if not self.stopping:
            self.kill_at = time.monotonic() + kill_after
        self.stopping = True
        try:
            self.process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass


class Supervisor:
    """Starts, watches and stops the worker processes of one listener."""

    def __init__(self, argv: Sequence[str], count: int, fd: int, address: str, shutdown_timeout: float) -> None:
        self.argv = list(argv)
        self.count = count
        self.fd = fd
        self.address = address
        self.shutdown_timeout = shutdown_timeout
        self.workers: List[Worker] = []
        self.stops = 0  # stop signals received
        self.restart = False
        self.retry_delay = 0.0
        self.retry_at = 0.0
        # A signal handler writes to wake_in, which ends the supervisor's
        # select at once instead of at its next poll.
        self.wake_out, self.wake_in = socket.socketpair()
        self.wake_in.setblocking(False)
        self.wake_out.setblocking(False)
        self.previous_wakeup = -1

    def run(self) -> int:
        """Serve until a stop signal; return the exit status."""
        previous = self._install_signals()
        try:
            status = self._start()
            return self._watch() if status is None else status
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(self.previous_wakeup)
            self.wake_in.close()
            self.wake_out.close()
            if self.fd >= 0:
                os.close(self.fd)

    # Starting.

    def _spawn(self) -> Worker:
        ours, theirs = socket.socketpair()
        # The options come first: the user's arguments may end with "--".
        command = [sys.executable, *subprocess._args_from_interpreter_flags(), "-m", "gobind",
                   "--fd", str(self.fd), "--supervisor-fd", str(theirs.fileno()), *self.argv]
        try:
            process = subprocess.Popen(command, pass_fds=(self.fd, theirs.fileno()), start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        worker = Worker(process, ours)
        self.workers.append(worker)
        return worker

    def _start(self) -> Optional[int]:
        """Start the first worker, then the others once it serves, so that
        an app that cannot start reports its error once. Returns None when
        all serve, else the exit status of the stopped start."""
        try:
            first = [self._spawn()]
        except OSError as error:
            return self._abort_start(error)
        failed = self._wait_ready(first)
        if failed is None and not self.stops:
            try:
                others = [self._spawn() for _ in range(self.count - 1)]
            except OSError as error:
                return self._abort_start(error)
            failed = self._wait_ready(others)
        if self.stops:
            self._stop_all()
            return self._exit_status()
        if failed is not None:
            status = failed.process.returncode
            logger.error("Worker %d exited with %s before it served; stopping", failed.pid, describe(status))
            self._stop_all()
            return status if status and status > 0 else 1
        logger.info(
            "Started %s on %s (supervisor pid %d, worker pids %s)",
            _server.plural(self.count, "worker"), self.address, os.getpid(), ", ".join(str(w.pid) for w in self.workers),
        )
        return None

    def _abort_start(self, error: OSError) -> int:
        """Stop the workers started so far, because the system did not
        grant a process or a descriptor for the next one (a limit on
        processes or open files). Return the exit status."""
        logger.error("Cannot start a worker process: %s; stopping", error)
        self._stop_all()
        return 1

    def _wait_ready(self, workers: List[Worker]) -> Optional[Worker]:
        """Wait until each of workers serves; return the first that exits
        instead, or None. A stop signal ends the wait. Meanwhile the other
        workers are reaped, and killed when their stop takes too long."""
        waiting = {w.link: w for w in workers if not w.ready}
        while waiting and not self.stops:
            self._reap(skip=waiting.values())
            for link in self._wait(list(waiting)):
                worker = waiting.pop(link)
                if not self._read_ready(worker):
                    return worker
        return None

    def _read_ready(self, worker: Worker) -> bool:
        """Read the worker's readiness byte; False when its link closed
        because it exited."""
        try:
            data = worker.link.recv(1)
        except OSError:
            data = b""
        if data:
            worker.ready = True
            return True
        worker.process.wait()
        return False

    # Watching.

    def _wait(self, links: List[socket.socket]) -> List[socket.socket]:
        """Return the links that are readable, after at most POLL_SECONDS
        or a signal."""
        readable, _, _ = select.select([*links, self.wake_out], [], [], POLL_SECONDS)
        if self.wake_out in readable:
            try:
                while self.wake_out.recv(64):
                    pass
            except BlockingIOError:
                pass
        return [link for link in readable if link is not self.wake_out]

    def _watch(self) -> int:
        while not self.stops:
            if self.restart:
                self.restart = False
                self._replace_all()
                continue  # a stop signal may have ended the replacement
            self._reap()
            self._top_up()
            links = {w.link: w for w in self.workers if not w.ready}
            for link in self._wait(list(links)):
                worker = links[link]
                if self._read_ready(worker):
                    self.retry_delay = 0.0
                    logger.info("Worker %d serves", worker.pid)
        self._stop_all()
        return self._exit_status()

    def _reap(self, skip: Iterable[Worker] = ()) -> None:
        """Forget the workers that exited, except those in skip; log those
        that were not asked to exit."""
        skipped = set(skip)
        for worker in list(self.workers):
            if worker in skipped:
                continue
            status = worker.process.poll()
            if status is None:
                if time.monotonic() >= worker.kill_at:
                    logger.warning("Killing worker %d, which did not exit in time", worker.pid)
                    worker.process.kill()
                continue
            if not worker.ready and select.select([worker.link], [], [], 0)[0]:
                # It served, and exited before its readiness byte was read.
                worker.ready = self._read_ready(worker)
            self.workers.remove(worker)
            worker.link.close()
            if worker.stopping:
                continue
            if worker.ready:
                logger.warning("Worker %d exited with %s; starting a new one", worker.pid, describe(status))
            else:
                self._delay_retry()
                logger.error(
                    "Worker %d exited with %s before it served; starting a new one in %.0f s",
                    worker.pid, describe(status), self.retry_delay,
                )

    def _delay_retry(self) -> None:
        """Postpone the next start after a failed one: 1 s, then twice as long each time, up to 30 s."""
        self.retry_delay = min(max(2 * self.retry_delay, FIRST_RETRY_SECONDS), LAST_RETRY_SECONDS)
        self.retry_at = time.monotonic() + self.retry_delay

    def _top_up(self) -> None:
        """Start workers until count of them run, and stop any extra ones."""
        running = [w for w in self.workers if not w.stopping]
        if len(running) > self.count:
            for worker in running[self.count:]:
                logger.info("Stopping worker %d", worker.pid)
                worker.stop(self.shutdown_timeout + EXIT_GRACE_SECONDS)
        elif len(running) < self.count and time.monotonic() >= self.retry_at:
            for _ in range(self.count - len(running)):
                try:
                    self._spawn()
                except OSError as error:
                    self._delay_retry()
                    logger.error("Cannot start a worker process: %s; trying again in %.0f s", error, self.retry_delay)
                    return

    def _replace_all(self) -> None:
        """Replace each worker by a new one, which serves before the old one
        stops. A new worker that fails to start ends the replacement."""
        old = [w for w in self.workers if not w.stopping]
        logger.info("Replacing %s", _server.plural(len(old), "worker"))
        for worker in old:
            try:
                new = self._spawn()
            except OSError as error:
                logger.error("Cannot start a new worker process: %s; the other workers keep running", error)
                return
            failed = self._wait_ready([new])
            if self.stops:
                return
            if failed is not None:
                logger.error(
                    "New worker %d exited with %s before it served; the other workers keep running",
                    failed.pid, describe(failed.process.returncode),
                )
                new.stopping = True
                return
            worker.stop(self.shutdown_timeout + EXIT_GRACE_SECONDS)
        logger.info("Replaced %s", _server.plural(len(old), "worker"))

    # Stopping.

    def _stop_all(self) -> None:
        """Stop every worker gracefully: a second stop signal, or the end of
        the graceful-shutdown timeout, stops the rest at once."""
        live = [w for w in self.workers if w.process.poll() is None]
        # Workers already stopping, after SIGHUP or SIGTTOU, got theirs.
        running = [w for w in live if not w.stopping]
        if running:
            logger.info("Stopping %s", _server.plural(len(running), "worker"))
        for worker in running:
            worker.stop()

        # New connections are refused from now on instead of waiting in a
        # queue that no worker accepts from any more.
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

        deadline = time.monotonic() + self.shutdown_timeout + EXIT_GRACE_SECONDS
        forced_at = None
        while any(w.process.poll() is None for w in live):
            now = time.monotonic()
            if self.stops >= 2 and forced_at is None:
                forced_at = now
                logger.info("Received a second signal; stopping the workers at once")
                # A worker takes a repeated SIGTERM for the same request (see
                # _server.supervised), and SIGINT for a forced stop.
                for worker in live:
                    if worker.process.poll() is None:
                        worker.process.send_signal(signal.SIGINT)
            # A worker that does not act on SIGINT in time is killed a
            # little later.
            forced_late = forced_at is not None and now >= forced_at + 2.0
            if now >= deadline or forced_late:
                for worker in live:
                    if worker.process.poll() is None:
                        logger.warning("Killing worker %d, which did not exit in time", worker.pid)
                        worker.process.kill()
                        worker.process.wait()
                break
            time.sleep(0.05)
        for worker in self.workers:
            worker.link.close()

    def _exit_status(self) -> int:
        """0 when every worker stopped cleanly, else 1. A worker that was
        still starting ends by the signal itself, before it handles it."""
        return 0 if all(
            w.process.returncode == 0 or (w.stopping and w.process.returncode == -signal.SIGTERM)
            for w in self.workers
        ) else 1

    # Signals.

    def _install_signals(self) -> Dict[int, object]:
        handlers = {
            signal.SIGINT: self._on_stop,
            signal.SIGTERM: self._on_stop,
            signal.SIGHUP: self._on_restart,
            signal.SIGTTIN: self._on_more,
            signal.SIGTTOU: self._on_fewer,
        }
        previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
        self.previous_wakeup = signal.set_wakeup_fd(self.wake_in.fileno(), warn_on_full_buffer=False)
        return previous

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stops += 1
        if self.stops == 1:
            logger.info("Received %s; stopping the workers gracefully", signal.Signals(signum).name)

    def _on_restart(self, signum: int, frame: object) -> None:
        self.restart = True

    def _on_more(self, signum: int, frame: object) -> None:
        self.count += 1
        logger.info("Received SIGTTIN; running %s", _server.plural(self.count, "worker"))

    def _on_fewer(self, signum: int, frame: object) -> None:
        if self.count > 1:
            self.count -= 1
        logger.info("Received SIGTTOU; running %s", _server.plural(self.count, "worker"))


def describe(status: Optional[int]) -> str:
    """Describe a Popen return code: "status 1" or "signal SIGKILL"."""
    if status is not None and status < 0:
        try:
            return f"signal {signal.Signals(-status).name}"
        except ValueError:
            return f"signal {-status}"
    return f"status {status}"


def run_supervisor(options: argparse.Namespace, argv: Sequence[str], fd: int, address: str, *, owned: bool) -> int:
    """Run options.workers workers of the command line argv on the
    listening socket fd, bound at address; return the exit status. An
    owned Unix socket's file is removed at the end."""
    try:
        return Supervisor(argv, options.workers, fd, address, options.timeout_graceful_shutdown).run()
    finally:
        if owned and address.startswith("unix:"):
            try:
                os.unlink(address[len("unix:"):])
            except FileNotFoundError:
                pass


class SupervisorLink:
    """A worker's end of its link to the supervisor. It reports once the
    worker serves the inherited socket fd, and stops the worker when the
    supervisor is gone, also while the app is still being imported."""

    def __init__(self, link_fd: int, fd: int) -> None:
        self.link = socket.socket(fileno=link_fd)
        os.set_inheritable(link_fd, False)
        _server.supervised = True
        self.listen_address = f"fd:{fd}"
        _server._listening_hooks.append(self._on_listening)
        threading.Thread(target=self._watch, name="gobind-supervisor-link", daemon=True).start()

    def _on_listening(self, address: str) -> None:
        # Other servers that the app starts, such as one for metrics, do not count.
        if address != self.listen_address:
            return
        _server._listening_hooks.remove(self._on_listening)
        try:
            self.link.sendall(b"\x01")
        except OSError:
            pass  # the supervisor is gone, which _watch handles

    def _watch(self) -> None:
        try:
            while self.link.recv(64):
                pass
        except OSError:
            pass
        logger.warning("The supervisor is gone; shutting down")
        # No supervisor sends a copy of a signal now, so a later SIGTERM is
        # the user's, and counts.
        _server.supervised = False
        os.kill(os.getpid(), signal.SIGTERM)
