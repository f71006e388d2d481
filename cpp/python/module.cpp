// gobind._gobind: Python bindings of the gobind C++ API. This file only
// binds; the trampolines live in objects.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cxxabi.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "asgi.hpp"
#include "gil.hpp"
#include "gobind/server.hpp"
#include "objects.hpp"
#include "wsgi.hpp"

namespace py = pybind11;
using namespace gobind;
using namespace gobind::python;

namespace gobind::python {

CallGate& call_gate() noexcept {
    static CallGate gate;
    return gate;
}

}  // namespace gobind::python

namespace {

/// Releases the GIL around a blocking call made from a Python thread, like
/// py::gil_scoped_release, except that its destructor may exit by an
/// exception. A daemon thread that returns from Go while the interpreter
/// finalizes is ended inside PyEval_RestoreThread by pthread_exit, whose
/// forced unwinding aborts the process if it meets a noexcept destructor.
class BlockingCall {
public:
    BlockingCall() : state_(PyEval_SaveThread()) {}
    ~BlockingCall() noexcept(false) { PyEval_RestoreThread(state_); }
    BlockingCall(const BlockingCall&) = delete;
    BlockingCall& operator=(const BlockingCall&) = delete;

private:
    PyThreadState* state_;
};

std::chrono::milliseconds to_ms(double seconds) {
    if (!(seconds >= 0)) {
        throw py::value_error("invalid timeout " + py::repr(py::float_(seconds)).cast<std::string>() +
                              ": must be 0 or more seconds");
    }
    // Go durations end at about 292 years of nanoseconds; longer timeouts,
    // math.inf included, are cut to 285 years instead of overflowing.
    constexpr double max_seconds = 9e9;
    if (seconds > max_seconds) seconds = max_seconds;
    auto ms = static_cast<std::int64_t>(seconds * 1000.0 + 0.5);
    // 0 means the engine's default, so a positive timeout below 0.5 ms
    // becomes 1 ms, the engine's resolution, not the default.
    if (ms == 0 && seconds > 0) ms = 1;
    return std::chrono::milliseconds(ms);
}

/// Python's owner of a gobind::Server: releases the engine server without
/// the GIL (running handlers need it to finish), then drops the handlers
/// with it.
class PyServer {
public:
    explicit PyServer(Config config) : server_(config), hooks_(std::make_shared<Hooks>()) {
        hooks_->on_error = py::none();
        hooks_->access_log = py::none();
    }

    ~PyServer() {
        {
            py::gil_scoped_release release;
            server_.release();
        }
    }

    void set_hooks(py::object on_error, py::object access_log) {
        hooks_->on_error = std::move(on_error);
        hooks_->access_log = std::move(access_log);
    }

    void handle(std::string_view pattern, py::object function) {
        server_.handle(pattern, make_python_handler(std::move(function), hooks_));
    }

    void handle_all(py::object function) {
        server_.handle_all(make_python_handler(std::move(function), hooks_));
    }

    void set_log(py::object function) { server_.set_log(make_python_log(std::move(function))); }

    void set_access_log(py::object function) {
        server_.set_access_log(function.is_none() ? AccessFunction() : make_python_access_log(std::move(function)));
    }

