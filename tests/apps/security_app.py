"""A gobind server that records every request its handlers receive, for
the raw-socket tests in test_security.py.

Run as: python security_app.py [--all] [--connect] [--read-timeout S] [limit options]
It prints "listening HOST:PORT" once bound on a free loopback port.
GET /_seen returns one "METHOD TARGET" line per request received before it.
"""

import argparse
import sys
import threading

import gobind

seen: list[str] = []
seen_lock = threading.Lock()


def record(line: str) -> None:
    with seen_lock:
        seen.append(line)


def show_seen(w, req):
    with seen_lock:
        text = "".join(line + "\n" for line in seen)
    w.headers["Content-Type"] = "text/plain"
    w.write(text)


def echo(w, req):
    record(f"{req.method} {req.url}")
    try:
        body = req.body
    except (OSError, ValueError) as error:
        record(f"{type(error).__name__}: {error}")
        raise
    w.headers["Content-Type"] = "text/plain"
    w.write(f"{req.method} {req.url} {len(body)}\n")


def upload(w, req):
    record(f"{req.method} {req.url}")
    try:
        req.body
    except TimeoutError as error:
        record(f"TimeoutError: {error}")
        raise


def upload_handled(w, req):
    record(f"{req.method} {req.url}")
    try:
        req.body
    except TimeoutError:
        w.write_header(422)
        w.write("request body incomplete\n")


def tunnel(w, req):
    record(f"{req.method} {req.url}")
    w.write_header(200)


def dispatch(w, req):
    if req.path == "/_seen":
        show_seen(w, req)
    elif req.path == "/upload":
        upload(w, req)
    else:
        echo(w, req)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", action="store_true", help="register a CONNECT pattern")
    parser.add_argument("--all", action="store_true", help="route every request through handle_all")
    parser.add_argument("--read-timeout", type=float, default=60.0)
    parser.add_argument("--max-request-line-bytes", type=int, default=8190)
    parser.add_argument("--max-header-field-bytes", type=int, default=8190)
    parser.add_argument("--max-header-fields", type=int, default=100)
    args = parser.parse_args()

    server = gobind.Server(
        read_timeout=args.read_timeout,
        max_request_line_bytes=args.max_request_line_bytes,
        max_header_field_bytes=args.max_header_field_bytes,
        max_header_fields=args.max_header_fields,
        access_log=False,
    )
    if args.all:
        server.handle_all(dispatch)
    else:
        server.handle("GET /_seen", show_seen)
        server.handle("POST /upload", upload)
        server.handle("POST /upload-handled", upload_handled)
        server.handle("/", echo)
    if args.connect:
        server.handle("CONNECT /", tunnel)
    address = server.start("127.0.0.1", 0)
    print(f"listening {address}", flush=True)
    server.serve()


if __name__ == "__main__":
    sys.exit(main())
