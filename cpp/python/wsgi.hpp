// Internal: the native parts of the WSGI adapter (gobind.wsgi).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "objects.hpp"

namespace gobind::python {

/// Build the PEP 3333 environ of one request: a copy of `base` (the keys
/// that are the same for every request) plus the request's CGI keys and
/// HTTP_* headers. `script_name` is the mount prefix as UTF-8 bytes; a path
/// under it loses the prefix in PATH_INFO. Called with the GIL held.
py::dict wsgi_environ(PyRequest& request, py::dict base, const std::string& script_name);

/// Set the status code and the header fields of a WSGI response on the
/// writer, in one call. `headers` is the list given to start_response.
/// Returns the value of the app's Content-Length header, or -1 without one.
std::int64_t wsgi_start(PyResponseWriter& writer, int status, py::handle headers);

}  // namespace gobind::python
