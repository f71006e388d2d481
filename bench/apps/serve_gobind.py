"""Serve a WSGI or ASGI application with gobind.wsgi.serve or gobind.asgi.serve,
for a gobind that has the adapter but not the gobind command.

    python -m apps.serve_gobind wsgi apps.wsgi_app:app --port 8000 --threads 1
"""

import argparse
import importlib
import inspect
import logging
import sys


def load(target: str):
    """Return the object named by module:attribute."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute or "app")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("interface", choices=["wsgi", "asgi"], help="application interface")
    parser.add_argument("app", help="application as module:attribute")
    parser.add_argument("--host", default="127.0.0.1", help="listen host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="listen port (default 8000)")
    parser.add_argument("--threads", type=int, default=1, help="WSGI only: requests running the app at once (default 1)")
    args = parser.parse_args()

    adapter = importlib.import_module(f"gobind.{args.interface}")
    # Access logs are off for every server in the benchmarks.
    logging.getLogger("gobind.access").setLevel(logging.WARNING)
    options = {"host": args.host, "port": args.port, "access_log": False}
    if args.interface == "wsgi":
        options["threads"] = args.threads
    accepted = inspect.signature(adapter.serve).parameters
    if not any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in accepted.values()):
        for name in [name for name in options if name not in accepted]:
            print(f"serve_gobind: gobind.{args.interface}.serve takes no {name}; using its default", file=sys.stderr)
            del options[name]
    adapter.serve(load(args.app), **options)


if __name__ == "__main__":
    main()
