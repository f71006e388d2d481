"""gobind: Go's net/http as the HTTP engine of a Python process.

    import gobind

    app = gobind.Server()

    @app.route("GET /hello/{name}")
    def hello(w, req):
        w.headers["Content-Type"] = "text/plain"
        w.write(f"Hello, {req.path_params['name']}\\n")

    app.run(host="127.0.0.1", port=8000)
"""

from . import _server
from ._gobind import Headers, Request, ResponseWriter
from ._server import Server, route, run, shutdown

__version__ = "0.1.0"

__all__ = [
    "Headers",
    "Request",
    "ResponseWriter",
    "Server",
    "default_server",
    "route",
    "run",
    "shutdown",
]


def __getattr__(name: str) -> object:
    # default_server is created by the first gobind.route or gobind.run, so
    # it is read from _server each time instead of bound here at import.
    if name == "default_server":
        return _server.default_server
    raise AttributeError(f"module 'gobind' has no attribute {name!r}")
