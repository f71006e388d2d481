"""The gobind command: loading APP, options, environment variables, errors
and shutdown."""

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from cliserver import APPS, CLIServer, run_to_exit, start
from conftest import SIGINT_IGNORED, read_steadily


def last_error_line(result):
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["nosuch:app"], f"gobind: error: module 'nosuch' not found (--app-dir is '{APPS}')"),
        (["cli_apps:missing"], "gobind: error: attribute 'missing' not found in module 'cli_apps'"),
        (["cli_apps:value"],
         "gobind: error: 'cli_apps:value' is not a WSGI or ASGI application or gobind.Server: got int"),
        (["cli_apps:asgi_app", "--interface", "wsgi"],
         "gobind: error: --interface wsgi: 'cli_apps:asgi_app' is an ASGI application"),
        (["cli_apps:asgi_app", "--threads", "4"],
         "gobind: error: invalid --threads 4 for an ASGI app: it runs on one event loop thread"),
        (["cli_apps"], "gobind: error: invalid APP 'cli_apps': expected MODULE:ATTRIBUTE, such as myproject.wsgi:application"),
        (["cli_apps:hello", "--interface", "gobind"], "gobind: error: --interface gobind: 'cli_apps:hello' is a WSGI application"),
        (["cli_apps:server", "--interface", "wsgi"], "gobind: error: --interface wsgi: 'cli_apps:server' is a gobind.Server"),
        (["cli_apps:value", "--factory"], "gobind: error: --factory: 'cli_apps:value' is not callable: got int"),
        (["cli_apps:hello", "--factory"],
         "gobind: error: --factory: 'cli_apps:hello' cannot be called without arguments: missing a required argument: 'environ'"),
        (["cli_apps:hello", "--threads", "0"], "gobind: error: invalid --threads 0: must be 1 or more"),
        (["cli_apps:hello", "--header", "bad"], "gobind: error: invalid --header 'bad': expected NAME:VALUE, such as 'Server:gobind'"),
        (["cli_apps:hello", "--root-path", "api/"],
         "gobind: error: invalid --root-path 'api/': must start with '/' and not end with '/', such as /api"),
        (["cli_apps:asgi_hello", "--root-path", "api"],
         "gobind: error: invalid --root-path 'api': must start with '/' and not end with '/', such as /api"),
        (["cli_apps:hello", "--uds", "/sys/gobind-test.sock"],
         "gobind: error: cannot listen on unix:/sys/gobind-test.sock: operation not permitted"),
    ],
)
def test_cli_usage_error(args, message):
    result = run_to_exit(*args)
    assert last_error_line(result) == message
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_cli_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_to_exit("cli_apps:hello", "--port", str(port))
    assert last_error_line(result) == f"gobind: error: cannot listen on 127.0.0.1:{port}: address already in use"
    assert result.returncode == 1


def test_cli_uds_on_regular_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    result = run_to_exit("cli_apps:hello", "--uds", str(path))
    assert last_error_line(result) == f"gobind: error: cannot listen on unix:{path}: file exists and is not a socket"
    assert result.returncode == 1
    assert path.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind a socket in any directory")
def test_cli_uds_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run_to_exit("cli_apps:hello", "--uds", str(locked / "app.sock"))
    assert last_error_line(result) == f"gobind: error: cannot listen on unix:{locked}/app.sock: permission denied"
    assert result.returncode == 1


def test_cli_env_invalid_number():
    result = run_to_exit("cli_apps:hello", env={"GOBIND_PORT": "abc"})
    assert last_error_line(result) == "gobind: error: invalid GOBIND_PORT 'abc': expected an integer"
    assert result.returncode == 1


def test_cli_env_invalid_bool():
    result = run_to_exit("cli_apps:hello", env={"GOBIND_ACCESS_LOG": "maybe"})
    assert last_error_line(result) == "gobind: error: invalid GOBIND_ACCESS_LOG 'maybe': expected true or false"


