"""A Flask app for the WSGI adapter tests."""

import hashlib
import time

from flask import Flask, Response, abort, jsonify, make_response, redirect, request, stream_with_context, url_for

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask"


@app.get("/stream")
def stream():
    def chunks():
        for number in range(3):
            yield f"chunk {number}\n"
            time.sleep(0.05)

    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.post("/upload")
def upload():
    files = {
        name: {"filename": storage.filename, "sha256": hashlib.sha256(storage.read()).hexdigest()}
        for name, storage in request.files.items()
    }
    return jsonify(files=files, form=request.form.to_dict())


@app.post("/data")
def data():
    return f"{len(request.get_data())} bytes"


@app.post("/json")
def echo_json():
    return jsonify(received=request.get_json())


@app.get("/cookie/set")
def set_cookie():
    response = make_response("cookie set")
    response.set_cookie("flavor", "oatmeal", httponly=True)
    return response


@app.get("/cookie/get")
def get_cookie():
    return request.cookies.get("flavor", "none")


@app.get("/redirect")
def to_index():
    return redirect(url_for("index"))


@app.get("/error")
def error():
    raise RuntimeError("deliberate failure in a Flask view")


@app.get("/missing")
def missing():
    abort(404)


@app.get("/url")
def url():
    return jsonify(url=request.url, path=request.path, script_root=request.script_root, remote=request.remote_addr)
