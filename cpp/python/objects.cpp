#include "objects.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "gil.hpp"

namespace gobind::python {
namespace {

constexpr std::size_t chunk_size = 64 * 1024;

py::str latin1(std::string_view text) {
    return py::reinterpret_steal<py::str>(
        PyUnicode_DecodeLatin1(text.data(), static_cast<Py_ssize_t>(text.size()), nullptr));
}

// Decoded paths and path parameters are UTF-8 in practice; undecodable bytes
// survive as surrogates, as os.fsdecode does.
py::str utf8(std::string_view text) {
    PyObject* decoded =
        PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "surrogateescape");
    if (decoded == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(decoded);
}

// Size of the first allocation of a read. A larger read grows it as data
// arrives, so that a Content-Length the client chose costs no memory
// before its body.
constexpr std::size_t initial_read_size = 1 << 20;

// Read up to `size` bytes (all of them when `fill`, else one read) into a
// new bytes object, with the GIL released while Go reads.
py::bytes read_bytes(gobind::Request& request, std::size_t size, bool fill) {
    std::size_t capacity = std::min(size, initial_read_size);
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(capacity));
    if (raw == nullptr) throw py::error_already_set();
    std::size_t filled = 0;
    bool ended = false;
    for (;;) {
        char* buffer = PyBytes_AS_STRING(raw);
        try {
            py::gil_scoped_release release;
            do {
                std::size_t n = request.read(buffer + filled, capacity - filled);
                if (n == 0) {
                    ended = true;
                    break;
                }
                filled += n;
            } while (fill && filled < capacity);
        } catch (...) {
            Py_DECREF(raw);
            throw;
        }
        if (ended || !fill || filled == size) break;
        // The buffer is full and more is wanted: grow it, with the GIL held.
        capacity = capacity > size / 2 ? size : capacity * 2;
        if (_PyBytes_Resize(&raw, static_cast<Py_ssize_t>(capacity)) != 0) throw py::error_already_set();
    }
    if (filled != capacity && _PyBytes_Resize(&raw, static_cast<Py_ssize_t>(filled)) != 0) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::bytes>(raw);
}

// View of str (UTF-8) or any contiguous buffer; `keep` owns what the view
// points into.
std::string_view body_view(py::handle data, py::object& keep) {
    if (PyBytes_Check(data.ptr())) {
        return {PyBytes_AS_STRING(data.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(data.ptr()))};
    }
    if (PyUnicode_Check(data.ptr())) {
        Py_ssize_t size = 0;
        const char* text = PyUnicode_AsUTF8AndSize(data.ptr(), &size);
        if (text == nullptr) throw py::error_already_set();
        return {text, static_cast<std::size_t>(size)};
    }
    if (!PyObject_CheckBuffer(data.ptr())) {
        throw py::type_error(std::string("write() expects bytes, bytearray, memoryview or str, not ") +
                             Py_TYPE(data.ptr())->tp_name);
    }
    // A bytes copy keeps the data stable while the GIL is released.
    keep = py::reinterpret_steal<py::object>(PyBytes_FromObject(data.ptr()));
    if (!keep) throw py::error_already_set();
    return {PyBytes_AS_STRING(keep.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(keep.ptr()))};
}

}  // namespace

namespace {

py::bytes read_body_bytes(PyRequest& r, Py_ssize_t size, bool fill) {
    auto& request = r.get_mutable();
    if (size >= 0) return read_bytes(request, static_cast<std::size_t>(size), fill);

    // With a Content-Length, the rest of the body is its remainder after
    // earlier reads.
    auto length = request.content_length();
    if (length >= 0) {
        auto remaining = length - r.body_read;
        py::bytes body = read_bytes(request, static_cast<std::size_t>(remaining), true);
        if (static_cast<std::int64_t>(PyBytes_GET_SIZE(body.ptr())) < remaining) {
            throw py::value_error("request body ended after " +
                                  std::to_string(r.body_read + PyBytes_GET_SIZE(body.ptr())) + " of " +
                                  std::to_string(length) + " bytes");
        }
        return body;
    }
    std::string body;
    {
        py::gil_scoped_release release;
        body = request.read_all();
    }
    return py::bytes(body);
}

}  // namespace

py::bytes read_request_body(PyRequest& r, Py_ssize_t size, bool fill) {
    py::bytes body = read_body_bytes(r, size, fill);
    r.body_read += PyBytes_GET_SIZE(body.ptr());
    return body;
}

