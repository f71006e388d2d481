"""A first gobind server: python examples/hello.py, then
curl http://127.0.0.1:8000/hello/world"""

import gobind

app = gobind.Server()


@app.route("GET /hello/{name}")
def hello(w, req):
    w.headers["Content-Type"] = "text/plain"
    w.write(f"Hello, {req.path_params['name']}\n")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=8000)
