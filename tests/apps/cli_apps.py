"""Objects the CLI tests point APP at."""

import gobind

value = 42


def make_app():
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"made by factory"]

    return app


async def asgi_app(scope, receive, send):
    pass


server = gobind.Server(access_log=False)


@server.route("GET /native")
def native(w, req):
    w.write(b"native handler")


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
