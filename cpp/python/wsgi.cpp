#include "wsgi.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "gobind.h"

namespace gobind::python {
namespace {

// Values that most requests share (methods, protocols, schemes) are kept as
// one str object each, so building an environ allocates no str for them.
// The objects live until the process exits, on purpose: they may still be
// referenced from environs while the interpreter finalizes.
constexpr std::array<std::string_view, 13> common_values = {
    "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS",
    "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http", "https", "80",
};

py::object text(std::string_view value) {
    static std::array<PyObject*, common_values.size()> cache{};
    for (std::size_t i = 0; i < common_values.size(); ++i) {
        if (value != common_values[i]) continue;
        if (cache[i] == nullptr) {
            cache[i] = PyUnicode_InternFromString(std::string(value).c_str());
            if (cache[i] == nullptr) throw py::error_already_set();
        }
        return py::reinterpret_borrow<py::object>(cache[i]);
    }
    return header_text(value);
}

// An interned str for a key; the object lives until the process exits.
PyObject* intern(const char* key) {
    PyObject* object = PyUnicode_InternFromString(key);
    if (object == nullptr) throw py::error_already_set();
    return object;
}

void set_item(PyObject* dict, PyObject* key, py::handle value) {
    if (PyDict_SetItem(dict, key, value.ptr()) != 0) throw py::error_already_set();
}

// Keys that every environ has, created once.
struct Keys {
    PyObject* request_method = intern("REQUEST_METHOD");
    PyObject* path_info = intern("PATH_INFO");
    PyObject* query_string = intern("QUERY_STRING");
    PyObject* server_protocol = intern("SERVER_PROTOCOL");
    PyObject* url_scheme = intern("wsgi.url_scheme");
    PyObject* remote_addr = intern("REMOTE_ADDR");
    PyObject* remote_port = intern("REMOTE_PORT");
    PyObject* server_name = intern("SERVER_NAME");
    PyObject* server_port = intern("SERVER_PORT");
    PyObject* content_type = intern("CONTENT_TYPE");
    PyObject* content_length = intern("CONTENT_LENGTH");
    PyObject* http_cookie = intern("HTTP_COOKIE");
    PyObject* input_terminated = intern("wsgi.input_terminated");
};

const Keys& keys() {
    static const Keys* instance = new Keys();
    return *instance;
}

// The HTTP_* key of a header field name. Keys of the first names seen are
// kept, so common headers cost no allocation; the cache is bounded because
// clients choose the names.
constexpr std::size_t max_cached_keys = 512;

py::object cgi_key(std::string_view name) {
    static auto* cache = new std::unordered_map<std::string, PyObject*>();
    auto found = cache->find(std::string(name));
    if (found != cache->end()) return py::reinterpret_borrow<py::object>(found->second);

    std::string key = "HTTP_";
    key.reserve(5 + name.size());
    for (char c : name) {
        if (c == '-') {
            c = '_';
        } else if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
        key.push_back(c);
    }
    if (cache->size() >= max_cached_keys) {
        return py::reinterpret_steal<py::object>(header_text(key).release());
    }
    PyObject* object = intern(key.c_str());
    cache->emplace(std::string(name), object);
    return py::reinterpret_borrow<py::object>(object);
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decode %XX escapes; a '%' not followed by two hex digits stays as it is.
std::string percent_decode(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%' && i + 2 < raw.size()) {
            int high = hex_digit(raw[i + 1]);
            int low = hex_digit(raw[i + 2]);
            if (high >= 0 && low >= 0) {
                out.push_back(static_cast<char>(high * 16 + low));
                i += 2;
                continue;
            }
        }
        out.push_back(raw[i]);
    }
    return out;
}

// The path of the request target as sent, before decoding. Targets in
// absolute form ("http://host/p") and "*" take the path that Go parsed.
std::string_view target_path(const gobind::Request& request) {
    std::string_view target = request.target();
    if (target.empty() || target.front() != '/') return request.raw_path();
    auto end = target.find('?');
    return end == std::string_view::npos ? target : target.substr(0, end);
}

// Split "ip:port" or "[ip6]:port"; false when address has no numeric port.
bool split_host_port(std::string_view address, std::string_view& host, std::string_view& port) {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos || colon + 1 == address.size()) return false;
    for (char c : address.substr(colon + 1)) {
        if (c < '0' || c > '9') return false;
    }
    host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    port = address.substr(colon + 1);
    return true;
}

