"""A server whose one handler, set with handle_all, gets every request."""

import gobind

app = gobind.Server()


def everything(w, req):
    w.write(f"{req.method} {req.url} {req.path} {req.raw_path} {req.path_params}")


app.handle_all(everything)

if __name__ == "__main__":
    app.run("127.0.0.1", 0)