    Server& server() { return server_; }

private:
    Server server_;
    std::shared_ptr<Hooks> hooks_;
};

void set_header_item(Header& header, py::handle name, py::handle value, bool replace) {
    std::string name_storage, value_storage;
    auto name_bytes = header_bytes(name, name_storage, "name");
    auto value_bytes = header_bytes(value, value_storage, "value");
    if (replace) {
        header.set(name_bytes, value_bytes);
    } else {
        header.add(name_bytes, value_bytes);
    }
}

std::string key_of(py::handle name) {
    std::string storage;
    return std::string(header_bytes(name, storage, "name"));
}

py::str header_item(const Header& header, py::handle name) {
    auto value = header.get(key_of(name));
    if (!value) throw py::key_error(py::str(name).cast<std::string>());
    return header_text(*value);
}

void bind_headers(py::module_& m) {
    py::class_<Header>(m, "Headers",
                       "HTTP header fields: ordered, multi-valued, names compared without case.\n\n"
                       "Values are str (latin-1, so every byte round-trips) or bytes.")
        .def(py::init([](py::object fields) {
                 Header header;
                 if (fields.is_none()) return header;
                 py::object pairs = py::hasattr(fields, "items") ? fields.attr("items")() : fields;
                 for (py::handle pair : pairs) {
                     auto item = py::reinterpret_borrow<py::sequence>(pair);
                     if (item.size() != 2) throw py::value_error("header fields must be (name, value) pairs");
                     set_header_item(header, item[0], item[1], false);
                 }
                 return header;
             }),
             py::arg("fields") = py::none())
        .def("__getitem__", &header_item)
        .def("__setitem__", [](Header& h, py::handle name, py::handle value) { set_header_item(h, name, value, true); })
        .def("__delitem__",
             [](Header& h, py::handle name) {
                 if (h.remove(key_of(name)) == 0) throw py::key_error(py::str(name).cast<std::string>());
             })
        .def("__contains__",
             [](const Header& h, py::handle name) {
                 if (!PyUnicode_Check(name.ptr()) && !PyBytes_Check(name.ptr())) return false;
                 return h.contains(key_of(name));
             })
        .def("__len__", &Header::size, "Number of fields, duplicates included.")
        .def("__iter__", [](const Header& h) { return py::iter(py::cast(h).attr("keys")()); })
        .def("keys",
             [](const Header& h) {
                 py::list names;
                 std::vector<std::string_view> seen;
                 for (const auto& field : h.fields()) {
                     bool duplicate = false;
                     for (auto name : seen) duplicate = duplicate || equal_field_names(name, field.first);
                     if (duplicate) continue;
                     seen.emplace_back(field.first);
                     names.append(header_text(field.first));
                 }
                 return names;
             },
             "Distinct field names, in order of first appearance.")
        .def("items",
             [](const Header& h) {
                 py::list items;
                 for (const auto& [name, value] : h.fields()) items.append(py::make_tuple(header_text(name), header_text(value)));
                 return items;
             },
             "Every (name, value) pair, duplicates included.")
        .def("raw",
             [](const Header& h) {
                 py::list items;
                 for (const auto& [name, value] : h.fields()) items.append(py::make_tuple(py::bytes(name), py::bytes(value)));
                 return items;
             },
             "Every (name, value) pair as bytes.")
        .def("get",
             [](const Header& h, py::handle name, py::object fallback) -> py::object {
                 auto value = h.get(key_of(name));
                 if (!value) return fallback;
                 return header_text(*value);
             },
             py::arg("name"), py::arg("default") = py::none(), "First value of name, or default.")
        .def("get_all",
             [](const Header& h, py::handle name) {
                 py::list values;
                 for (auto value : h.values(key_of(name))) values.append(header_text(value));
                 return values;
             },
             py::arg("name"), "Every value of name, in order.")
        .def("add", [](Header& h, py::handle name, py::handle value) { set_header_item(h, name, value, false); },
             py::arg("name"), py::arg("value"), "Append a field, keeping existing ones of the same name.")
        .def("set", [](Header& h, py::handle name, py::handle value) { set_header_item(h, name, value, true); },
             py::arg("name"), py::arg("value"), "Replace every field of this name with one.")
        .def("clear", &Header::clear)
        .def("__repr__", [](const Header& h) {
            return "Headers(" + py::repr(py::cast(h).attr("items")()).cast<std::string>() + ")";
        });
}

py::object client_tuple(std::string_view address) {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return py::none();
    auto host = address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    int port = 0;
    for (char c : address.substr(colon + 1)) {
        if (c < '0' || c > '9') return py::none();
        port = port * 10 + (c - '0');
    }
    return py::make_tuple(std::string(host), port);
}

void bind_request(py::module_& m) {
    auto text = [](std::string_view (gobind::Request::*field)() const noexcept) {
        return [field](const PyRequest& r) { return header_text((r.get().*field)()); };
    };
    py::class_<PyRequest>(m, "Request", "An HTTP request, valid while its handler runs.")
        .def_property_readonly("method", text(&gobind::Request::method))
        .def_property_readonly("url", text(&gobind::Request::target), "Request target as sent, query included.")
        .def_property_readonly("path", [](const PyRequest& r) {
            auto path = r.get().path();
            PyObject* decoded = PyUnicode_DecodeUTF8(path.data(), static_cast<Py_ssize_t>(path.size()), "surrogateescape");
            if (decoded == nullptr) throw py::error_already_set();
            return py::reinterpret_steal<py::str>(decoded);
        }, "Percent-decoded path.")
        .def_property_readonly("raw_path", text(&gobind::Request::raw_path), "Path with its escapes as sent.")
        .def_property_readonly("query", text(&gobind::Request::query), "Query string without '?', undecoded.")
        .def_property_readonly("protocol", text(&gobind::Request::protocol))
        .def_property_readonly("scheme", text(&gobind::Request::scheme))
        .def_property_readonly("host", text(&gobind::Request::host))
        .def_property_readonly("remote_addr", text(&gobind::Request::remote_addr))
        .def_property_readonly("local_addr", text(&gobind::Request::local_addr))
        .def_property_readonly("client", [](const PyRequest& r) { return client_tuple(r.get().remote_addr()); },
                               "(host, port) of the client, or None for Unix sockets.")
        .def_property_readonly("content_length", [](const PyRequest& r) -> py::object {
            auto length = r.get().content_length();
            if (length < 0) return py::none();
            return py::int_(length);
        })
        .def_property_readonly("headers", [](PyRequest& r) {
            if (!r.headers) {
                Header header;
                for (const auto& [name, value] : r.get().header_fields()) header.add_unchecked(name, value);
                r.headers = py::cast(std::move(header));
            }
            return r.headers;
        })
        .def_property_readonly("path_params", [](PyRequest& r) {
            if (!r.path_params) {
                py::dict params;
                for (const auto& [name, value] : r.get().path_values()) {
                    PyObject* decoded = PyUnicode_DecodeUTF8(value.data(), static_cast<Py_ssize_t>(value.size()), "surrogateescape");
                    if (decoded == nullptr) throw py::error_already_set();
                    params[header_text(name)] = py::reinterpret_steal<py::str>(decoded);
                }
                r.path_params = params;
            }
            return r.path_params;
        }, "Wildcard values of the matched pattern, by name.")
        .def("read", [](PyRequest& r, Py_ssize_t size) { return read_request_body(r, size); }, py::arg("size") = -1,
             "Read up to size body bytes (all remaining when negative); b'' at the end.\n"
             "The GIL is released while Go waits for the client.")
        .def_property_readonly("body", [](PyRequest& r) {
            if (!r.body) r.body = read_request_body(r, -1);
            return r.body;
        }, "The whole body, read on first access and kept.")
        .def("__iter__", [](py::object self) { return self; })
        .def("__next__", [](PyRequest& r) {
            py::bytes chunk = read_request_body(r, 64 * 1024, false);
            if (PyBytes_GET_SIZE(chunk.ptr()) == 0) throw py::stop_iteration();
            return chunk;
        });
}

/// Returns the status code that write_header was given: an int, such as 200
/// or http.HTTPStatus.OK. Another type is a TypeError, and a code outside
/// 100-999 a ValueError.
int status_code(py::handle status) {
    if (!PyLong_Check(status.ptr()) || PyBool_Check(status.ptr())) {
        throw py::type_error("invalid status " + py::repr(status).cast<std::string>() +
                             ": must be an int, such as 200");
    }
    int overflow = 0;
    long value = PyLong_AsLongAndOverflow(status.ptr(), &overflow);
    if (overflow != 0 || value < 100 || value > 999) {
        throw py::value_error("invalid status code " + py::repr(status).cast<std::string>() + ": must be 100-999");
    }
    return static_cast<int>(value);
}

void bind_response_writer(py::module_& m) {
    py::class_<PyResponseWriter>(m, "ResponseWriter", "Writes the response of one request.")
        .def_property_readonly("headers", [](PyResponseWriter& w) {
            w.get();
            return w.headers_object();
        }, "Response header fields; changes after the header is sent have no effect.")
        .def("write_header", [](PyResponseWriter& w, py::handle status) {
            int code = status_code(status);
            auto& writer = w.get();
            if (code >= 200) {
                writer.write_header(code);
                return;
            }
            // A 1xx response leaves at once, with the header fields set so far.
            w.sync_headers();
            py::gil_scoped_release release;
            writer.write_header(code);
        },
             py::arg("status"),
             "Set the status code; it is sent with the first body bytes, and a later call\n"
             "before then replaces it. A 1xx code other than 101, such as 103 Early Hints,\n"
             "is sent at once with the current headers, which stay for the final response.")
        .def("write", &PyResponseWriter::write, py::arg("data"),
             "Write body bytes (str is encoded as UTF-8); returns the number of bytes.")
        .def("flush", &PyResponseWriter::flush, "Send the status, headers and buffered bytes now.")
        .def_property_readonly("status", [](const PyResponseWriter& w) { return w.get().status(); })
        .def_property_readonly("headers_sent", [](const PyResponseWriter& w) { return w.get().header_sent(); });
}

// Fast paths for the calls that nearly every handler makes: the writer's
// headers property, Headers.__getitem__ and __setitem__, and write().
// pybind11's generic dispatcher builds an argument tuple and looks the
// argument types up in its type registry on every call. These replacements
// are METH_FASTCALL methods and a getset descriptor that read the C++
// object straight from the instance. A call that they do not handle
// (keyword arguments, another argument count, an instance whose __init__
// did not run) goes to the pybind11 function that they replaced, so
// results and error messages stay the same.
// NOTE: an unbound call on an object of another class, such as
// ResponseWriter.write(headers, data), now raises CPython's descriptor
// TypeError instead of pybind11's "incompatible function arguments".

// Run body, turning a C++ exception into a Python one exactly as the
// pybind11 dispatcher does. A forced unwind (pthread_exit while the
// interpreter finalizes) must pass through.
template <typename Body>
PyObject* translate_errors(Body&& body) {
    try {
        return body();
    } catch (py::error_already_set& error) {
        error.restore();
    } catch (abi::__forced_unwind&) {
        throw;
    } catch (...) {
        py::detail::try_translate_exceptions();
    }
    return nullptr;
}

// A pybind11 method that a fast method replaced: the plain function, called
// with self as its first argument.
struct ReplacedMethod {
    PyObject* function = nullptr;

