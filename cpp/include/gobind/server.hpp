// gobind/server.hpp: Go's net/http server with C++ handlers.
//
// Threading contract
//
// The engine is Go's net/http: every request runs its handler on a thread
// that the Go runtime created, and handlers of different requests run at
// the same time, on several threads (Config::max_concurrent_calls bounds
// how many). So:
//
// - A handler's Request and ResponseWriter belong to that call alone: use
//   them from the handler's thread, and only until the handler returns.
//   Keep no pointer, reference or string_view into them afterwards.
// - Anything else a handler touches (captured state, globals, caches) is
//   shared with other handlers and needs its own synchronization.
// - A handler may block (locks, disk, other services): it holds one Go
//   thread meanwhile, and Go starts more threads for other requests.
// - An exception that escapes a handler becomes a 500 response, or a
//   closed connection when part of the response was already sent, plus one
//   line in the server's log naming the pattern and what(). It never
//   unwinds into Go. Handlers must not call longjmp across the engine, and
//   must not call fork() without exec (the Go runtime does not survive it).
// - Once start() has returned, Server::shutdown, close, wait, stats and
//   address may be called from any thread, also while another thread is
//   inside listen_and_serve() or wait(). A handler may call close() and
//   stats(); shutdown() and wait() from a handler would wait for that
//   handler itself. Configure a server (handle, handle_all, set_log, set_access_log) and
//   start it from one thread; move or destroy it only when no other thread
//   uses it.
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
#include "gobind/signal.hpp"

namespace gobind {

/// Server settings. A zero timeout or size selects the engine's default,
/// given in brackets; no default turns a protection off.
struct Config {
    /// Address that start() and listen_and_serve() bind: "host:port" (port 0
    /// for any free port), "[::1]:port" for IPv6, "unix:/path", or "fd:N"
    /// for a listening socket inherited as descriptor N (see open_listener).
    std::string address = "127.0.0.1:8000";
    std::chrono::milliseconds read_header_timeout{0};  ///< header block read [10 s]
    std::chrono::milliseconds read_timeout{0};         ///< one body read [60 s]
    std::chrono::milliseconds write_timeout{0};        ///< one response write [60 s]
    std::chrono::milliseconds idle_timeout{0};         ///< keep-alive wait [75 s]
    std::int64_t max_header_bytes = 0;                 ///< request line + header [64 KiB]
    std::int64_t max_concurrent_calls = 0;             ///< handlers at once [0: no bound]
    std::string tls_cert_file{};  ///< PEM certificate chain; empty: plain HTTP
    std::string tls_key_file{};   ///< PEM private key, needed with tls_cert_file
    bool http2_cleartext = false;  ///< also accept HTTP/2 without TLS (prior knowledge)

    /// How long listen_and_serve() lets in-flight requests finish after a
    /// caught signal before it closes the remaining connections.
    std::chrono::milliseconds shutdown_timeout{30000};

    /// Whether listen_and_serve() catches SIGINT and SIGTERM (through a
    /// SignalGuard) and shuts down on the first one; a second one closes
    /// every connection at once. Off by default: the program owns its signals.
    bool handle_signals = false;
    std::int64_t max_request_line_bytes = 0;           ///< request line, else 414 [8190]
    std::int64_t max_header_field_bytes = 0;           ///< one header field line, else 431 [8190]
    std::int64_t max_header_fields = 0;                ///< header field lines, else 431 [100]
};

/// A request handler. Handlers run concurrently on Go-created threads, so
/// anything they share needs synchronization. An exception escaping a
/// handler becomes a 500 response (or a closed connection when the
/// response had started) and a line in the server's log. A function taking
/// `const Request&` fits as well.
using Handler = std::function<void(Request&, ResponseWriter&)>;

/// Receives the lines of the server's error log, without a newline, from
/// any thread and possibly from several at once.
using LogFunction = std::function<void(std::string_view line)>;

/// A response that the engine made itself, without a handler: a 404 or 405
/// of the router, a 503 while the server shuts down, or a 400, 408 or 413 for a
/// request body that queue mode could not read. The views are valid for
/// the call only.
struct AccessEntry {
    std::string_view remote_addr;
    std::string_view method;
    std::string_view target;  ///< the request-target as sent
    std::string_view protocol;
    int status = 0;
    std::uint64_t body_bytes = 0;
    double seconds = 0;
};

/// Receives the responses the engine makes itself, from any thread and
/// possibly from several at once.
using AccessFunction = std::function<void(const AccessEntry& entry)>;

/// Snapshot of a server's load.
struct Stats {
    /// Requests inside handlers or waiting for a free handler slot.
    std::int64_t active_requests = 0;
    std::int64_t open_connections = 0;
};

/// Owner of one engine server. Register handlers, start, then wait or shut
/// down. The destructor closes the server and waits for running handlers.
///
/// A Server is move-only. Handlers stay registered across a move; a
/// moved-from Server is empty: close() and release() do nothing and the
/// other methods throw Error with ErrorCode::unknown_handle.
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

