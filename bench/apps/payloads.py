"""Response bodies shared by every benchmark application, so that all servers
send the same bytes. bench/gohello/main.go sends the same bodies."""

HELLO = b"helloworld"
BODY_10KB = b"x" * (10 * 1024)
BODY_1MB = b"x" * (1024 * 1024)

# Seconds that the /sleep and /slow handlers wait before they respond.
SLEEP_SECONDS = 0.010
SLOW_SECONDS = 0.100

# Size of the chunks that the /echo handlers read and write back.
ECHO_CHUNK = 64 * 1024


def user(user_id: int) -> dict:
    """Return the JSON document of GET /users/{id}."""
    return {
        "id": user_id,
        "name": f"user{user_id}",
        "email": f"user{user_id}@example.com",
        "tags": ["bench", "json"],
    }