    PyObject* call(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* names) const {
        Py_ssize_t count = nargs + (names != nullptr ? PyTuple_GET_SIZE(names) : 0);
        std::vector<PyObject*> stack;
        stack.reserve(static_cast<std::size_t>(count) + 1);
        stack.push_back(self);
        stack.insert(stack.end(), args, args + count);
        return PyObject_Vectorcall(function, stack.data(), nargs + 1, names);
    }
};

ReplacedMethod replaced_write, replaced_getitem, replaced_setitem;
PyObject* replaced_headers_property = nullptr;

PyObject* fast_write(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* names) {
    auto* writer = bound_value<PyResponseWriter>(self);
    if (writer == nullptr || nargs != 1 || names != nullptr) return replaced_write.call(self, args, nargs, names);
    return translate_errors([&] { return PyLong_FromSize_t(writer->write(args[0])); });
}

PyObject* fast_getitem(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* names) {
    auto* header = bound_value<Header>(self);
    if (header == nullptr || nargs != 1 || names != nullptr) return replaced_getitem.call(self, args, nargs, names);
    return translate_errors([&] { return header_item(*header, args[0]).release().ptr(); });
}

PyObject* fast_setitem(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* names) {
    auto* header = bound_value<Header>(self);
    if (header == nullptr || nargs != 2 || names != nullptr) return replaced_setitem.call(self, args, nargs, names);
    return translate_errors([&] {
        set_header_item(*header, args[0], args[1], true);
        return py::none().release().ptr();
    });
}

PyObject* get_writer_headers(PyObject* self, void*) {
    auto* writer = bound_value<PyResponseWriter>(self);
    if (writer == nullptr) {
        return Py_TYPE(replaced_headers_property)
            ->tp_descr_get(replaced_headers_property, self, reinterpret_cast<PyObject*>(Py_TYPE(self)));
    }
    return translate_errors([&] {
        writer->get();
        return writer->headers_object().inc_ref().ptr();
    });
}

// The property was read-only, and assigning or deleting still fails with
// the property's own message.
int set_writer_headers(PyObject* self, PyObject* value, void*) {
    return Py_TYPE(replaced_headers_property)->tp_descr_set(replaced_headers_property, self, value);
}

// The docstring of a replaced attribute, kept for the life of the process
// as PyMethodDef and PyGetSetDef require.
const char* kept_doc(py::handle attribute) {
    py::object doc = attribute.attr("__doc__");
    if (doc.is_none()) return nullptr;
    return strdup(doc.cast<std::string>().c_str());
}

void replace_method(py::handle cls, PyMethodDef& def, ReplacedMethod& replaced) {
    py::object original = cls.attr("__dict__")[def.ml_name];
    PyObject* function = PyInstanceMethod_Check(original.ptr()) ? PyInstanceMethod_GET_FUNCTION(original.ptr())
                                                                : original.ptr();
    replaced.function = py::reinterpret_borrow<py::object>(function).release().ptr();
    def.ml_doc = kept_doc(function);
    PyObject* method = PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), &def);
    if (method == nullptr) throw py::error_already_set();
    py::setattr(cls, def.ml_name, py::reinterpret_steal<py::object>(method));
}

