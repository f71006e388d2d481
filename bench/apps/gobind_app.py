"""The benchmark routes as plain gobind handlers.

    python -m apps.gobind_app --port 8000 --threads 1
"""

import argparse
import os
import time

import gobind

from .payloads import BODY_1MB, BODY_10KB, HELLO, SLEEP_SECONDS, SLOW_SECONDS


def build(threads: int, http2_cleartext: bool = False) -> gobind.Server:
    """Return a server with every benchmark route and no access log."""
    app = gobind.Server(threads=threads, access_log=False, http2_cleartext=http2_cleartext)

    @app.route("GET /hello")
    def hello(w, req):
        w.headers["Content-Type"] = "text/plain"
        w.write(HELLO)

    @app.route("GET /10k")
    def get_10k(w, req):
        w.headers["Content-Type"] = "application/octet-stream"
        w.write(BODY_10KB)

    @app.route("GET /1m")
    def get_1m(w, req):
        w.headers["Content-Type"] = "application/octet-stream"
        w.write(BODY_1MB)

    @app.route("POST /echo")
    def echo(w, req):
        w.headers["Content-Type"] = "application/octet-stream"
        for chunk in req:
            w.write(chunk)

    @app.route("GET /sleep")
    def sleep(w, req):
        time.sleep(SLEEP_SECONDS)
        w.headers["Content-Type"] = "text/plain"
        w.write(HELLO)

    @app.route("GET /slow")
    def slow(w, req):
        time.sleep(SLOW_SECONDS)
        w.headers["Content-Type"] = "text/plain"
        w.write(HELLO)

    return app


def from_environment() -> gobind.Server:
    """Build the server for the worker processes of the gobind command:

        BENCH_THREADS=1 python -m gobind apps.gobind_app:from_environment --factory --workers 2

    BENCH_THREADS and BENCH_HTTP2_CLEARTEXT=1 stand for main's options."""
    return build(int(os.environ.get("BENCH_THREADS", "1")), os.environ.get("BENCH_HTTP2_CLEARTEXT") == "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="listen host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    parser.add_argument("--threads", type=int, default=1, help="handlers running at once (default 1)")
    parser.add_argument("--http2-cleartext", action="store_true", help="also serve HTTP/2 without TLS (h2c)")
    args = parser.parse_args()
    build(args.threads, args.http2_cleartext).run(host=args.host, port=args.port)


if __name__ == "__main__":
    main()
