"""Starts a server without serve() and lets the script end.

Run as ``python exit_running.py idle|in-flight|daemon-wait|stuck``. With
in-flight, the script ends on SIGUSR1, sent while a request to /slow is
in its handler. With daemon-wait, daemon threads block in app.wait()
when the script ends. With stuck, it ends on SIGUSR1 too, while a request
to /stuck is in a handler that never returns and takes the GIL again
every few milliseconds.
"""

import logging
import signal
import sys
import threading
import time

import gobind

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
mode = sys.argv[1]
app = gobind.Server()


@app.route("GET /slow")
def slow(w, req):
    print("slow started", flush=True)
    time.sleep(1)
    w.write("slow done")


@app.route("GET /stuck")
def stuck(w, req):
    print("stuck started", flush=True)
    while True:
        time.sleep(0.005)


app.start("127.0.0.1", 0)

if mode in ("in-flight", "stuck"):
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, frame: stop.set())
    while not stop.wait(0.1):
        pass
if mode == "daemon-wait":
    for _ in range(8):
        threading.Thread(target=app.wait, daemon=True).start()
print("script ends", flush=True)
