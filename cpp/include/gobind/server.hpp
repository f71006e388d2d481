// gobind/server.hpp: Go's net/http server with C++ handlers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gobind/error.hpp"
#include "gobind/header.hpp"
#include "gobind/request.hpp"
#include "gobind/response.hpp"

namespace gobind {

/// Server settings. Zero selects the engine's default, given in brackets;
/// no default turns a protection off.
struct Config {
    std::chrono::milliseconds read_header_timeout{0};  ///< header block read [10 s]
    std::chrono::milliseconds read_timeout{0};         ///< one body read [60 s]
    std::chrono::milliseconds write_timeout{0};        ///< one response write [60 s]
    std::chrono::milliseconds idle_timeout{0};         ///< keep-alive wait [75 s]
    std::int64_t max_header_bytes = 0;                 ///< request line + header [64 KiB]
    std::int64_t max_concurrent_calls = 0;             ///< handlers at once [0: no bound]
    std::int64_t max_request_line_bytes = 0;           ///< request line, else 414 [8190]
    std::int64_t max_header_field_bytes = 0;           ///< one header field line, else 431 [8190]
    std::int64_t max_header_fields = 0;                ///< header field lines, else 431 [100]
};

/// A request handler. Handlers run concurrently on Go-created threads, so
/// anything they share needs synchronization. An exception escaping a
/// handler becomes a 500 response (or a closed connection when the
/// response had started) and a line in the server's log.
using Handler = std::function<void(Request&, ResponseWriter&)>;

/// Receives the lines of the server's error log, from any thread.
using LogFunction = std::function<void(std::string_view line)>;

/// Snapshot of a server's load.
struct Stats {
    std::int64_t active_requests = 0;
    std::int64_t open_connections = 0;
};

/// Owner of one engine server. Register handlers, start, then wait or shut
/// down. The destructor closes the server and waits for running handlers.
class Server {
public:
    explicit Server(Config config = {});
    ~Server();
    Server(Server&& other) noexcept;
    Server& operator=(Server&& other) noexcept;
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Route requests matching a net/http ServeMux pattern, such as
    /// "GET /items/{id}", to handler. Throws Error with
    /// ErrorCode::invalid_argument for invalid or conflicting patterns.
    void handle(std::string_view pattern, Handler handler);

    /// Route every request to handler, bypassing pattern matching and its
    /// path cleaning and redirects.
    void handle_all(Handler handler);

    /// Send the error log to log instead of standard error.
    void set_log(LogFunction log);

    /// Bind address ("host:port", port 0 for any free port, "[::1]:0", or
    /// "unix:/path") and serve in the background. Returns the bound address.
    std::string start(std::string_view address);

    /// Block until the server stops or timeout passes (none: no limit).
    /// Returns true when the server has stopped.
    bool wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

    /// Stop accepting and wait up to timeout for in-flight requests; then
    /// close what is left. Returns false when the timeout cut requests off.
    bool shutdown(std::chrono::milliseconds timeout);

    /// Close the listener and every connection at once.
    void close();

    /// Close, wait until no handler runs, and release the engine's server.
    /// The handlers stay allocated until the destructor. Idempotent.
    void release() noexcept;

    Stats stats() const;

private:
    struct Route;

    void check_open() const;
    static int dispatch(void* route, std::uint64_t call, const char* request,
                        std::size_t size) noexcept;

    std::uint64_t handle_ = 0;
    std::vector<std::unique_ptr<Route>> routes_;
    std::shared_ptr<LogFunction> log_;
};

/// True in a child process forked after the Go runtime started. Such a
/// child cannot run Go code, so every Server method throws there.
bool forked_after_start() noexcept;

}  // namespace gobind