std::string_view header_bytes(py::handle value, std::string& storage, const char* what) {
    if (PyBytes_Check(value.ptr())) {
        return {PyBytes_AS_STRING(value.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(value.ptr()))};
    }
    if (!PyUnicode_Check(value.ptr())) {
        throw py::type_error(std::string("header ") + what + " must be str or bytes, not " +
                             Py_TYPE(value.ptr())->tp_name);
    }
    if (PyUnicode_IS_ASCII(value.ptr())) {
        Py_ssize_t size = 0;
        const char* text = PyUnicode_AsUTF8AndSize(value.ptr(), &size);
        return {text, static_cast<std::size_t>(size)};
    }
    PyObject* encoded = PyUnicode_AsLatin1String(value.ptr());
    if (encoded == nullptr) {
        PyErr_Clear();
        throw py::value_error(std::string("header ") + what + " " +
                              py::repr(value).cast<std::string>() +
                              " is not latin-1 text; pass bytes instead, for example value.encode()");
    }
    storage.assign(PyBytes_AS_STRING(encoded), static_cast<std::size_t>(PyBytes_GET_SIZE(encoded)));
    Py_DECREF(encoded);
    return storage;
}

py::str header_text(std::string_view value) { return latin1(value); }

const gobind::Request& PyRequest::get() const {
    if (request == nullptr) {
        throw std::logic_error("request is no longer valid: its handler has returned");
    }
    return *request;
}

gobind::Request& PyRequest::get_mutable() {
    get();
    return *request;
}

gobind::ResponseWriter& PyResponseWriter::get() const {
    if (writer == nullptr) {
        throw std::logic_error("response writer is no longer valid: its handler has returned");
    }
    return *writer;
}

py::object& PyResponseWriter::headers_object() {
    if (!headers) {
        headers = py::cast(gobind::Header{});
        fields = &headers.cast<gobind::Header&>();
    }
    return headers;
}

void PyResponseWriter::sync_headers() {
    auto& w = get();
    if (!w.header_sent() && fields != nullptr) {
        if (!fields->empty() || !w.header().empty()) w.header() = *fields;
    }
}

void PyResponseWriter::hand_over_headers() {
    auto& w = get();
    if (w.header_sent() || fields == nullptr) return;
    if (Py_REFCNT(headers.ptr()) == 1) {
        // The fields are cleared for the next request anyway.
        w.header().swap(*fields);
    } else {
        sync_headers();
    }
}

void PyResponseWriter::reset_headers() {
    // An empty Headers object left for the next call saves an allocation.
    if (headers && Py_REFCNT(headers.ptr()) == 1) {
        fields->clear();
    } else {
        headers = py::object();
        fields = nullptr;
    }
}

std::size_t PyResponseWriter::write(py::handle data) {
    auto& w = get();
    py::object keep;
    std::string_view view = body_view(data, keep);
    if (w.buffers(view.size())) {
        return w.write(view);
    }
    sync_headers();
    py::gil_scoped_release release;
    return w.write(view);
}

void PyResponseWriter::flush() {
    auto& w = get();
    sync_headers();
    py::gil_scoped_release release;
    w.flush();
}

namespace {

// The request and writer objects of the last call on this OS thread. A call
// reuses them when nothing else holds a reference, which saves two object
// allocations per request. They are plain pointers: thread exit must not
// touch Python, so they are never released.
struct ThreadObjects {
    PyObject* request = nullptr;
    PyObject* writer = nullptr;
};
thread_local ThreadObjects thread_objects;

template <typename T>
T* reuse_or_create(PyObject*& slot) {
    if (slot != nullptr && Py_REFCNT(slot) == 1) {
        // This function created the instance in the slot, so its class is
        // known and a cast's type lookup can be skipped.
        return bound_value<T>(slot);
    }
    Py_XDECREF(slot);
    auto* created = new T{};
    slot = py::cast(created, py::return_value_policy::take_ownership).release().ptr();
    return created;
}

void report_error(const Hooks& hooks, py::error_already_set& error, py::handle request, const char* outcome) {
    // The exception object carries no traceback until it is attached.
    if (error.trace() && !error.trace().is_none()) {
        PyException_SetTraceback(error.value().ptr(), error.trace().ptr());
    }
    try {
        hooks.on_error(error.value(), request, outcome ? py::object(py::str(outcome)) : py::object(py::none()));
    } catch (py::error_already_set& log_error) {
        log_error.discard_as_unraisable("gobind: logging a handler exception");
    }
}

void write_access_log(const Hooks& hooks, const gobind::Request& request,
                      const gobind::ResponseWriter& writer, double seconds) {
    // net/http drops the body of a response to HEAD: none of it is sent.
    std::uint64_t size = request.method() == "HEAD" ? 0 : writer.bytes_written();
    try {
        hooks.access_log(latin1(request.remote_addr()), latin1(request.method()),
                         latin1(request.target()), latin1(request.protocol()), writer.status(),
                         size, seconds);
    } catch (py::error_already_set& log_error) {
        log_error.discard_as_unraisable("gobind: writing the access log");
    } catch (const std::exception& error) {
        // Such as a pybind11 cast error when memory runs out: the request
        // must still end normally.
        PyErr_SetString(PyExc_RuntimeError, error.what());
        PyErr_WriteUnraisable(nullptr);
    }
}

// Runs function(writer, request) with the GIL held; the Go thread enters
// here holding nothing.
void call_python(py::object& function, const Hooks& hooks, gobind::Request& request,
                 gobind::ResponseWriter& writer) {
    bool timed = !hooks.access_log.is_none();
    auto started = timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};

