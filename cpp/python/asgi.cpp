// The event-loop side of the engine's queue mode: drains events into
// Python objects (an ASGI scope per request) and submits reads and writes.
// Every function here runs on the event loop's thread with the GIL held.
// None waits for the network: the engine's queue functions copy memory,
// take short locks and hand work to goroutines.
#include "asgi.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gobind.h"
#include "gobind/error.hpp"
#include "gobind/header.hpp"

namespace gobind::python {
namespace {

constexpr std::size_t initial_buffer_size = 256 * 1024;

/// Owns a gobind_error and throws it as gobind::Error.
struct EngineError {
    gobind_error value{};
    ~EngineError() { gobind_error_clear(&value); }
    [[noreturn]] void raise(int status, const char* fallback) const {
        std::string message = value.message != nullptr ? value.message : fallback;
        throw gobind::Error(static_cast<ErrorCode>(status), message, value.sys_errno);
    }
};

/// Reads the engine's encoded buffers: native-order integers and
/// length-prefixed strings. A truncated buffer throws.
class Decoder {
public:
    Decoder(const char* data, std::size_t size) : p_(data), end_(data + size) {}

    template <typename T>
    T number() {
        need(sizeof(T));
        T value;
        std::memcpy(&value, p_, sizeof(T));
        p_ += sizeof(T);
        return value;
    }

    std::string_view bytes(std::size_t n) {
        need(n);
        std::string_view view(p_, n);
        p_ += n;
        return view;
    }

    std::string_view string() { return bytes(number<std::uint32_t>()); }