PyMethodDef write_def{"write", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_write)),
                      METH_FASTCALL | METH_KEYWORDS, nullptr};
PyMethodDef getitem_def{"__getitem__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_getitem)),
                        METH_FASTCALL | METH_KEYWORDS, nullptr};
PyMethodDef setitem_def{"__setitem__", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_setitem)),
                        METH_FASTCALL | METH_KEYWORDS, nullptr};
PyGetSetDef writer_headers_def{"headers", get_writer_headers, set_writer_headers, nullptr, nullptr};

void install_fast_methods(py::module_& m) {
    py::object headers = m.attr("Headers");
    py::object writer = m.attr("ResponseWriter");
    replace_method(headers, getitem_def, replaced_getitem);
    replace_method(headers, setitem_def, replaced_setitem);
    replace_method(writer, write_def, replaced_write);

    py::object property = writer.attr("__dict__")["headers"];
    replaced_headers_property = property.inc_ref().ptr();
    writer_headers_def.doc = kept_doc(property);
    PyObject* getset = PyDescr_NewGetSet(reinterpret_cast<PyTypeObject*>(writer.ptr()), &writer_headers_def);
    if (getset == nullptr) throw py::error_already_set();
    py::setattr(writer, "headers", py::reinterpret_steal<py::object>(getset));
}

