"""The handler app of the end-to-end tests.

Run as ``python handlers.py [--host H] [--uds PATH] [--threads N]
[--no-access-log] [--shutdown-timeout S] [--read-timeout S]
[--max-header-bytes N] [--subinterpreter]``. It serves on port 0 with a
blocking run(), so the bound address appears in the "Serving on" log line
on standard error.
"""

import argparse
import hashlib
import json
import signal
import threading
import time

import gobind


parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--uds")
parser.add_argument("--threads", type=int, default=4)
parser.add_argument("--no-access-log", action="store_true")
parser.add_argument("--shutdown-timeout", type=float, default=30.0)
parser.add_argument("--read-timeout", type=float, default=60.0)
parser.add_argument("--write-timeout", type=float, default=60.0)
parser.add_argument("--max-header-bytes", type=int, default=64 * 1024)
parser.add_argument("--subinterpreter", action="store_true",
                    help="create a subinterpreter first, after which PyGILState_Check() returns true on every thread")
options = parser.parse_args()

if options.subinterpreter:
    try:
        import _xxsubinterpreters as interpreters  # Python 3.11 and 3.12
    except ImportError:
        import _interpreters as interpreters  # Python 3.13 and later
    interpreters.create()

app = gobind.Server(
    threads=options.threads,
    access_log=not options.no_access_log,
    shutdown_timeout=options.shutdown_timeout,
    read_timeout=options.read_timeout,
    write_timeout=options.write_timeout,
    max_header_bytes=options.max_header_bytes,
)


def send_json(w, value, status=200):
    w.headers["Content-Type"] = "application/json"
    w.write_header(status)
    w.write(json.dumps(value))


def describe(req):
    return {
        "method": req.method,
        "url": req.url,
        "path": req.path,
        "raw_path": req.raw_path,
        "query": req.query,
        "protocol": req.protocol,
        "scheme": req.scheme,
        "host": req.host,
        "remote_addr": req.remote_addr,
        "local_addr": req.local_addr,
        "client": req.client,
        "content_length": req.content_length,
        "path_params": req.path_params,
    }


# Routing.


@app.route("GET /items/{id}")
def get_item(w, req):
    send_json(w, {"handler": "get_item", **describe(req)})


@app.route("POST /items/{id}")
def post_item(w, req):
    send_json(w, {"handler": "post_item", "body": req.body.decode("latin-1"), **describe(req)})


@app.route("/files/{rest...}")
def files(w, req):
    send_json(w, {"handler": "files", **describe(req)})


@app.route("GET /exact/{$}")
def exact(w, req):
    w.write("exact")


@app.route("example.test/where")
def where_host(w, req):
    w.write("host example.test")


@app.route("/where")
def where_any(w, req):
    w.write("any host")


@app.route("GET /attributes")
def attributes(w, req):
    send_json(w, describe(req))


# Headers and bodies.


@app.route("/headers")
def headers(w, req):
    send_json(
        w,
        {
            "items": req.headers.items(),
            "raw": [[name.hex(), value.hex()] for name, value in req.headers.raw()],
            "x_multi": req.headers.get_all("x-MULTI"),
            "x_multi_first": req.headers["X-Multi"] if "X-Multi" in req.headers else None,
            "has_x_multi": "x-multi" in req.headers,
            "missing": req.headers.get("X-Missing", "default"),
        },
    )


@app.route("GET /response-headers")
def response_headers(w, req):
    w.headers.add("Set-Cookie", "a=1")
    w.headers.add("set-cookie", "b=2")
    w.headers["X-Latin"] = "caf\u00e9"
    w.headers[b"X-Bytes"] = b"\xff\x01\x80"
    w.headers["X-Replaced"] = "old"
    w.headers["x-replaced"] = "new"
    w.write("ok")


@app.route("GET /invalid-header")
def invalid_header(w, req):
    messages = []
    for name, value in [("X-Bad", "a\r\nInjected: 1"), ("X-Bad", "a\nb"), ("Bad\r\nName", "v"), ("X-Nul", "a\x00b")]:
        try:
            w.headers[name] = value
        except ValueError as error:
            messages.append(str(error))
        else:
            messages.append("accepted")
    send_json(w, messages)


