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

namespace gobind::python {

/// start_response of one request, and the body rules of PEP 3333: headers
/// leave with the first non-empty chunk, a body longer than the app's
/// Content-Length is cut there, and 1xx, 204 and 304 responses get no body.
/// Used with the GIL held, from the request's handler thread.
struct WsgiResponse {
    py::object writer_object;
    PyResponseWriter* writer = nullptr;
    py::object defaults;  // tuple of (name, value) added when the app lacks them
    py::object status;    // str given to start_response, or None
    py::object headers;   // list given to start_response
    int code = 0;
    bool sent = false;
    bool body_allowed = true;
    std::int64_t remaining = -1;  // bytes left of the app's Content-Length, -1: none

    /// start_response(status, headers, exc_info=None); returns write.
    py::object start(py::object self, py::object status, py::object headers, py::object exc_info);
    /// Send the status and headers.
    void begin();
    /// Send one body chunk; flush sends it to the client at once.
    void send(py::handle chunk, bool flush);
    /// The write() callable.
    void write(py::handle data);
};

/// The native WSGI request handler: builds the environ, calls the app and
/// sends its response. Configured once per server, called for every request.
struct WsgiHandler {
    py::object app;
    py::dict base;                  // environ keys shared by every request
    std::string script_name;        // mount prefix, UTF-8
    py::object input_type;          // input_type(request, max_body_bytes) -> wsgi.input
    py::object too_large_type;      // exception type that wsgi.input raises past the limit
    py::object defaults;            // default response headers, tuple of pairs
    py::object disconnect_log;      // disconnect_log(method, target, message, outcome)
    py::object file_wrapper_type;   // wsgi.file_wrapper, whose files Go sends
    std::int64_t max_body_bytes = 0;  // 0: no limit

    void call(py::object writer, py::object request);

private:
    void send_body(WsgiResponse& response, py::handle result);
    bool send_file(WsgiResponse& response, py::handle result);
    void reject_large_body(PyResponseWriter& writer);
    void report_disconnect(PyResponseWriter& writer, PyRequest& request, const char* message, const char* outcome);
};

}  // namespace gobind::python