def test_cli_env_invalid_choice():
    result = run_to_exit("cli_apps:hello", env={"GOBIND_LOG_LEVEL": "loud"})
    assert last_error_line(result) == (
        "gobind: error: invalid GOBIND_LOG_LEVEL 'loud': expected one of critical, error, warning, info, debug"
    )


def test_cli_missing_app():
    result = run_to_exit()
    assert last_error_line(result) == "gobind: error: the following arguments are required: APP (or GOBIND_APP)"
    assert result.returncode == 2


def test_cli_version():
    from gobind import __version__

    result = run_to_exit("--version")
    assert f"gobind {__version__} (Python " in result.stdout
    assert result.returncode == 0


def test_cli_help_states_defaults():
    result = run_to_exit("--help")
    text = " ".join(result.stdout.split())
    assert "in seconds; 0 selects the default (default: 75.0)" in text
    assert "in bytes; larger requests get 431 (default: 65536)" in text


def test_cli_startup_log_pid_and_url():
    server = start("cli_apps:hello")
    try:
        assert server.pid == server.process.pid
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.stop()


def test_cli_sigterm_graceful():
    server = start("cli_apps:hello")
    assert httpx.get(server.url).text == "hello"
    code = server.stop(signal.SIGTERM)
    assert code == 0
    assert "Stopped" in server.output


def test_cli_sigint_graceful():
    server = start("cli_apps:hello")
    code = server.stop(signal.SIGINT)
    assert code == 0
    assert "Shutting down: 0 requests in flight" in server.output


@pytest.mark.parametrize(
    "args",
    [["worker_apps:wsgi_pid", "--timeout-graceful-shutdown", "1"], ["worker_apps:server_slow"]],
    ids=["wsgi", "server"],
)
def test_cli_exits_when_handler_outlasts_shutdown(args):
    # Without a bound, freeing the server would wait for the handler, and
    # no signal could end that wait.
    server = start(*args)
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET /slow?120 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.5)  # the handler now sleeps
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(30) == 1
        assert time.monotonic() - started < 20
        assert "Exiting without waiting for 1 handler call and 0 threads still running" in server.output
    finally:
        server.stop()


@pytest.mark.parametrize("app", ["cli_apps:hello", "cli_apps:asgi_hello"], ids=["wsgi", "asgi"])
def test_cli_sigint_inherited_ignored(app):
    # As started in the background by a non-interactive shell.
    with CLIServer([app, "--port", "0"], launcher=SIGINT_IGNORED) as server:
        server.wait_ready()
        assert httpx.get(server.url).status_code == 200
        assert server.stop(signal.SIGINT) == 0
        assert "Shutting down" in server.output


@pytest.mark.parametrize("launcher", [(), SIGINT_IGNORED], ids=["sigint", "sigint-inherited-ignored"])
def test_cli_sigint_during_import(launcher):
    # The app takes 30 s to import. Leaving the block stops a process that
    # the SIGINT did not end.
    args = ["worker_startup:slow_app", "--port", "0"]
    with CLIServer(args, env={"GOBIND_TEST_IMPORT_SECONDS": "30"}, launcher=launcher) as server:
        assert server.wait_output("importing worker_startup")
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=10) == 130
        assert server.wait_output("INFO gobind: Interrupted while loading worker_startup:slow_app")
        assert "Traceback" not in server.output


@pytest.mark.parametrize("app", ["cli_apps:hello", "cli_apps:asgi_hello"], ids=["wsgi", "asgi"])
def test_cli_access_log_head_sends_no_body(app):
    with start(app) as server:
        assert httpx.head(server.url).status_code == 200
        assert server.wait_output('"HEAD / HTTP/1.1" 200 0 ')


def test_cli_interface_asgi_forced():
    server = start("cli_apps:asgi_wrapped", "--interface", "asgi")
    try:
        assert httpx.get(server.url + "/x?y=1").text == "asgi GET /x y=1"
    finally:
        server.stop()


def test_cli_factory():
    server = start("cli_apps:make_app", "--factory")
    try:
        assert httpx.get(server.url).text == "made by factory"
    finally:
        server.stop()


