// Internal: the Python-facing request, response writer and handler trampoline.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <string_view>

#include "gobind/server.hpp"

namespace gobind::python {

namespace py = pybind11;

/// The C++ object inside an instance of a class bound with pybind11, or
/// nullptr when pybind11 keeps it elsewhere (a Python subclass of several
/// bound classes) or has not constructed it yet. Unlike a cast, it checks
/// no type, so the caller must know that self is an instance of T's class.
template <typename T>
T* bound_value(PyObject* self) noexcept {
    auto* instance = reinterpret_cast<py::detail::instance*>(self);
    if (!instance->simple_layout || !instance->simple_holder_constructed) return nullptr;
    return static_cast<T*>(instance->simple_value_holder[0]);
}

/// Python view of a gobind::Request. It points at the request only while
/// the handler runs; afterwards every accessor raises RuntimeError.
struct PyRequest {
    gobind::Request* request = nullptr;
    py::object headers;      // Headers, built on first use
    py::object path_params;  // dict, built on first use
    py::object body;         // bytes once read whole
    std::int64_t body_read = 0;  // body bytes returned so far

    const gobind::Request& get() const;
    gobind::Request& get_mutable();
};

/// Python view of a gobind::ResponseWriter, valid while the handler runs.
/// Headers live in a Python-owned gobind::Header and are copied into the
/// writer right before the response header is sent, or moved there once the
/// handler has returned.
struct PyResponseWriter {
    gobind::ResponseWriter* writer = nullptr;
    py::object headers;               // Headers, built on first use
    gobind::Header* fields = nullptr;  // the C++ value inside headers

    gobind::ResponseWriter& get() const;
    /// Return the Headers object, creating it on first use.
    py::object& headers_object();
    /// Copy the Python-side header fields into the writer, unless sent.
    void sync_headers();
    /// Move the header fields into the writer once the handler has
    /// returned and nothing else refers to them; copy them otherwise.
    void hand_over_headers();
    /// Empty the header fields for the next request on this thread.
    void reset_headers();
    std::size_t write(py::handle data);
    void flush();
};

/// Read request body bytes, with the GIL released while Go waits for the
/// client. A negative size reads to the end; otherwise up to size bytes,
/// all of them unless the body ends first (fill) or whatever one read returns.
py::bytes read_request_body(PyRequest& request, Py_ssize_t size, bool fill = true);

/// Python callables shared by the handlers of one server.
struct Hooks {
    // on_error(exception, request, outcome) logs a handler exception. The
    // outcome is client_outcome() when the engine's read or write failed, else None.
    py::object on_error;
    py::object access_log;  // access_log(remote, method, target, protocol, status, size, seconds) or None
};

/// Whether error is the ConnectionError, TimeoutError or ValueError that
/// the engine raised because the client's connection failed or stalled or
/// its body's framing was invalid, as opposed to one of the app's own.
bool engine_client_error(py::error_already_set& error, const gobind::Request& request,
                         const gobind::ResponseWriter& writer);

/// Returns the client's part in an engine_client_error, for the log line:
/// "timed out", "sent an invalid body" or "went away".
const char* client_outcome(py::error_already_set& error);

/// A gobind::Handler that calls a Python function as function(writer, request).
Handler make_python_handler(py::object function, std::shared_ptr<Hooks> hooks);

/// A LogFunction that passes each line to a Python function.
LogFunction make_python_log(py::object function);

/// Wrap function(remote, method, target, protocol, status, size, seconds)
/// as the access function of the engine's own responses.
AccessFunction make_python_access_log(py::object function);

/// Header value conversion: str is encoded as latin-1 (any byte
/// round-trips), bytes pass unchanged.
std::string_view header_bytes(py::handle value, std::string& storage, const char* what);
py::str header_text(std::string_view value);

}  // namespace gobind::python