    GoThreadGil gil;
    auto* py_request = reuse_or_create<PyRequest>(thread_objects.request);
    auto* py_writer = reuse_or_create<PyResponseWriter>(thread_objects.writer);
    py_request->request = &request;
    py_writer->writer = &writer;
    py::handle request_object(thread_objects.request);
    py::handle writer_object(thread_objects.writer);

    try {
        // A vectorcall passes the two arguments without building a tuple.
        PyObject* arguments[] = {writer_object.ptr(), request_object.ptr()};
        PyObject* result = PyObject_Vectorcall(function.ptr(), arguments, 2, nullptr);
        if (result == nullptr) throw py::error_already_set();
        Py_DECREF(result);
        py_writer->hand_over_headers();
    } catch (py::error_already_set& error) {
        // A ConnectionError of the app's own, such as a refused backend
        // connection, is an app failure; only the engine's is the client's.
        const char* outcome = engine_client_error(error, request, writer) ? client_outcome(error) : nullptr;
        report_error(hooks, error, request_object, outcome);
        writer.fail(request.failure_status());
    } catch (const std::exception& error) {
        // A gobind call inside the handler failed without Python seeing
        // it, such as a write to a client that went away.
        PyErr_SetString(PyExc_RuntimeError, error.what());
        py::error_already_set wrapped;
        report_error(hooks, wrapped, request_object, nullptr);
        writer.fail(request.failure_status());
    }

    if (timed) {
        std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
        write_access_log(hooks, request, writer, elapsed.count());
    }
    // Every per-request field starts afresh for the next call.
    *py_request = PyRequest{};
    py_writer->writer = nullptr;
    py_writer->reset_headers();
}

}  // namespace

Handler make_python_handler(py::object function, std::shared_ptr<Hooks> hooks) {
    // The function and hooks are Python objects: copies of this lambda are
    // made and destroyed only by the server while it holds the GIL.
    auto shared = std::make_shared<py::object>(std::move(function));
    return [shared, hooks](gobind::Request& request, gobind::ResponseWriter& writer) {
        GateEntry gate;
        if (!gate.entered()) {
            writer.write_header(503);
            writer.header().set("Content-Type", "text/plain; charset=utf-8");
            writer.write("server is shutting down\n");
            return;
        }
        // The server ends the response after this returns, without the
        // GIL, so that a slow client does not stall other handlers.
        call_python(*shared, *hooks, request, writer);
    };
}

LogFunction make_python_log(py::object function) {
    auto shared = std::make_shared<py::object>(std::move(function));
    return [shared](std::string_view line) {
        GateEntry gate;
        if (!gate.entered()) {
            std::fprintf(stderr, "gobind: %.*s\n", static_cast<int>(line.size()), line.data());
            return;
        }
        GoThreadGil gil;
        try {
            (*shared)(latin1(line));
        } catch (py::error_already_set& error) {
            error.discard_as_unraisable("gobind: logging a server error");
        }
    };
}

AccessFunction make_python_access_log(py::object function) {
    auto shared = std::make_shared<py::object>(std::move(function));
    return [shared](const AccessEntry& entry) {
        GateEntry gate;
        if (!gate.entered()) return;
        GoThreadGil gil;
        try {
            (*shared)(latin1(entry.remote_addr), latin1(entry.method), latin1(entry.target),
                      latin1(entry.protocol), entry.status, entry.body_bytes, entry.seconds);
        } catch (py::error_already_set& error) {
            error.discard_as_unraisable("gobind: writing the access log");
        }
    };
}

bool engine_client_error(py::error_already_set& error, const gobind::Request& request,
                         const gobind::ResponseWriter& writer) {
    // The engine raises ConnectionError, TimeoutError and ValueError
    // themselves, never a subclass such as ConnectionRefusedError, and only
    // after its read or write failed. ValueError means invalid framing.
    if (!error.value() || !(request.body_failed() || writer.write_failed())) return false;
    auto* type = Py_TYPE(error.value().ptr());
    if (type == reinterpret_cast<PyTypeObject*>(PyExc_ValueError)) return request.body_malformed();
    return type == reinterpret_cast<PyTypeObject*>(PyExc_ConnectionError) ||
           type == reinterpret_cast<PyTypeObject*>(PyExc_TimeoutError);
}

const char* client_outcome(py::error_already_set& error) {
    if (error.matches(PyExc_TimeoutError)) return "timed out";
    if (error.matches(PyExc_ValueError)) return "sent an invalid body";
    return "went away";
}

}  // namespace gobind::python