def test_cli_gobind_interface():
    server = start("cli_apps:server")
    try:
        assert httpx.get(server.url + "/native").text == "native handler"
    finally:
        server.stop()


def test_cli_app_dir(tmp_path):
    (tmp_path / "elsewhere.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from app dir']\n"
    )
    server = start("elsewhere:app", "--app-dir", str(tmp_path))
    try:
        assert httpx.get(server.url).text == "from app dir"
    finally:
        server.stop()


def test_cli_env_options():
    server = start("wsgi_apps:app", env={"GOBIND_ROOT_PATH": "/env", "GOBIND_HEADER": "X-One: 1\nX-Two: 2",
                                         "GOBIND_ACCESS_LOG": "false"})
    try:
        response = httpx.get(server.url + "/env/x")
        environ = response.json()
        assert environ["SCRIPT_NAME"] == "/env"
        assert (response.headers["x-one"], response.headers["x-two"]) == ("1", "2")
    finally:
        server.stop()
    assert "gobind.access" not in server.output


def test_cli_option_beats_env():
    server = start("wsgi_apps:app", "--root-path", "/option", env={"GOBIND_ROOT_PATH": "/env"})
    try:
        assert httpx.get(server.url + "/option/x").json()["SCRIPT_NAME"] == "/option"
    finally:
        server.stop()


def test_cli_env_app():
    server = start(env={"GOBIND_APP": "cli_apps:hello"})
    try:
        assert httpx.get(server.url).text == "hello"
    finally:
        server.stop()


def test_cli_log_config_json(tmp_path):
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "CUSTOM %(name)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "loggers": {"gobind": {"handlers": ["out"], "level": "INFO"}},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    server = start("cli_apps:hello", "--log-config", str(path))
    server.stop()
    assert "CUSTOM gobind Serving on http://127.0.0.1:" in server.output


def write_ini_config(tmp_path, gobind_level):
    """Write a fileConfig file whose gobind logger has gobind_level and
    prints "INI name message" lines; return its path."""
    path = tmp_path / "logging.ini"
    path.write_text(
        "[loggers]\nkeys=root,gobind\n\n"
        "[handlers]\nkeys=err\n\n"
        "[formatters]\nkeys=plain\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        f"[logger_gobind]\nlevel={gobind_level}\nhandlers=err\nqualname=gobind\npropagate=0\n\n"
        "[handler_err]\nclass=StreamHandler\nformatter=plain\nargs=(sys.stderr,)\n\n"
        "[formatter_plain]\nformat=INI %(name)s %(message)s\n"
    )
    return path


def test_cli_log_config_ini(tmp_path):
    path = write_ini_config(tmp_path, "INFO")
    server = start("cli_apps:hello", "--log-config", str(path))
    server.stop()
    assert "INI gobind Serving on http://127.0.0.1:" in server.output


def test_cli_log_config_json_root_only(tmp_path):
    # A config of the root logger alone keeps gobind's loggers enabled.
    config = {
        "version": 1,
        "formatters": {"plain": {"format": "ROOT %(name)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["out"], "level": "INFO"},
    }
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(config))
    server = start("cli_apps:hello", "--log-config", str(path))
    try:
        assert httpx.get(server.url).text == "hello"
    finally:
        server.stop()
    assert "ROOT gobind Serving on http://127.0.0.1:" in server.output
    assert 'ROOT gobind.access 127.0.0.1:' in server.output


@pytest.mark.parametrize("extra, shown", [([], False), (["--log-level", "info"], True)])
def test_cli_log_config_level(tmp_path, extra, shown):
    # The file's level applies unless --log-level is given.
    path = write_ini_config(tmp_path, "WARNING")
    server = CLIServer(["cli_apps:hello", "--uds", str(tmp_path / "s.sock"), "--log-config", str(path), *extra])
    try:
        for _ in range(100):
            if (tmp_path / "s.sock").exists():
                break
            time.sleep(0.1)
        client = httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp_path / "s.sock")))
        assert client.get("http://localhost/").text == "hello"
    finally:
        server.stop()
    assert ("INI gobind Serving on unix:" in server.output) is shown