// Put one header field into the environ. Repeated fields are joined with
// ", " as RFC 9110 allows, except Cookie, whose separator is "; ".
void set_header(PyObject* environ, std::string_view name, std::string_view value,
                py::object& pending_key, std::string& pending_value) {
    py::object key = cgi_key(name);
    if (pending_key && (key.ptr() == pending_key.ptr() || key.equal(pending_key))) {
        pending_value.append(key.ptr() == keys().http_cookie ? "; " : ", ");
        pending_value.append(value);
        return;
    }
    if (pending_key) set_item(environ, pending_key.ptr(), header_text(pending_value));
    pending_key = std::move(key);
    pending_value.assign(value);
}

void set_headers(PyObject* environ, const gobind::Request& request) {
    py::object pending_key;
    std::string pending_value;
    std::string content_type, content_length;
    bool has_type = false, has_length = false;
    for (const auto& [name, value] : request.header_fields()) {
        // Content-Type and Content-Length have CGI names without HTTP_.
        if (equal_field_names(name, "Content-Type")) {
            if (has_type) content_type.append(", ");
            content_type.append(value);
            has_type = true;
            continue;
        }
        if (equal_field_names(name, "Content-Length")) {
            content_length.assign(value);
            has_length = true;
            continue;
        }
        // A name with '_' maps to the same CGI key as the name spelled
        // with '-', so a client could forge a header that a proxy sets.
        // Such fields are dropped, as nginx and gunicorn do by default.
        if (name.find('_') != std::string_view::npos) continue;
        set_header(environ, name, value, pending_key, pending_value);
    }
    if (pending_key) set_item(environ, pending_key.ptr(), header_text(pending_value));
    if (has_type) set_item(environ, keys().content_type, header_text(content_type));
    if (has_length) set_item(environ, keys().content_length, header_text(content_length));
}

void set_path(PyObject* environ, const gobind::Request& request, const std::string& script_name) {
    std::string path = percent_decode(target_path(request));
    std::string_view path_info = path;
    // A path under the mount prefix loses it; any other path stays whole.
    if (!script_name.empty() && path_info.substr(0, script_name.size()) == script_name &&
        (path_info.size() == script_name.size() || path_info[script_name.size()] == '/')) {
        path_info.remove_prefix(script_name.size());
    }
    set_item(environ, keys().path_info, header_text(path_info));
}

void set_addresses(PyObject* environ, const gobind::Request& request) {
    std::string_view host, port;
    if (split_host_port(request.remote_addr(), host, port)) {
        set_item(environ, keys().remote_addr, header_text(host));
        set_item(environ, keys().remote_port, header_text(port));
    } else {
        // A Unix socket's client is unnamed (Go reports "@"): no address.
        set_item(environ, keys().remote_addr, header_text(""));
    }
    if (split_host_port(request.local_addr(), host, port)) {
        set_item(environ, keys().server_name, header_text(host));
        set_item(environ, keys().server_port, text(port));
    } else {
        // A Unix socket has no host or port; PEP 3333 requires both keys.
        set_item(environ, keys().server_name, header_text("localhost"));
        set_item(environ, keys().server_port, text("80"));
    }
}

}  // namespace

py::dict wsgi_environ(PyRequest& r, py::dict base, const std::string& script_name) {
    const gobind::Request& request = r.get();
    auto environ = py::reinterpret_steal<py::dict>(PyDict_Copy(base.ptr()));
    if (!environ) throw py::error_already_set();
    PyObject* dict = environ.ptr();

    set_item(dict, keys().request_method, text(request.method()));
    set_path(dict, request, script_name);
    set_item(dict, keys().query_string, header_text(request.query()));
    set_item(dict, keys().server_protocol, text(request.protocol()));
    set_item(dict, keys().url_scheme, text(request.scheme()));
    set_addresses(dict, request);
    set_headers(dict, request);
    // Werkzeug reads a body with a Content-Length through its own length
    // check only without this key, and that check turns a failed read into 400.
    if (PyDict_Contains(dict, keys().content_length) == 1 && PyDict_DelItem(dict, keys().input_terminated) != 0) {
        throw py::error_already_set();
    }
    return environ;
}

