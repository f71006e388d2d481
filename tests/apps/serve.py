"""Serve an ASGI app with gobind.asgi.serve on a free port, for the tests.

    python serve.py MODULE:ATTRIBUTE [--lifespan MODE] [--loop LOOP] [--root-path PATH]
                    [--port PORT] [--uds PATH] [--max-concurrency N]
                    [--write-timeout SECONDS]

The bound URL appears in the "Serving on ..." log line on stderr.
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gobind.asgi  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("--lifespan", default="auto")
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--root-path", default="")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--uds")
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--write-timeout", type=float, default=60.0)
    args = parser.parse_args()
    module_name, _, attribute = args.app.partition(":")
    app = getattr(importlib.import_module(module_name), attribute)
    gobind.asgi.serve(app, host="127.0.0.1", port=args.port, uds=args.uds, lifespan=args.lifespan,
                      loop=args.loop, root_path=args.root_path, max_concurrency=args.max_concurrency,
                      write_timeout=args.write_timeout, shutdown_timeout=5.0)


if __name__ == "__main__":
    main()
