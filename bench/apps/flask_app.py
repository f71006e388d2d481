"""A small Flask application: JSON responses and a path parameter."""

from flask import Flask, jsonify

from .payloads import user

app = Flask(__name__)


@app.get("/users/<int:user_id>")
def get_user(user_id):
    return jsonify(user(user_id))