def test_cli_log_config_invalid_class(tmp_path):
    path = tmp_path / "logging.ini"
    path.write_text(
        "[loggers]\nkeys=root\n\n[handlers]\nkeys=err\n\n[formatters]\nkeys=\n\n"
        "[logger_root]\nlevel=INFO\nhandlers=err\n\n"
        "[handler_err]\nclass=NoSuchHandler\nargs=()\n"
    )
    result = run_to_exit("cli_apps:hello", "--log-config", str(path))
    assert last_error_line(result).startswith(f"gobind: error: cannot load log config '{path}': ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "name, text, reason",
    [
        ("logging.json", '{"version": 1, "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "plain"}}}',
         "Unable to configure handler 'h': Unable to set formatter 'plain'"),
        ("logging.json", '{"version": 1, "root": {"handlers": ["console"]}}',
         "Unable to configure root logger: Unable to add handler 'console'"),
        ("logging.ini", "[loggers]\nkeys=root\n", "missing 'formatters'"),
        ("logging.json", "[1, 2]", "the file contains a JSON array, not an object for dictConfig"),
    ],
)
def test_cli_log_config_error_names_cause(tmp_path, name, text, reason):
    path = tmp_path / name
    path.write_text(text)
    result = run_to_exit("cli_apps:hello", "--log-config", str(path))
    assert last_error_line(result) == f"gobind: error: cannot load log config '{path}': {reason}"


LINGERING_APPS = ["cli_apps:wsgi_lingering", "cli_apps:asgi_lingering"]


def stop_twice(app, threads, second_signal, after=None):
    """Start app, let it leave threads non-daemon threads running, send
    SIGTERM, then second_signal once the output contains after (at once when
    after is None). Return the exit status and the output."""
    server = start(app, "--no-access-log")
    try:
        for _ in range(threads):
            assert httpx.get(server.url + "/", timeout=10).text == "started"
        server.process.send_signal(signal.SIGTERM)
        if after is not None:
            assert server.wait_output(after, 30), server.output
        server.process.send_signal(second_signal)
        status = server.process.wait(30)
    finally:
        server.stop()
    return status, server.output


@pytest.mark.parametrize("app", LINGERING_APPS)
def test_cli_signal_ends_wait_for_app_threads(app):
    waiting = "Waiting for 1 thread of the application to end (lingering); SIGINT or SIGTERM ends the process now"
    status, output = stop_twice(app, 1, signal.SIGTERM, after=waiting)
    assert status == 1
    assert "Exiting without waiting for 1 thread" in output


@pytest.mark.parametrize("app", LINGERING_APPS)
def test_cli_signal_right_after_stop_ends_wait(app):
    # The second signal comes as soon as the server stopped, before the
    # wait for the 20 leftover threads logged anything. The shutdown thread
    # may still be ending, and then it is a second interrupt during the stop.
    status, output = stop_twice(app, 20, signal.SIGTERM, after="INFO gobind: Stopped")
    assert status == 1
    assert re.search(r"Exiting without waiting for (0 handler calls and )?20 threads", output), output


def test_cli_signal_during_calls_wait():
    # The second signal comes while the stopped server waits up to 5 s for a
    # handler call that outlasted the shutdown timeout. It ends the wait at
    # once, before the call would have returned.
    server = start("cli_apps:wsgi_slow_lingering", "--no-access-log", "--timeout-graceful-shutdown", "1")
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.5)  # the handler now sleeps
            server.process.send_signal(signal.SIGTERM)
            assert server.wait_output("INFO gobind: Waiting up to 5 s for 1 handler call", 30), server.output
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(30) == 1
    finally:
        server.stop()
    assert "Exiting without waiting for 1 handler call and 1 thread still running" in server.output


@pytest.mark.parametrize("app", LINGERING_APPS)
def test_cli_two_signals_at_once_force_exit(app):
    # SIGTERM then SIGINT back to back, while the app has a leftover thread.
    status, output = stop_twice(app, 1, signal.SIGINT)
    assert status == 1
    assert "Traceback" not in output