std::int64_t wsgi_start(PyResponseWriter& w, int status, py::handle headers) {
    auto& writer = w.get();
    writer.write_header(status);
    auto& header = writer.header();
    std::int64_t content_length = -1;
    std::string name_storage, value_storage;

    PyObject* list = headers.ptr();
    if (!PyList_Check(list)) {
        throw py::type_error(std::string("response headers must be a list, not ") +
                             Py_TYPE(list)->tp_name);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); ++i) {
        PyObject* item = PyList_GET_ITEM(list, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            throw py::type_error("response header " + py::repr(item).cast<std::string>() +
                                 " is not a (name, value) tuple");
        }
        auto name = header_bytes(PyTuple_GET_ITEM(item, 0), name_storage, "name");
        auto value = header_bytes(PyTuple_GET_ITEM(item, 1), value_storage, "value");
        header.add(name, value);
        if (equal_field_names(name, "Content-Length")) {
            std::int64_t parsed = 0;
            bool digits = !value.empty() && value.size() < 19;
            for (char c : value) {
                digits = digits && c >= '0' && c <= '9';
                parsed = parsed * 10 + (c - '0');
            }
            content_length = digits ? parsed : -1;
        }
    }
    return content_length;
}

}  // namespace gobind::python

namespace gobind::python {
namespace {

[[noreturn]] void raise_assertion(const char* message) {
    PyErr_SetString(PyExc_AssertionError, message);
    throw py::error_already_set();
}

// Body bytes of a chunk: bytes as they are, bytearray and memoryview copied.
py::object chunk_bytes(py::handle chunk) {
    if (PyBytes_CheckExact(chunk.ptr())) return py::reinterpret_borrow<py::object>(chunk);
    if (PyBytes_Check(chunk.ptr()) || PyByteArray_Check(chunk.ptr()) || PyMemoryView_Check(chunk.ptr())) {
        PyObject* copy = PyBytes_FromObject(chunk.ptr());
        if (copy == nullptr) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(copy);
    }
    throw py::type_error(std::string("WSGI body chunks must be bytes, not ") + Py_TYPE(chunk.ptr())->tp_name);
}

// Parse "200 OK": three digits, a space, a reason.
int status_code(py::handle status) {
    if (!PyUnicode_Check(status.ptr())) {
        throw py::type_error(std::string("status must be str, not ") + Py_TYPE(status.ptr())->tp_name +
                             ": " + py::repr(status).cast<std::string>());
    }
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(status.ptr(), &size);
    if (text == nullptr) throw py::error_already_set();
    bool valid = size >= 4 && text[3] == ' ';
    int code = 0;
    for (int i = 0; valid && i < 3; ++i) {
        valid = text[i] >= '0' && text[i] <= '9';
        code = code * 10 + (text[i] - '0');
    }
    if (!valid) {
        throw py::value_error("invalid status " + py::repr(status).cast<std::string>() +
                              ": expected a 3-digit code, a space and a reason, such as '200 OK'");
    }
    if (code < 200) {
        // A 1xx response is never the last one, and a WSGI app has only one.
        throw py::value_error("invalid status " + py::repr(status).cast<std::string>() +
                              ": a WSGI response needs a final status, 200 or more");
    }
    return code;
}

bool has_header(py::handle headers, py::handle name) {
    py::object lowered = name.attr("lower")();
    for (py::handle pair : headers) {
        if (py::reinterpret_borrow<py::tuple>(pair)[0].attr("lower")().equal(lowered)) return true;
    }
    return false;
}

// Call result.close() if it has one. While another exception propagates,
// a failing close() is reported as unraisable instead of replacing it.
void close_result(py::handle result, bool unwinding) {
    if (PyList_CheckExact(result.ptr()) || PyTuple_CheckExact(result.ptr())) return;
    try {
        if (py::hasattr(result, "close")) result.attr("close")();
    } catch (py::error_already_set& error) {
        if (!unwinding) throw;
        error.discard_as_unraisable("gobind: closing a WSGI response after an error");
    }
}

// Return "Type: message" of error, without the traceback that what() adds.
std::string exception_text(const py::error_already_set& error) {
    std::string name = py::str(error.type().attr("__name__"));
    return name + ": " + std::string(py::str(error.value()));
}

}  // namespace

py::object WsgiResponse::start(py::object self, py::object new_status, py::object new_headers,
                               py::object exc_info) {
    if (!exc_info.is_none()) {
        if (sent) {
            // PEP 3333: once the headers are out, the app's error is re-raised.
            py::tuple info = exc_info;
            py::object type = info[0], value = info[1], traceback = info[2];
            PyErr_Restore(type.release().ptr(), value.release().ptr(), traceback.release().ptr());
            throw py::error_already_set();
        }
    } else if (!status.is_none()) {
        raise_assertion("start_response() called a second time without exc_info");
    }
    code = status_code(new_status);
    if (!PyList_Check(new_headers.ptr())) {
        throw py::type_error(std::string("response headers must be a list, not ") +
                             Py_TYPE(new_headers.ptr())->tp_name);
    }
    status = std::move(new_status);
    headers = std::move(new_headers);
    return self.attr("write");
}

void WsgiResponse::begin() {
    if (status.is_none()) {
        raise_assertion("the application returned body data before calling start_response()");
    }
    py::object all = headers;
    if (py::len(defaults) > 0) {
        py::list merged(headers);
        for (py::handle pair : defaults) {
            if (!has_header(headers, py::reinterpret_borrow<py::tuple>(pair)[0])) merged.append(pair);
        }
        all = merged;
    }
    remaining = wsgi_start(*writer, code, all);
    sent = true;
    body_allowed = code >= 200 && code != 204 && code != 304;
}

void WsgiResponse::send(py::handle chunk, bool flush) {
    py::object data = chunk_bytes(chunk);
    if (!sent) begin();
    if (!body_allowed) return;
    auto size = static_cast<std::int64_t>(PyBytes_GET_SIZE(data.ptr()));
    if (remaining >= 0) {
        if (size > remaining) {
            data = py::reinterpret_steal<py::object>(
                PyBytes_FromStringAndSize(PyBytes_AS_STRING(data.ptr()), static_cast<Py_ssize_t>(remaining)));
            if (!data) throw py::error_already_set();
            size = remaining;
        }
        remaining -= size;
        if (size == 0) return;
        // The declared body is complete: the engine sends it at the end.
        flush = flush && remaining > 0;
    }
    writer->write(data);
    if (flush) writer->flush();
}

void WsgiResponse::write(py::handle data) {
    if (status.is_none()) raise_assertion("write() called before start_response()");
    if (PyObject_IsTrue(data.ptr()) == 1) send(data, true);
}

void WsgiHandler::call(py::object writer_object, py::object request_object) {
    auto& writer = writer_object.cast<PyResponseWriter&>();
    auto& request = request_object.cast<PyRequest&>();
    if (max_body_bytes > 0 && request.get().content_length() > max_body_bytes) {
        reject_large_body(writer);
        return;
    }

    py::dict environ = wsgi_environ(request, base, script_name);
    environ["wsgi.input"] = input_type(request_object, max_body_bytes);
    auto* state = new WsgiResponse{writer_object, &writer, defaults, py::none(), py::none()};
    py::object response = py::cast(state, py::return_value_policy::take_ownership);

    py::object result;
    try {
        result = app(environ, response);
    } catch (py::error_already_set& error) {
        if (engine_client_error(error, request.get(), writer.get())) {
            report_disconnect(writer, request, exception_text(error).c_str(), client_outcome(error));
            return;
        }
        if (!error.matches(too_large_type)) throw;
        reject_large_body(writer);
        return;
    }

    try {
        send_body(*state, result);
    } catch (py::error_already_set& error) {
        close_result(result, true);
        if (engine_client_error(error, request.get(), writer.get())) {
            report_disconnect(writer, request, exception_text(error).c_str(), client_outcome(error));
            return;
        }
        if (!error.matches(too_large_type) || state->sent) throw;
        reject_large_body(writer);
        return;
    } catch (const gobind::Error& error) {
        close_result(result, true);
        bool timed_out = error.code() == ErrorCode::timeout && writer.get().write_failed();
        if (error.code() != ErrorCode::io_error && !timed_out) throw;
        report_disconnect(writer, request, error.what(), timed_out ? "timed out" : "went away");
        return;
    } catch (...) {
        close_result(result, true);
        throw;
    }
    close_result(result, false);
}

void WsgiHandler::send_body(WsgiResponse& response, py::handle result) {
    if (Py_TYPE(result.ptr()) == reinterpret_cast<PyTypeObject*>(file_wrapper_type.ptr()) &&
        send_file(response, result)) {
        return;
    }
    if (PyList_CheckExact(result.ptr()) || PyTuple_CheckExact(result.ptr())) {
        // Every chunk exists already: the engine sends them at the end, in
        // as few writes as fit its buffer.
        py::sequence chunks = py::reinterpret_borrow<py::sequence>(result);
        for (py::handle chunk : chunks) {
            if (PyObject_IsTrue(chunk.ptr()) == 1) response.send(chunk, false);
        }
    } else {
        // Chunks of other iterables leave as soon as they are produced.
        py::iterator chunks = py::iter(result);
        for (py::handle chunk : chunks) {
            if (PyObject_IsTrue(chunk.ptr()) == 1) response.send(chunk, true);
        }
    }
    if (!response.sent) response.begin();
}

// Send a wsgi.file_wrapper's file from Go, by descriptor. Returns false,
// having sent nothing, when the file has no descriptor or is not a regular
// file. The caller then iterates the wrapper like any other body.
bool WsgiHandler::send_file(WsgiResponse& response, py::handle result) {
    int fd = -1;
    try {
        py::object file = result.attr("filelike");
        fd = file.attr("fileno")().cast<int>();
        // A buffered file's position can differ from its descriptor's.
        auto position = file.attr("tell")().cast<std::int64_t>();
        struct stat info {};
        if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) return false;
        if (lseek(fd, static_cast<off_t>(position), SEEK_SET) < 0) return false;
    } catch (py::error_already_set&) {
        return false;  // no fileno() or tell(), such as io.BytesIO
    } catch (py::cast_error&) {
        return false;
    }