void bind_server(py::module_& m) {
    py::class_<PyServer>(m, "Server", "Engine server; use gobind.Server instead.")
        .def(py::init([](double read_header_timeout, double read_timeout, double write_timeout,
                         double idle_timeout, std::int64_t max_header_bytes, std::int64_t max_concurrent_calls,
                         std::string tls_cert_file, std::string tls_key_file, bool http2_cleartext,
                         std::int64_t max_request_line_bytes, std::int64_t max_header_field_bytes,
                         std::int64_t max_header_fields) {
                 Config config;
                 config.read_header_timeout = to_ms(read_header_timeout);
                 config.read_timeout = to_ms(read_timeout);
                 config.write_timeout = to_ms(write_timeout);
                 config.idle_timeout = to_ms(idle_timeout);
                 config.max_header_bytes = max_header_bytes;
                 config.max_concurrent_calls = max_concurrent_calls;
                 config.tls_cert_file = std::move(tls_cert_file);
                 config.tls_key_file = std::move(tls_key_file);
                 config.http2_cleartext = http2_cleartext;
                 config.max_request_line_bytes = max_request_line_bytes;
                 config.max_header_field_bytes = max_header_field_bytes;
                 config.max_header_fields = max_header_fields;
                 return std::make_unique<PyServer>(config);
             }),
             py::kw_only(), py::arg("read_header_timeout") = 0.0, py::arg("read_timeout") = 0.0,
             py::arg("write_timeout") = 0.0, py::arg("idle_timeout") = 0.0, py::arg("max_header_bytes") = 0,
             py::arg("max_concurrent_calls") = 0, py::arg("tls_cert_file") = "", py::arg("tls_key_file") = "",
             py::arg("http2_cleartext") = false,
             py::arg("max_request_line_bytes") = 0,
             py::arg("max_header_field_bytes") = 0, py::arg("max_header_fields") = 0)
        .def("set_hooks", &PyServer::set_hooks, py::arg("on_error"), py::arg("access_log"))
        .def("handle", &PyServer::handle, py::arg("pattern"), py::arg("handler"))
        .def("handle_all", &PyServer::handle_all, py::arg("handler"))
        .def("set_log", &PyServer::set_log, py::arg("function"))
        .def("set_access_log", &PyServer::set_access_log, py::arg("function"),
             "Call function(remote, method, target, protocol, status, size, seconds) for\n"
             "each response the engine makes itself, such as the router's 404; None stops it.")
        .def("start", [](PyServer& s, std::string address) {
            BlockingCall release;
            return s.server().start(address);
        }, py::arg("address"))
        .def("wait", [](PyServer& s, py::object timeout) {
            std::optional<std::chrono::milliseconds> limit;
            if (!timeout.is_none()) limit = to_ms(timeout.cast<double>());
            BlockingCall release;
            return s.server().wait(limit);
        }, py::arg("timeout") = py::none())
        .def("shutdown", [](PyServer& s, double timeout) {
            auto limit = to_ms(timeout);
            BlockingCall release;
            return s.server().shutdown(limit);
        }, py::arg("timeout"))
        .def("close", [](PyServer& s) {
            BlockingCall release;
            s.server().close();
        })
        .def("release", [](PyServer& s) {
            BlockingCall release;
            s.server().release();
        })
        .def("stats", [](PyServer& s) {
            auto stats = s.server().stats();
            return py::make_tuple(stats.active_requests, stats.open_connections);
        });
}