@app.route("POST /echo")
def echo(w, req):
    body = req.body
    w.headers["Content-Type"] = "application/octet-stream"
    w.headers["X-Body-Again"] = str(req.body is body)
    w.write(body)


@app.route("GET /over-length")
def over_length(w, req):
    w.headers["Content-Length"] = "5"
    w.write(b"0123456789")


@app.route("GET /under-length")
def under_length(w, req):
    w.headers["Content-Length"] = "10"
    w.write(b"0123")


@app.route("POST /read")
def read_sizes(w, req):
    pieces = [req.read(3), req.read(5), req.read(-1), req.read(4)]
    send_json(w, [piece.decode("latin-1") for piece in pieces])


@app.route("POST /read-then-body")
def read_then_body(w, req):
    first = req.read(2)
    send_json(w, [first.decode("latin-1"), req.body.decode("latin-1"), req.read().decode("latin-1")])


@app.route("POST /respond-then-read")
def respond_then_read(w, req):
    # Starts the response, then reads the rest of the body (full duplex).
    w.headers["Content-Type"] = "text/plain"
    first = req.read(5)
    w.write(b"first " + first + b"\n")
    w.flush()
    hasher = hashlib.sha256(first)
    size = len(first)
    for chunk in req:
        hasher.update(chunk)
        size += len(chunk)
    w.write(f"size {size} sha256 {hasher.hexdigest()}\n")


@app.route("POST /stream-then-read")
def stream_then_read(w, req):
    # Starts a streamed response before it reads any of the body.
    w.headers["Content-Type"] = "text/plain"
    w.write(b"start\n")
    w.flush()
    body = req.body
    w.write(f"size {len(body)} sha256 {hashlib.sha256(body).hexdigest()}\n")


@app.route("POST /stream-ignoring-body")
def stream_ignoring_body(w, req):
    # One write above the writer's 64 KiB buffer starts a streamed response,
    # and the body stays unread.
    w.write(b"x" * 100_000)


@app.route("GET /backend-refused")
def backend_refused(w, req):
    raise ConnectionRefusedError("backend refused the connection")


@app.route("POST /stream-413")
def stream_413(w, req):
    # Rejects the upload with a streamed response, without reading it.
    w.write_header(413)
    w.write(b"too large\n")
    w.flush()


@app.route("POST /continue-then-stream")
def continue_then_stream(w, req):
    # Sends 100 Continue itself, then streams, then reads the body.
    w.write_header(100)
    w.write(b"start\n")
    w.flush()
    w.write(f"size {len(req.body)}\n")


@app.route("POST /read-then-continue")
def read_then_continue(w, req):
    # Sends 100 Continue after the body read, which sent one already.
    body = req.body
    w.write_header(100)
    w.write(f"size {len(body)}\n")
    w.flush()


@app.route("POST /read-fail-then-own")
def read_fail_then_own(w, req):
    # A body read fails, then the app fails on its own: that failure is the app's.
    try:
        req.read()
    except (ConnectionError, TimeoutError, ValueError):
        pass
    if req.query == "error=value":
        raise ValueError("the app's own error after the body read failed")
    raise ConnectionRefusedError("backend refused after the body read failed")


@app.route("GET /write-types")
def write_types(w, req):
    w.write(b"bytes,")
    w.write(bytearray(b"bytearray,"))
    w.write(memoryview(b"memoryview,"))
    w.write("str caf\u00e9")


@app.route("POST /digest")
def digest(w, req):
    # Streams the body: chunk sizes stay bounded whatever the body size.
    hasher = hashlib.sha256()
    size = 0
    chunks = 0
    largest = 0
    for chunk in req:
        hasher.update(chunk)
        size += len(chunk)
        chunks += 1
        largest = max(largest, len(chunk))
    send_json(w, {"size": size, "sha256": hasher.hexdigest(), "chunks": chunks, "largest": largest})


@app.route("GET /download/{size}")
def download(w, req):
    size = int(req.path_params["size"])
    chunk = bytes(range(256)) * 256  # 64 KiB
    w.headers["Content-Type"] = "application/octet-stream"
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        w.write(piece)
        w.flush()
        sent += len(piece)


@app.route("GET /one-write/{size}")
def one_write(w, req):
    # The whole body in one write call.
    w.write(b"w" * int(req.path_params["size"]))


