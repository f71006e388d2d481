"""gobind: Go's net/http as the HTTP engine of a Python process.

    import gobind

    app = gobind.Server()

    @app.route("GET /hello/{name}")
    def hello(w, req):
        w.headers["Content-Type"] = "text/plain"
        w.write(f"Hello, {req.path_params['name']}\\n")

    app.run(host="127.0.0.1", port=8000)
"""

from ._gobind import Headers, Request, ResponseWriter
from ._server import Server, default_server, route, run, shutdown

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