def test_wsgi_serve_function():
    code = (
        "import gobind.wsgi, cli_apps; "
        "gobind.wsgi.serve(cli_apps.hello, host='127.0.0.1', port=0, threads=2, root_path='/m')"
    )
    server = CLIServer([], command=("-c", code)).wait_ready()
    try:
        assert httpx.get(server.url + "/m/x").text == "hello"
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0


def test_cli_log_config_missing():
    result = run_to_exit("cli_apps:hello", "--log-config", "/nonexistent/logging.json")
    assert last_error_line(result) == (
        "gobind: error: cannot load log config '/nonexistent/logging.json': "
        "[Errno 2] No such file or directory: '/nonexistent/logging.json'"
    )


def test_cli_log_level_warning_hides_startup(tmp_path):
    path = tmp_path / "quiet.sock"
    server = CLIServer(["cli_apps:hello", "--uds", str(path), "--log-level", "warning"])
    try:
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            assert client.get("http://localhost/").text == "hello"
    finally:
        code = server.stop(signal.SIGTERM)
    assert "Serving on" not in server.output
    assert code == 0


def test_cli_uds(tmp_path):
    path = tmp_path / "app.sock"
    server = CLIServer(["wsgi_apps:app", "--uds", str(path)]).wait_ready()
    try:
        transport = httpx.HTTPTransport(uds=str(path))
        with httpx.Client(transport=transport) as client:
            environ = client.get("http://localhost/x").json()
        assert server.url == f"unix:{path}"
        assert (environ["SERVER_NAME"], environ["SERVER_PORT"], environ["PATH_INFO"]) == ("localhost", "80", "/x")
        assert environ["REMOTE_ADDR"] == ""
        assert "REMOTE_PORT" not in environ
    finally:
        server.stop()


def test_cli_console_script():
    script = os.path.join(os.path.dirname(sys.executable), "gobind")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert "gobind " in result.stdout


def test_cli_serves_asgi_app():
    with start("cli_apps:asgi_hello", "--lifespan", "off") as server:
        response = httpx.get(server.url + "/items/7?x=1")
    assert response.status_code == 200
    assert response.text == "asgi GET /items/7 x=1"


def test_cli_asgi_failed_startup_exits_3():
    result = run_to_exit("failing_lifespan:app", "--port", "0", "--lifespan", "on")
    assert result.returncode == 3
    assert "Application startup failed. Exiting." in result.stderr


@pytest.mark.parametrize(
    "args, env, flags",
    [
        (["--timeout-read", "60", "--threads=1"], {}, "--threads, --timeout-read"),
        (["--access-log"], {}, "--access-log"),
        ([], {"GOBIND_TIMEOUT_WRITE": "60"}, "GOBIND_TIMEOUT_WRITE"),
    ],
)
def test_cli_default_settings_of_server_app_rejected(args, env, flags):
    # A value equal to the default is still a setting the app does not get.
    result = run_to_exit("cli_apps:server", *args, "--port", "0", env=env)
    assert last_error_line(result) == (
        f"gobind: error: {flags}: not applied to a gobind.Server app; pass the setting to gobind.Server() in the app"
    )
    assert result.returncode == 1


def test_cli_settings_of_server_app_rejected():
    result = run_to_exit("cli_apps:server", "--threads", "4", "--no-access-log", "--port", "0")
    assert last_error_line(result) == (
        "gobind: error: --threads, --no-access-log: not applied to a gobind.Server app; "
        "pass the setting to gobind.Server() in the app"
    )
    assert result.returncode == 1


@pytest.mark.parametrize(
    "option, message",
    [
        ("--timeout-keep-alive=-1", "invalid --timeout-keep-alive -1.0: must be 0 or more seconds"),
        ("--timeout-read=nan", "invalid --timeout-read nan: must be 0 or more seconds"),
        ("--timeout-write=-2", "invalid --timeout-write -2.0: must be 0 or more seconds"),
        ("--timeout-read-header=-3", "invalid --timeout-read-header -3.0: must be 0 or more seconds"),
        ("--limit-request-fields=9223372036854775808", "invalid --limit-request-fields 9223372036854775808: must be at most 2**62"),
    ],
)
def test_cli_errors_name_flags(option, message):
    result = run_to_exit("cli_apps:hello", option, "--port", "0")
    assert last_error_line(result) == f"gobind: error: {message}"
    assert result.returncode == 1