@app.route("GET /id/{n}")
def echo_id(w, req):
    w.write(f"id {req.path_params['n']}")


@app.route("GET /writer-state")
def writer_state(w, req):
    states = [[w.status, w.headers_sent]]
    w.write_header(201)
    states.append([w.status, w.headers_sent])
    w.write("x")
    states.append([w.status, w.headers_sent])
    w.flush()
    states.append([w.status, w.headers_sent])
    errors = []
    try:
        w.write_header(202)
    except RuntimeError as error:
        errors.append(str(error))
    w.headers["X-Late"] = "ignored"
    w.write(json.dumps({"states": states, "errors": errors}))


@app.route("GET /misuse")
def misuse(w, req):
    errors = []
    for status in (99, 101, 1000, 2**70, "200", True):
        try:
            w.write_header(status)
        except (TypeError, ValueError) as error:
            errors.append(f"{type(error).__name__}: {error}")
    try:
        w.write(5)
    except TypeError as error:
        errors.append(str(error))
    send_json(w, errors)


@app.route("GET /informational/{status}")
def informational(w, req):
    w.headers["Link"] = "</style.css>; rel=preload"
    w.write_header(int(req.path_params["status"]))
    w.headers["Content-Type"] = "text/plain"
    w.write(f"{w.status} {w.headers_sent}")


@app.route("GET /informational-late")
def informational_late(w, req):
    errors = []
    w.write_header(404)
    try:
        w.write_header(103)
    except RuntimeError as error:
        errors.append(str(error))
    w.write_header(200)
    w.write("x")
    try:
        w.write_header(100)
    except RuntimeError as error:
        errors.append(str(error))
    w.write(json.dumps(errors))


@app.route("GET /no-body/{status}/{size}")
def no_body(w, req):
    # A body written with a status that forbids one is dropped.
    w.write_header(int(req.path_params["status"]))
    w.write(b"x" * int(req.path_params["size"]))


@app.route("GET /bad-content-length")
def bad_content_length(w, req):
    # Raises ValueError: a Content-Length is digits only.
    w.headers["Content-Length"] = "+4"
    w.write("body")


kept_objects = {}


@app.route("GET /keep")
def keep(w, req):
    kept_objects["request"] = req
    kept_objects["writer"] = w
    kept_objects["headers"] = w.headers
    w.headers["X-Kept"] = "yes"
    w.write("kept")


@app.route("GET /use-kept")
def use_kept(w, req):
    errors = []
    actions = [
        lambda: kept_objects["request"].method,
        lambda: kept_objects["request"].read(),
        lambda: kept_objects["writer"].write("x"),
    ]
    for action in actions:
        try:
            action()
        except RuntimeError as error:
            errors.append(str(error))
    # The kept Headers object keeps its fields, and this response's own
    # headers start empty.
    errors.append(kept_objects["headers"].get("X-Kept"))
    errors.append(list(w.headers.items()))
    send_json(w, errors)


# Failures.


@app.route("GET /raise")
def raise_error(w, req):
    w.headers["X-Lost"] = "yes"
    w.write("lost")
    raise ValueError("handler failed on purpose")


@app.route("GET /raise-after-stream")
def raise_after_stream(w, req):
    w.headers["Content-Length"] = "1000"
    w.write("partial")
    w.flush()
    raise RuntimeError("failed after streaming")


# Lifecycle.

local = threading.local()


@app.route("GET /thread-local")
def thread_local(w, req):
    local.count = getattr(local, "count", 0) + 1
    send_json(w, {"thread": threading.get_ident(), "count": local.count})


@app.route("GET /slow")
def slow(w, req):
    print("slow started", flush=True)
    time.sleep(float(req.query.partition("=")[2] or 1))
    w.write("slow done")


release = threading.Event()
signal.signal(signal.SIGUSR1, lambda signum, frame: release.set())


@app.route("GET /block")
def block(w, req):
    # Holds a handler thread until the process gets SIGUSR1, or for 5
    # minutes, longer than any test waits for the process to exit.
    print("block started", flush=True)
    release.wait(300)
    w.write("released")


if __name__ == "__main__":
    if options.uds:
        app.run(uds=options.uds)
    else:
        app.run(options.host, 0)
    print("run returned", flush=True)
