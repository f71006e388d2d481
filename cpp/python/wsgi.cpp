#include "wsgi.hpp"

#include <array>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

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
        // A name with '_' would collide with the same name spelled with
        // '-' once mapped to a CGI key; such fields are dropped, as nginx
        // and gunicorn do by default.
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

void set_addresses(PyObject* environ, const gobind::Request& request, bool server_from_socket) {
    std::string_view host, port;
    if (split_host_port(request.remote_addr(), host, port)) {
        set_item(environ, keys().remote_addr, header_text(host));
        set_item(environ, keys().remote_port, header_text(port));
    } else {
        set_item(environ, keys().remote_addr, header_text(request.remote_addr()));
    }
    if (server_from_socket && split_host_port(request.local_addr(), host, port)) {
        set_item(environ, keys().server_name, header_text(host));
        set_item(environ, keys().server_port, text(port));
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
    // Over a Unix socket the base environ carries SERVER_NAME and SERVER_PORT.
    set_addresses(dict, request, PyDict_Contains(dict, keys().server_name) == 0);
    set_headers(dict, request);
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
