"""The module-level form: gobind.route, gobind.run and gobind.shutdown.

POST /shutdown calls gobind.shutdown() from another thread, after which
gobind.run() returns. GET /slow takes a second.
"""

import threading
import time

import gobind


@gobind.route("GET /hello/{name}")
def hello(w, req):
    w.headers["Content-Type"] = "text/plain"
    w.write(f"Hello, {req.path_params['name']}")


@gobind.route("POST /shutdown")
def stop(w, req):
    threading.Thread(target=gobind.shutdown).start()
    w.write("stopping")


@gobind.route("GET /slow")
def slow(w, req):
    print("slow started", flush=True)
    time.sleep(1)
    w.write("slow done")
    print("slow finished", flush=True)


print(f"default server set: {gobind.default_server is not None}", flush=True)
gobind.run("127.0.0.1", 0)
print("run returned", flush=True)
