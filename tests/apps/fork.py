"""Forks after importing gobind; the child tries to serve.

Run as ``python fork.py imported|created|started``: the parent forks right
after the import, after creating a Server, or while a Server is serving.
The child prints the RuntimeError it gets and exits 3; the parent prints
the child's PID, then its exit code.
"""

import os
import sys

import gobind

mode = sys.argv[1]
parent_server = None
if mode in ("created", "started"):
    parent_server = gobind.Server()
if mode == "started":
    parent_server.start("127.0.0.1", 0)

pid = os.fork()
if pid == 0:
    try:
        if mode == "created":
            server = parent_server
        else:
            server = gobind.Server()
        server.route("/")(lambda w, req: None)
        server.start("127.0.0.1", 0)
        server.serve()
    except RuntimeError as error:
        print(f"child RuntimeError: {error}", flush=True)
        sys.exit(3)
    print("child served", flush=True)
    sys.exit(0)

print(f"child pid {pid}", flush=True)
_, status = os.waitpid(pid, 0)
print(f"child exit {os.waitstatus_to_exitcode(status)}", flush=True)
if parent_server is not None and mode == "started":
    parent_server.shutdown(5)
