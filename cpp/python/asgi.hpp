// Internal: the event-loop side of the engine's queue mode, for gobind.asgi.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gobind::python {

namespace py = pybind11;

/// Interned scope keys and values, defined in asgi.cpp.
struct ScopeNames;

/// The request queue of one engine server. Requests arrive as ASGI http
/// scopes built in C++; reads and writes are submitted without blocking and
/// complete as later events. Used with the GIL held, on the event loop's
/// thread only.
class AsgiQueue {
public:
    /// Put server (an engine handle) in queue mode. wake_fd is an eventfd
    /// that the caller owns and keeps open until the server is released.
    /// Scopes are shallow copies of scope_template; root_path prefixes
    /// path and raw_path.
    AsgiQueue(std::uint64_t server, int wake_fd, py::dict scope_template, std::string root_path);

    py::list drain();
    void read(std::uint64_t call, std::size_t size);
    void submit(std::uint64_t call, int kind, int status, py::handle header, py::handle body, int flags);
    /// Append an operation to the batch that flush() submits in one engine call.
    void defer(std::uint64_t call, int kind, int status, py::handle header, py::handle body, int flags);
    void flush();
    void set_max_body_bytes(std::int64_t max_bytes);
    void close();

private:
    void decode_events(std::string_view buffer, py::list& events);
    py::object make_scope(std::string_view request);
    static std::string encode_header(py::handle pairs);

    std::uint64_t server_;
    int wake_fd_;
    py::dict template_;
    std::string root_path_;
    std::shared_ptr<ScopeNames> names_;
    std::vector<char> buffer_;
    std::string batch_;
};

/// Bind AsgiQueue and the queue constants into m.
void bind_asgi(py::module_& m);

}  // namespace gobind::python