void register_exceptions() {
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const gobind::Error& e) {
            switch (e.code()) {
                case ErrorCode::invalid_argument:
                    PyErr_SetString(PyExc_ValueError, e.what());
                    return;
                case ErrorCode::wrong_state:
                case ErrorCode::unknown_handle:
                case ErrorCode::engine_panic:
                    PyErr_SetString(PyExc_RuntimeError, e.what());
                    return;
                case ErrorCode::timeout:
                    PyErr_SetObject(PyExc_TimeoutError, py::make_tuple(ETIMEDOUT, e.what()).ptr());
                    return;
                case ErrorCode::os_error:
                    PyErr_SetObject(PyExc_OSError, py::make_tuple(e.sys_errno(), e.what()).ptr());
                    return;
                case ErrorCode::io_error:
                    PyErr_SetString(PyExc_ConnectionError, e.what());
                    return;
            }
            PyErr_SetString(PyExc_RuntimeError, e.what());
        }
    });
}

}  // namespace

PYBIND11_MODULE(_gobind, m) {
    m.doc() = "Native core of gobind: Go's net/http engine behind a C++ API.";
    register_exceptions();
    bind_headers(m);
    bind_request(m);
    bind_response_writer(m);
    bind_server(m);
    install_fast_methods(m);

    m.def("close_calls", [](double timeout) {
        auto limit = to_ms(timeout);
        BlockingCall release;
        return call_gate().close(limit);
    }, py::arg("timeout"),
          "Stop Go threads from entering Python and wait up to timeout seconds for those inside.\n"
          "Returns how many are still inside. Irreversible: for interpreter exit.");
    m.def("open_listener", [](std::string address) {
        Listener listener;
        {
            BlockingCall release;
            listener = open_listener(address);
        }
        return py::make_tuple(listener.fd, listener.address);
    }, py::arg("address"),
          "Bind address without serving it; returns (fd, bound address). The descriptor is\n"
          "close-on-exec and the caller's, for worker processes that serve it as \"fd:N\".");
    m.def("forked", &gobind::forked_after_start,
          "True in a child forked after gobind was imported, where the engine cannot run.");

    // The WSGI adapter's native helpers (gobind.wsgi).
    py::class_<WsgiResponse>(m, "WsgiResponse", "start_response of one WSGI request, valid while it runs.")
        .def("__call__",
             [](py::object self, py::object status, py::object headers, py::object exc_info) {
                 return self.cast<WsgiResponse&>().start(self, std::move(status), std::move(headers),
                                                         std::move(exc_info));
             },
             py::arg("status"), py::arg("headers"), py::arg("exc_info") = py::none())
        .def("write", &WsgiResponse::write, py::arg("data"), "The write() callable of PEP 3333.");
    py::class_<WsgiHandler>(m, "WsgiHandler", "Runs a WSGI app for each request; use gobind.wsgi instead.")
        .def(py::init([](py::object app, py::dict base, std::string script_name, py::object input_type,
                         py::object too_large_type, py::object defaults, py::object disconnect_log,
                         py::object file_wrapper_type, std::int64_t max_body_bytes) {
                 return WsgiHandler{std::move(app), std::move(base), std::move(script_name),
                                    std::move(input_type), std::move(too_large_type),
                                    py::tuple(defaults), std::move(disconnect_log),
                                    std::move(file_wrapper_type), max_body_bytes};
             }),
             py::kw_only(), py::arg("app"), py::arg("base"), py::arg("script_name"), py::arg("input_type"),
             py::arg("too_large_type"), py::arg("defaults"), py::arg("disconnect_log"),
             py::arg("file_wrapper_type"), py::arg("max_body_bytes"))
        .def("__call__", &WsgiHandler::call, py::arg("writer"), py::arg("request"));
    // Queue mode for event loops (gobind.asgi).
    bind_asgi(m);
    m.def("server_handle", [](PyServer& s) { return s.server().native_handle(); }, py::arg("server"),
          "The engine handle of a Server, for AsgiQueue.");
}
