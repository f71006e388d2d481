#include "gobind/server.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <thread>
#include <utility>

#include "gobind.h"
#include "status.hpp"

namespace gobind {
namespace {

std::atomic<bool> forked{false};

// A child forked after the Go runtime started has lost the runtime's
// threads, and any call into Go hangs there. The flag turns that hang into
// an error.
[[maybe_unused]] const int fork_hook =
    pthread_atfork(nullptr, nullptr, [] { forked.store(true, std::memory_order_relaxed); });

std::int64_t to_ms(std::chrono::milliseconds duration) { return duration.count(); }

// Write a line as the engine's default log does: local time, "gobind:", text.
void log_to_stderr(std::string_view line) noexcept {
    std::time_t now = std::time(nullptr);
    std::tm local{};
    char stamp[32] = "";
    if (localtime_r(&now, &local) != nullptr) {
        std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S ", &local);
    }
    std::fprintf(stderr, "%sgobind: %.*s\n", stamp, static_cast<int>(line.size()), line.data());
}

// Pass a line to log when it is set, else to standard error; never throws.
void write_log(const LogFunction* log, std::string_view line) noexcept {
    if (log == nullptr || !*log) {
        log_to_stderr(line);
        return;
    }
    try {
        (*log)(line);
    } catch (...) {
        log_to_stderr("log function threw an exception; the line it received follows");
        log_to_stderr(line);
    }
}

void check_not_forked() {
    if (forked_after_start()) {
        throw Error(ErrorCode::wrong_state,
                    "gobind cannot run in a process forked after it was loaded: the Go runtime "
                    "does not survive fork(). Start worker processes with spawn or exec instead "
                    "(multiprocessing.set_start_method(\"spawn\")).");
    }
}

}  // namespace

bool forked_after_start() noexcept { return forked.load(std::memory_order_relaxed); }

/// One registered handler; the engine keeps a pointer to it as user data.
struct Server::Route {
    Handler handler;
    std::shared_ptr<LogFunction> log;
    std::string pattern;
};

Server::Server(Config config) : log_(std::make_shared<LogFunction>()), config_(std::move(config)) {
    check_not_forked();
    gobind_config settings{};
    settings.read_header_timeout_ms = to_ms(config_.read_header_timeout);
    settings.read_timeout_ms = to_ms(config_.read_timeout);
    settings.write_timeout_ms = to_ms(config_.write_timeout);
    settings.idle_timeout_ms = to_ms(config_.idle_timeout);
    settings.max_header_bytes = config_.max_header_bytes;
    settings.max_concurrent_calls = config_.max_concurrent_calls;
    settings.tls_cert_file = config_.tls_cert_file.c_str();
    settings.tls_key_file = config_.tls_key_file.c_str();
    settings.http2_cleartext = config_.http2_cleartext ? 1 : 0;
    settings.max_request_line_bytes = config_.max_request_line_bytes;
    settings.max_header_field_bytes = config_.max_header_field_bytes;
    settings.max_header_fields = config_.max_header_fields;
    detail::EngineError error;
    detail::check(gobind_server_new(&settings, &handle_, error.get()), error,
                  "creating server failed");
}

Server::~Server() { release(); }

Server::Server(Server&& other) noexcept
    : handle_(std::exchange(other.handle_, 0)),
      routes_(std::move(other.routes_)),
      log_(std::move(other.log_)),
      access_(std::move(other.access_)),
      config_(std::move(other.config_)),
      address_(std::move(other.address_)) {
    other.address_.clear();
}

Server& Server::operator=(Server&& other) noexcept {
    if (this != &other) {
        release();
        handle_ = std::exchange(other.handle_, 0);
        routes_ = std::move(other.routes_);
        log_ = std::move(other.log_);
        access_ = std::move(other.access_);
        config_ = std::move(other.config_);
        address_ = std::exchange(other.address_, std::string());
    }
    return *this;
}

void Server::check_open() const {
    check_not_forked();
    if (handle_ == 0) {
        throw Error(ErrorCode::unknown_handle, "server is empty: it was moved from or released");
    }
}

void Server::handle(std::string_view pattern, Handler handler) {
    check_open();
    auto route = std::make_unique<Route>(Route{std::move(handler), log_, std::string(pattern)});
    // Room first: once the engine has a pointer to the route, storing the
    // route must not throw.
    routes_.reserve(routes_.size() + 1);
    detail::EngineError error;
    int status = gobind_server_handle(handle_, route->pattern.data(), route->pattern.size(),
                                      &Server::dispatch, route.get(), error.get());
    detail::check(status, error, "registering handler failed");
    routes_.push_back(std::move(route));
}

void Server::handle_all(Handler handler) {
    check_open();
    auto route = std::make_unique<Route>(Route{std::move(handler), log_, "/"});
    routes_.reserve(routes_.size() + 1);
    detail::EngineError error;
    detail::check(gobind_server_handle_all(handle_, &Server::dispatch, route.get(), error.get()),
                  error, "registering handler failed");
    routes_.push_back(std::move(route));
}

void Server::set_log(LogFunction log) {
    check_open();
    // Routes share log_, so the function is replaced in place.
    *log_ = std::move(log);
    auto forward = [](void* user_data, const char* line, std::size_t size) {
        auto* function = static_cast<LogFunction*>(user_data);
        try {
            if (*function) (*function)(std::string_view(line, size));
        } catch (...) {
            std::fprintf(stderr, "gobind: log function threw; line was: %.*s\n",
                         static_cast<int>(size), line);
        }
    };
    gobind_server_set_log(handle_, forward, log_.get());
}

void Server::set_access_log(AccessFunction access) {
    check_open();
    if (!access) {
        gobind_server_set_access_log(handle_, nullptr, nullptr);
        access_.reset();
        return;
    }
    auto forward = [](void* user_data, const gobind_access_entry* entry) {
        AccessEntry view;
        view.remote_addr = std::string_view(entry->remote_addr, entry->remote_addr_len);
        view.method = std::string_view(entry->method, entry->method_len);
        view.target = std::string_view(entry->target, entry->target_len);
        view.protocol = std::string_view(entry->protocol, entry->protocol_len);
        view.status = entry->status;
        view.body_bytes = entry->body_bytes;
        view.seconds = entry->seconds;
        try {
            (*static_cast<AccessFunction*>(user_data))(view);
        } catch (...) {
            // Nothing may unwind into Go, and an access line is not worth a crash.
        }
    };
    auto replacement = std::make_unique<AccessFunction>(std::move(access));
    gobind_server_set_access_log(handle_, forward, replacement.get());
    access_ = std::move(replacement);
}

std::string Server::start(std::string_view address) {
    check_open();
    char bound[512];
    detail::EngineError error;
    detail::check(gobind_server_start(handle_, const_cast<char*>(address.data()), address.size(),
                                      bound, sizeof bound, error.get()),
                  error, "starting server failed");
    address_ = bound;
    return address_;
}

std::string Server::start() { return start(config_.address); }

Listener open_listener(std::string_view address) {
    check_not_forked();
    char bound[512];
    int fd = -1;
    detail::EngineError error;
    detail::check(gobind_listener_open(const_cast<char*>(address.data()), address.size(), &fd,
                                       bound, sizeof bound, error.get()),
                  error, "opening listener failed");
    return Listener{fd, bound};
}

bool Server::wait(std::optional<std::chrono::milliseconds> timeout) {
    check_open();
    detail::EngineError error;
    int status = gobind_server_wait(handle_, timeout ? to_ms(*timeout) : -1, error.get());
    if (status == GOBIND_ERR_TIMEOUT) return false;
    detail::check(status, error, "waiting for server failed");
    return true;
}

bool Server::shutdown() { return shutdown(config_.shutdown_timeout); }

bool Server::shutdown(std::chrono::milliseconds timeout) {
    check_open();
    detail::EngineError error;
    int status = gobind_server_shutdown(handle_, to_ms(timeout), error.get());
    if (status == GOBIND_ERR_TIMEOUT) return false;
    detail::check(status, error, "shutting down server failed");
    return true;
}

void Server::close() {
    if (handle_ == 0) return;
    check_open();
    gobind_server_close(handle_);
}

void Server::release() noexcept {
    if (handle_ == 0 || forked_after_start()) return;
    // Log lines after this point go to stderr, so log_ can be destroyed,
    // and access_ receives nothing more.
    gobind_server_set_log(handle_, nullptr, nullptr);
    gobind_server_set_access_log(handle_, nullptr, nullptr);
    gobind_server_free(handle_);
    handle_ = 0;
}

void Server::log(std::string_view line) const { write_log(log_.get(), line); }

void Server::listen_and_serve() {
    if (!config_.handle_signals) {
        check_open();
        if (address_.empty()) start();
        wait();
        return;
    }
    SignalGuard signals;
    listen_and_serve(signals);
}

void Server::listen_and_serve(SignalGuard& signals) {
    check_open();
    if (address_.empty()) start();
    serve_until_signal(signals);
}

// Three threads cooperate. A watcher waits for the server to stop and then
// wakes this thread. A stopper runs the graceful shutdown after the first
// signal. This thread keeps waiting for signals, so that a second one can
// still force the close while the stopper waits for in-flight requests.
void Server::serve_until_signal(SignalGuard& signals) {
    std::atomic<bool> stopped{false};
    std::exception_ptr serve_error;
    std::thread watcher([this, &signals, &stopped, &serve_error] {
        try {
            wait();
        } catch (...) {
            serve_error = std::current_exception();
        }
        stopped.store(true);
        signals.interrupt();
    });
    // Returns the next signal, or 0 once the server has stopped. Interrupts
    // that others sent to the guard are ignored.
    auto next_signal = [&signals, &stopped] {
        for (;;) {
            int signal = signals.wait();
            if (signal != 0 || stopped.load()) return signal;
        }
    };

    std::thread stopper;
    std::exception_ptr stop_error;
    try {
        int signal = next_signal();
        if (signal != 0) {
            std::int64_t active = stats().active_requests;
            log("received " + signal_name(signal) + ": shutting down, waiting up to " +
                std::to_string(config_.shutdown_timeout.count()) + " ms for " +
                std::to_string(active) + (active == 1 ? " in-flight request" : " in-flight requests") +
                "; send it again to close every connection now");
            stopper = std::thread([this, &stop_error] {
                try {
                    if (!shutdown()) {
                        log("graceful shutdown timed out after " +
                            std::to_string(config_.shutdown_timeout.count()) +
                            " ms; closed the remaining connections");
                    }
                } catch (...) {
                    stop_error = std::current_exception();
                }
            });
            int again = next_signal();
            if (again != 0) {
                log("received " + signal_name(again) + " again: closing every connection");
                close();
            }
        }
    } catch (...) {
        // The threads must end before their captures go out of scope.
        gobind_server_close(handle_);
        if (stopper.joinable()) stopper.join();
        watcher.join();
        throw;
    }

    if (stopper.joinable()) stopper.join();
    watcher.join();
    if (serve_error) std::rethrow_exception(serve_error);
    if (stop_error) std::rethrow_exception(stop_error);
}

Stats Server::stats() const {
    check_open();
    Stats stats;
    gobind_server_stats(handle_, &stats.active_requests, &stats.open_connections);
    return stats;
}

std::int64_t Server::dispatch(void* user_data, std::uint64_t call, const char* data,
                              std::size_t size, char* response,
                              std::size_t response_capacity) noexcept {
    auto* route = static_cast<Route*>(user_data);
    auto report = [route](const char* what) {
        try {
            std::string line = std::string("handler for \"") + route->pattern + "\" failed: " + what;
            write_log(route->log.get(), line);
        } catch (...) {
        }
    };

    try {
        Request request(call, data, size);
        ResponseWriter writer(call, response, response_capacity);
        try {
            route->handler(request, writer);
            writer.complete();
        } catch (const std::exception& error) {
            report(error.what());
            writer.fail(request.failure_status());
        } catch (...) {
            report("unknown exception");
            writer.fail(request.failure_status());
        }
        if (writer.aborted()) return GOBIND_HANDLER_ABORT;
        return static_cast<std::int64_t>(writer.inline_size());
    } catch (const std::exception& error) {
        report(error.what());
    } catch (...) {
        report("unknown exception");
    }
    return GOBIND_HANDLER_ABORT;
}

}  // namespace gobind