    bool done() const { return p_ >= end_; }

private:
    void need(std::size_t n) const {
        if (static_cast<std::size_t>(end_ - p_) < n) throw std::runtime_error("engine event buffer is truncated");
    }
    const char* p_;
    const char* end_;
};

py::object steal(PyObject* object) {
    if (object == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(object);
}

py::object bytes_of(std::string_view data) {
    return steal(PyBytes_FromStringAndSize(data.data(), static_cast<Py_ssize_t>(data.size())));
}

py::object latin1_of(std::string_view data) {
    return steal(PyUnicode_DecodeLatin1(data.data(), static_cast<Py_ssize_t>(data.size()), nullptr));
}

py::object lower_bytes_of(std::string_view data) {
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(data.size()));
    if (raw == nullptr) throw py::error_already_set();
    char* out = PyBytes_AS_STRING(raw);
    for (std::size_t i = 0; i < data.size(); ++i) {
        char c = data[i];
        out[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
    }
    return py::reinterpret_steal<py::object>(raw);
}

/// (host, port) of "host:port" or "[v6]:port"; (address, None) for a Unix
/// socket path; None when empty.
py::object address_tuple(std::string_view address, bool keep_path) {
    if (address.empty() || address == "@") return py::none();
    auto colon = address.rfind(':');
    bool numeric_port = colon != std::string_view::npos && colon + 1 < address.size();
    for (std::size_t i = colon + 1; numeric_port && i < address.size(); ++i) {
        numeric_port = address[i] >= '0' && address[i] <= '9';
    }
    if (!numeric_port) {
        if (!keep_path) return py::none();
        return py::make_tuple(latin1_of(address), py::none());
    }
    auto host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    long port = 0;
    for (char c : address.substr(colon + 1)) port = port * 10 + (c - '0');
    return py::make_tuple(latin1_of(host), py::int_(port));
}

}  // namespace

/// Interned scope keys and values, made once per queue.
struct ScopeNames {
    py::str http_version = py::str("http_version");
    py::str method = py::str("method");
    py::str scheme = py::str("scheme");
    py::str path = py::str("path");
    py::str raw_path = py::str("raw_path");
    py::str query_string = py::str("query_string");
    py::str headers = py::str("headers");
    py::str client = py::str("client");
    py::str server = py::str("server");
    py::str http = py::str("http");
    py::str https = py::str("https");
    py::str v1_1 = py::str("1.1");
    py::str v1_0 = py::str("1.0");
    py::str v2 = py::str("2");
    py::str get = py::str("GET");
    py::str post = py::str("POST");
};

AsgiQueue::AsgiQueue(std::uint64_t server, int wake_fd, py::dict scope_template, std::string root_path)
    : server_(server),
      wake_fd_(wake_fd),
      template_(std::move(scope_template)),
      root_path_(std::move(root_path)),
      names_(std::make_shared<ScopeNames>()),
      buffer_(initial_buffer_size) {
    EngineError error;
    int status = gobind_queue_open(server_, wake_fd_, &error.value);
    if (status != GOBIND_OK) error.raise(status, "opening the request queue failed");
}

void AsgiQueue::set_max_body_bytes(std::int64_t max_bytes) {
    EngineError error;
    int status = gobind_queue_set_max_body_bytes(server_, max_bytes, &error.value);
    if (status != GOBIND_OK) error.raise(status, "setting the body limit failed");
}

void AsgiQueue::close() { gobind_queue_close(server_); }

py::list AsgiQueue::drain() {
    // The wake-up is consumed before draining, so an event posted after the
    // drain wakes the loop again.
    std::uint64_t counter = 0;
    while (::read(wake_fd_, &counter, sizeof counter) < 0 && errno == EINTR) {
    }

    py::list events;
    for (;;) {
        std::size_t used = 0, needed = 0;
        EngineError error;
        int status = gobind_queue_drain(server_, buffer_.data(), buffer_.size(), &used, &needed, &error.value);
        if (status != GOBIND_OK) error.raise(status, "draining the request queue failed");
        decode_events(std::string_view(buffer_.data(), used), events);
        if (needed == 0) break;
        if (used == 0) buffer_.resize(needed);
    }
    return events;
}

void AsgiQueue::decode_events(std::string_view buffer, py::list& events) {
    Decoder in(buffer.data(), buffer.size());
    while (!in.done()) {
        auto kind = in.number<std::uint32_t>();
        auto status = in.number<std::int32_t>();
        auto call = in.number<std::uint64_t>();
        auto data_size = in.number<std::uint32_t>();
        auto extra_size = in.number<std::uint32_t>();
        auto data = in.bytes(data_size);
        auto extra = in.bytes(extra_size);

        py::object first = py::none(), second = py::none();
        switch (kind) {
            case GOBIND_EVENT_REQUEST:
                first = make_scope(data);
                second = bytes_of(extra);
                break;
            case GOBIND_EVENT_BODY:
                first = bytes_of(data);
                if (extra_size > 0) second = latin1_of(extra);
                break;
            case GOBIND_EVENT_WRITTEN:
                if (extra_size > 0) second = latin1_of(extra);
                break;
            default:
                break;
        }
        PyObject* tuple = PyTuple_New(5);
        if (tuple == nullptr) throw py::error_already_set();
        PyTuple_SET_ITEM(tuple, 0, PyLong_FromUnsignedLong(kind));
        PyTuple_SET_ITEM(tuple, 1, PyLong_FromUnsignedLongLong(call));
        PyTuple_SET_ITEM(tuple, 2, PyLong_FromLong(status));
        PyTuple_SET_ITEM(tuple, 3, first.release().ptr());
        PyTuple_SET_ITEM(tuple, 4, second.release().ptr());
        if (PyList_Append(events.ptr(), tuple) != 0) {
            Py_DECREF(tuple);
            throw py::error_already_set();
        }
        Py_DECREF(tuple);
    }
}

// Builds the http scope from the encoded request (layout in gobind.h) over
// a shallow copy of the template, which contains type, asgi, root_path,
// extensions and state.
py::object AsgiQueue::make_scope(std::string_view request) {
    const ScopeNames& n = *names_;
    Decoder in(request.data(), request.size());
    auto method = in.string();
    auto target = in.string();
    auto path = in.string();
    auto escaped_path = in.string();
    auto query = in.string();
    auto protocol = in.string();
    auto scheme = in.string();
    in.string();  // host: also among the header fields
    auto remote = in.string();
    auto local = in.string();
    in.number<std::int64_t>();  // content length: also among the header fields
    for (auto count = in.number<std::uint32_t>(); count > 0; --count) {
        in.string();
        in.string();
    }

    py::dict scope = py::reinterpret_steal<py::dict>(steal(PyDict_Copy(template_.ptr())).release());
    auto set = [&scope](const py::str& key, const py::object& value) {
        if (PyDict_SetItem(scope.ptr(), key.ptr(), value.ptr()) != 0) throw py::error_already_set();
    };

    if (protocol == "HTTP/1.1") {
        set(n.http_version, n.v1_1);
    } else if (protocol == "HTTP/1.0") {
        set(n.http_version, n.v1_0);
    } else if (protocol.substr(0, 6) == "HTTP/2") {
        set(n.http_version, n.v2);
    } else {
        set(n.http_version, latin1_of(protocol.substr(protocol.find('/') + 1)));
    }
    if (method == "GET") {
        set(n.method, n.get);
    } else if (method == "POST") {
        set(n.method, n.post);
    } else {
        set(n.method, latin1_of(method));
    }
    set(n.scheme, scheme == "https" ? n.https : n.http);

    // path is percent-decoded UTF-8 (undecodable bytes as surrogates);
    // raw_path is the path as sent. Both include root_path, as uvicorn's do.
    std::string full_path = root_path_;
    full_path.append(path);
    set(n.path, steal(PyUnicode_DecodeUTF8(full_path.data(), static_cast<Py_ssize_t>(full_path.size()),
                                           "surrogateescape")));
    std::string_view raw_path = escaped_path;
    if (!target.empty() && target.front() == '/') raw_path = target.substr(0, target.find('?'));
    std::string full_raw_path = root_path_;
    full_raw_path.append(raw_path);
    set(n.raw_path, bytes_of(full_raw_path));
    set(n.query_string, bytes_of(query));

    // NOTE: net/http keeps request headers in a map, so fields of different
    // names arrive in map order, not wire order; repeats of one name keep theirs.
    auto count = in.number<std::uint32_t>();
    py::object headers = steal(PyList_New(count));
    for (std::uint32_t i = 0; i < count; ++i) {
        auto name = in.string();
        auto value = in.string();
        PyObject* pair = PyTuple_New(2);
        if (pair == nullptr) throw py::error_already_set();
        PyTuple_SET_ITEM(pair, 0, lower_bytes_of(name).release().ptr());
        PyTuple_SET_ITEM(pair, 1, bytes_of(value).release().ptr());
        PyList_SET_ITEM(headers.ptr(), i, pair);
    }
    set(n.headers, headers);
    set(n.client, address_tuple(remote, false));
    set(n.server, address_tuple(local, true));
    return std::move(scope);
}

void AsgiQueue::read(std::uint64_t call, std::size_t size) {
    EngineError error;
    int status = gobind_async_read(call, size, &error.value);
    if (status != GOBIND_OK) error.raise(status, "reading the request body failed");
}

// Encodes ASGI header pairs (bytes names and values) as the engine's
// header block. Two different Content-Length values raise ValueError, and
// the same one twice is sent once, as Header::add does.
std::string AsgiQueue::encode_header(py::handle pairs) {
    std::string block(4, '\0');
    std::uint32_t count = 0;
    auto view = [](py::handle value) {
        if (PyBytes_Check(value.ptr())) {
            return std::string_view(PyBytes_AS_STRING(value.ptr()),
                                    static_cast<std::size_t>(PyBytes_GET_SIZE(value.ptr())));
        }
        if (PyByteArray_Check(value.ptr())) {
            return std::string_view(PyByteArray_AS_STRING(value.ptr()),
                                    static_cast<std::size_t>(PyByteArray_GET_SIZE(value.ptr())));
        }
        throw py::type_error(std::string("header names and values must be bytes, not ") +
                             Py_TYPE(value.ptr())->tp_name);
    };
    auto append = [&block](std::string_view text) {
        auto length = static_cast<std::uint32_t>(text.size());
        block.append(reinterpret_cast<const char*>(&length), sizeof length);
        block.append(text);
    };
    Header lengths;  // the Content-Length fields, checked by Header::add
    if (!pairs.is_none()) {
        for (py::handle pair : pairs) {
            py::sequence item = py::reinterpret_borrow<py::sequence>(pair);
            if (item.size() != 2) throw py::value_error("header fields must be [name, value] pairs");
            py::object name_object = item[0], value_object = item[1];
            std::string_view name = view(name_object), value = view(value_object);
            if (equal_field_names(name, "content-length")) {
                std::size_t before = lengths.size();
                try {
                    lengths.add(name, value);
                } catch (const std::invalid_argument& error) {
                    throw py::value_error(error.what());
                }
                if (lengths.size() == before) continue;  // the same length again
            }
            append(name);
            append(value);
            ++count;
        }
    }
    std::memcpy(block.data(), &count, sizeof count);
    return block;
}

void AsgiQueue::submit(std::uint64_t call, int kind, int status, py::handle header, py::handle body, int flags) {
    std::string block = encode_header(header);
    Py_buffer view{};
    bool has_view = false;
    if (!body.is_none()) {
        if (PyObject_GetBuffer(body.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
        has_view = true;
    }
    EngineError error;
    int rc = gobind_async_submit(call, kind, status, block.data(), block.size(),
                                 has_view ? static_cast<char*>(view.buf) : nullptr,
                                 has_view ? static_cast<std::size_t>(view.len) : 0, flags, &error.value);
    if (has_view) PyBuffer_Release(&view);
    if (rc != GOBIND_OK) error.raise(rc, "submitting the response failed");
}

void AsgiQueue::defer(std::uint64_t call, int kind, int status, py::handle header, py::handle body, int flags) {
    std::string block = encode_header(header);
    Py_buffer view{};
    if (!body.is_none() && PyObject_GetBuffer(body.ptr(), &view, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    // The batch stores sizes in 32 bits.
    if (block.size() > UINT32_MAX || static_cast<std::uint64_t>(view.len) > UINT32_MAX) {
        if (view.buf != nullptr) PyBuffer_Release(&view);
        throw py::value_error("a response header or body part of 4 GiB or more cannot be sent in one piece");
    }
    auto append = [this](auto value) { batch_.append(reinterpret_cast<const char*>(&value), sizeof value); };
    append(call);
    append(static_cast<std::int32_t>(kind));
    append(static_cast<std::int32_t>(status));
    append(static_cast<std::int32_t>(flags));
    append(static_cast<std::uint32_t>(block.size()));
    append(static_cast<std::uint32_t>(view.len));
    batch_.append(block);
    if (view.buf != nullptr) {
        batch_.append(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
        PyBuffer_Release(&view);
    }
}

void AsgiQueue::flush() {
    if (batch_.empty()) return;
    EngineError error;
    int status = gobind_async_submit_batch(batch_.data(), batch_.size(), &error.value);
    batch_.clear();
    if (status != GOBIND_OK) error.raise(status, "submitting responses failed");
}

void bind_asgi(py::module_& m) {
    py::class_<AsgiQueue>(m, "AsgiQueue", "The engine's request queue, drained by an event loop; use gobind.asgi.")
        .def(py::init<std::uint64_t, int, py::dict, std::string>(), py::arg("server"), py::arg("wake_fd"),
             py::arg("scope_template"), py::arg("root_path"))
        .def("drain", &AsgiQueue::drain,
             "Consume the wake-up and return every pending event as (kind, call, status, a, b).")
        .def("read", &AsgiQueue::read, py::arg("call"), py::arg("size"),
             "Start reading up to size body bytes; the result comes as a body event.")
        .def("submit", &AsgiQueue::submit, py::arg("call"), py::arg("kind"), py::arg("status"),
             py::arg("header"), py::arg("body"), py::arg("flags"),
             "Submit a response operation; header and body are copied.")
        .def("defer", &AsgiQueue::defer, py::arg("call"), py::arg("kind"), py::arg("status"), py::arg("header"),
             py::arg("body"), py::arg("flags"), "Add a response operation to the batch that flush() submits.")
        .def("flush", &AsgiQueue::flush, "Submit the deferred operations in one engine call.")
        .def("set_max_body_bytes", &AsgiQueue::set_max_body_bytes, py::arg("max_bytes"),
             "Answer request bodies above max_bytes with 413 (0: no bound).")
        .def("close", &AsgiQueue::close, "Stop the queue: waiting requests close their connections.");
    m.attr("EVENT_REQUEST") = py::int_(static_cast<int>(GOBIND_EVENT_REQUEST));
    m.attr("EVENT_BODY") = py::int_(static_cast<int>(GOBIND_EVENT_BODY));
    m.attr("EVENT_WRITTEN") = py::int_(static_cast<int>(GOBIND_EVENT_WRITTEN));
    m.attr("EVENT_DISCONNECT") = py::int_(static_cast<int>(GOBIND_EVENT_DISCONNECT));
    m.attr("OP_WRITE") = py::int_(static_cast<int>(GOBIND_OP_WRITE));
    m.attr("OP_SENDFILE") = py::int_(static_cast<int>(GOBIND_OP_SENDFILE));
    m.attr("OP_TRAILERS") = py::int_(static_cast<int>(GOBIND_OP_TRAILERS));
    m.attr("OP_ABORT") = py::int_(static_cast<int>(GOBIND_OP_ABORT));
    m.attr("WRITE_FLUSH") = py::int_(static_cast<int>(GOBIND_WRITE_FLUSH));
    m.attr("WRITE_FINISH") = py::int_(static_cast<int>(GOBIND_WRITE_FINISH));
    m.attr("STATUS_EOF") = py::int_(static_cast<int>(GOBIND_EOF));
}

}  // namespace gobind::python