def connect(server):
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


@pytest.mark.parametrize("app", ["cli_apps:echo", "cli_apps:asgi_echo"])
@pytest.mark.parametrize("write_timeout", ["60", "0.5"])
def test_cli_timeout_read(app, write_timeout):
    # The default of 60 s would outlast the socket's 10 s timeout. A write
    # timeout no longer than the read timeout must not lose the 408.
    with start(app, "--timeout-read", "0.5", "--timeout-write", write_timeout) as server, connect(server) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n1234")
        assert client.recv(4096).startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("app", ["cli_apps:echo", "cli_apps:asgi_echo"])
def test_cli_timeout_read_each_read(app):
    # A body that arrives in pieces, each within the read timeout, is read
    # whole, however long it takes in all.
    with start(app, "--timeout-read", "1") as server, connect(server) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")
        for byte in b"abcde":
            time.sleep(0.5)
            client.sendall(bytes([byte]))
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nabcde")


def test_cli_timeout_read_header():
    with start("cli_apps:hello", "--timeout-read-header", "0.5") as server, connect(server) as client:
        client.settimeout(5)  # half the default of 10 s
        client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
        assert client.recv(4096) == b""


def test_cli_timeout_write():
    with start("cli_apps:large", "--timeout-write", "0.5") as server, connect(server) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(2)  # not reading: the server's write waits past its timeout
        received = 0
        try:
            while chunk := client.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert 0 < received < 32 << 20
        # A client that stalls is routine: one line, no traceback.
        assert server.wait_output("INFO gobind: Client timed out during GET /: ")
        assert "Traceback" not in server.output