    /// Send the error log to log instead of standard error. Call it before
    /// start(): replacing the function while handlers run is a data race.
    void set_log(LogFunction log);

    /// Report each response that the engine makes itself to access, so
    /// that an access log can show them next to those of the handlers,
    /// which log their own. An exception from access is dropped. Call it
    /// before start(), as set_log.
    void set_access_log(AccessFunction access);

    /// Bind address ("host:port", port 0 for any free port, "[::1]:0", or
    /// "unix:/path") and serve in the background. Returns the bound address,
    /// such as "127.0.0.1:41234". With "fd:N" the server serves the listening
    /// socket of descriptor N instead, and takes N over: it closes N once
    /// started. Throws Error: ErrorCode::os_error when binding fails
    /// (sys_errno() returns the errno, such as EADDRINUSE), invalid_argument
    /// for a malformed address or a descriptor that is not a listening
    /// socket, wrong_state when the server was started before.
    std::string start(std::string_view address);

    /// Start on Config::address.
    std::string start();

    /// The address bound by start(), or an empty string before it.
    const std::string& address() const noexcept { return address_; }

    /// Start on Config::address unless started, then block until the server
    /// stops: after shutdown() or close() from another thread or a handler,
    /// or, with Config::handle_signals, after SIGINT or SIGTERM. Throws
    /// Error when starting fails or the listener fails while serving, and
    /// std::logic_error when handle_signals is set but a SignalGuard exists.
    void listen_and_serve();

    /// Like listen_and_serve(), with signals caught by a guard that the
    /// caller created earlier, so that no signal is lost between start()
    /// and this call. The first signal shuts the server down gracefully
    /// within Config::shutdown_timeout; a second one closes every
    /// connection at once.
    void listen_and_serve(SignalGuard& signals);

    /// Block until the server stops or timeout passes (none: no limit).
    /// Returns true when the server has stopped.
    bool wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

    /// Stop accepting and wait up to timeout for in-flight requests; then
    /// close what is left. Returns false when the timeout cut requests off.
    bool shutdown(std::chrono::milliseconds timeout);

    /// Shut down within Config::shutdown_timeout.
    bool shutdown();

    /// Close the listener and every connection at once. Handlers still
    /// running continue, but their writes fail.
    void close();

    /// Close, wait until no handler runs, and release the engine's server.
    /// The handlers stay allocated until the destructor. Idempotent.
    void release() noexcept;

    Stats stats() const;

    const Config& config() const noexcept { return config_; }
    /// The engine's handle of this server, for the C ABI (gobind.h); 0 once released.
    std::uint64_t native_handle() const noexcept { return handle_; }

private:
    struct Route;

    void check_open() const;
    void serve_until_signal(SignalGuard& signals);
    void log(std::string_view line) const;
    static std::int64_t dispatch(void* route, std::uint64_t call, const char* request,
                                 std::size_t size, char* response,
                                 std::size_t response_capacity) noexcept;

    std::uint64_t handle_ = 0;
    std::vector<std::unique_ptr<Route>> routes_;
    std::shared_ptr<LogFunction> log_;
    std::unique_ptr<AccessFunction> access_;
    Config config_;
    std::string address_;
};

/// A listening socket that no server of this process serves.
struct Listener {
    int fd = -1;          ///< close-on-exec descriptor; the caller closes it
    std::string address;  ///< the address bound, such as "127.0.0.1:41234"
};

/// Bind address ("host:port" or "unix:/path") as Server::start does, but
/// serve nothing: for a supervisor whose worker processes inherit fd and
/// each serve it with Server::start("fd:N"), sharing one accept queue.
/// Closing fd leaves a Unix socket's file in place. Throws Error as
/// Server::start does.
Listener open_listener(std::string_view address);

/// True in a child process forked after the Go runtime started. Such a
/// child cannot run Go code, so every Server method throws there.
bool forked_after_start() noexcept;

}  // namespace gobind