    // The app may have called write() before it returned the wrapper.
    if (!response.sent) response.begin();
    if (!response.body_allowed) return true;
    auto& writer = response.writer->get();
    std::int64_t sent;
    {
        py::gil_scoped_release release;
        sent = writer.send_file(fd, response.remaining);
    }
    if (response.remaining >= 0) response.remaining -= sent;
    return true;
}

// The client went away, stalled past a timeout, or its body ended early or
// had invalid framing: one log line, no 500 traceback. The response fails as a handler's would, so
// that a response already started is cut short rather than ended as if it
// were complete.
void WsgiHandler::report_disconnect(PyResponseWriter& writer, PyRequest& request, const char* message,
                                    const char* outcome) {
    auto& w = writer.get();
    const auto& r = request.get();
    disconnect_log(header_text(r.method()), header_text(r.target()), message, outcome);
    w.fail(r.failure_status());
}

void WsgiHandler::reject_large_body(PyResponseWriter& writer) {
    auto& w = writer.get();
    w.header().clear();
    w.write_header(413);
    w.header().set("Content-Type", "text/plain; charset=utf-8");
    w.header().set("Connection", "close");
    w.write("request body exceeds the limit of " + std::to_string(max_body_bytes) + " bytes\n");
}

}  // namespace gobind::python