def test_cli_timeout_write_spares_steady_file_reader(tmp_path):
    # A 16 MB file sent by pathsend to a client that reads about 3 MB/s
    # takes longer than the 2 s write timeout, which bounds a stall only.
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * 16_000_000)
    env = {"GOBIND_TEST_FILE": str(path)}
    with start("cli_apps:asgi_pathsend", "--timeout-write", "2", "--lifespan", "off", env=env) as server:
        with connect(server) as client:
            received = read_steadily(client, b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert len(body) == 16_000_000
        assert "timeout" not in server.output


@pytest.mark.parametrize(
    "body, status",
    [
        (b"Content-Length: 10\r\n\r\n0123456789", b"200 OK"),
        (b"Content-Length: 11\r\n\r\n0123456789a", b"413 Request Entity Too Large"),
        (b"Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", b"200 OK"),
        (b"Transfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n56789a\r\n0\r\n\r\n", b"413 Request Entity Too Large"),
    ],
)
def test_cli_asgi_body_limit(body, status):
    with start("cli_apps:asgi_echo", "--limit-request-body-bytes", "10", "--lifespan", "off") as server:
        with connect(server) as client:
            client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n" + body)
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 " + status + b"\r\n")
        if status == b"200 OK":
            assert reply.endswith(b"\r\n\r\n0123456789")
        else:
            assert reply.endswith(b"\r\n\r\nrequest body exceeds the limit of 10 bytes\n")
            assert server.wait_output('"POST / HTTP/1.1" 413 43 ')


def test_cli_asgi_body_limit_invalid():
    result = run_to_exit("cli_apps:asgi_hello", "--limit-request-body-bytes", "-1", "--port", "0")
    assert last_error_line(result) == "gobind: error: invalid --limit-request-body-bytes -1: must be 0 or more"
    assert result.returncode == 1


def test_cli_wsgi_disconnect_logged_in_one_line():
    with start("cli_apps:echo") as server:
        with connect(server) as client:
            client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789")
        assert server.wait_output("INFO gobind: Client went away during POST /: ConnectionError: ")
        line = next(line for line in server.lines if "Client went away" in line)
        following = server.lines[server.lines.index(line) + 1:]
    assert line.endswith("\n")
    assert not any(text.strip() == "At:" for text in following)
    # The body ended early: the server responds 400, which reaches the
    # client when it only closed its sending side, and logs it.
    assert server.wait_output('"POST / HTTP/1.1" 400 ')


def test_cli_wsgi_invalid_body_logged_in_one_line():
    # Invalid chunked framing is the client's doing: 400 and one INFO line,
    # no traceback.
    with start("cli_apps:echo") as server:
        with connect(server) as client:
            client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        assert server.wait_output("INFO gobind: Client sent an invalid body during POST /: ValueError: ")
        assert server.wait_output('"POST / HTTP/1.1" 400 ')
        output = server.output
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert "Traceback" not in output
    assert "ERROR" not in output


@pytest.mark.parametrize("app", ["cli_apps:hello", "cli_apps:asgi_hello"])
@pytest.mark.parametrize("length", [1000, 1000000])
def test_cli_expect_continue_left_to_app(app, length):
    # The app responds without reading the body, so the client never gets
    # 100 Continue and never has to send its body.
    with start(app) as server, connect(server) as client:
        client.sendall(
            b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % length
        )
        # The server closes the connection after the response, well before
        # the socket's 10 s timeout, instead of waiting for the body.
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close\r\n" in reply


@pytest.mark.parametrize("app", ["cli_apps:echo", "cli_apps:asgi_echo"])
def test_cli_expect_continue_sent_on_read(app):
    with start(app) as server, connect(server) as client:
        client.sendall(b"POST / HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert client.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(b"abcde")
        reply = client.recv(65536)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nabcde")


@pytest.mark.parametrize("app", ["cli_apps:hello", "cli_apps:server"])
def test_cli_asgi_options_rejected(app):
    result = run_to_exit(app, "--lifespan", "on", "--port", "0", env={"GOBIND_LOOP": "asyncio"})
    assert last_error_line(result) == "gobind: error: --lifespan, GOBIND_LOOP: for ASGI apps only"
    assert result.returncode == 1


def test_cli_limit_concurrency_bounds_asgi_app():
    with start("cli_apps:asgi_counted", "--limit-concurrency", "2") as server:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda _: httpx.get(server.url + "/", timeout=30), range(6)))
    assert [response.status_code for response in responses] == [200] * 6
    assert max(int(response.text) for response in responses) == 2


def test_cli_limit_concurrency_asgi_only():
    result = run_to_exit("cli_apps:hello", "--limit-concurrency", "2", "--port", "0")
    assert last_error_line(result) == "gobind: error: --limit-concurrency: for ASGI apps only"
    assert result.returncode == 1


def test_cli_limit_concurrency_negative():
    result = run_to_exit("cli_apps:asgi_hello", "--limit-concurrency", "-1", "--port", "0")
    assert last_error_line(result) == "gobind: error: invalid --limit-concurrency -1: must be 0 or more"
    assert result.returncode == 1


def test_cli_empty_variable_not_a_setting():
    # Deploy tools often export empty variables.
    with start("cli_apps:server", env={"GOBIND_ROOT_PATH": "", "GOBIND_THREADS": ""}) as server:
        assert httpx.get(server.url + "/native").text == "native handler"


def test_cli_empty_variables_ignored():
    env = {"GOBIND_THREADS": "", "GOBIND_ACCESS_LOG": "", "GOBIND_LOG_LEVEL": "", "GOBIND_HOST": ""}
    with start("cli_apps:hello", env=env) as server:
        assert httpx.get(server.url + "/").text == "hello"
        assert server.wait_output('"GET / HTTP/1.1" 200 5 ')


def test_cli_adapter_settings_of_server_app_rejected():
    result = run_to_exit("cli_apps:server", "--root-path", "/api", "--port", "0")
    assert last_error_line(result) == "gobind: error: --root-path: for WSGI and ASGI apps only, not for a gobind.Server app"
    assert result.returncode == 1
