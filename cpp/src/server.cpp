#include "gobind/server.hpp"

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <exception>
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

}  // namespace

bool forked_after_start() noexcept { return forked.load(std::memory_order_relaxed); }

/// One registered handler; the engine holds a pointer to it as user data.
struct Server::Route {
    Handler handler;
    std::shared_ptr<LogFunction> log;
    std::string pattern;
};

Server::Server(Config config) : log_(std::make_shared<LogFunction>()) {
    check_open();
    gobind_config settings{};
    settings.read_header_timeout_ms = to_ms(config.read_header_timeout);
    settings.read_timeout_ms = to_ms(config.read_timeout);
    settings.write_timeout_ms = to_ms(config.write_timeout);
    settings.idle_timeout_ms = to_ms(config.idle_timeout);
    settings.max_header_bytes = config.max_header_bytes;
    settings.max_concurrent_calls = config.max_concurrent_calls;
    settings.max_request_line_bytes = config.max_request_line_bytes;
    settings.max_header_field_bytes = config.max_header_field_bytes;
    settings.max_header_fields = config.max_header_fields;
    detail::EngineError error;
    detail::check(gobind_server_new(&settings, &handle_, error.get()), error,
                  "creating server failed");
}

Server::~Server() { release(); }

Server::Server(Server&& other) noexcept
    : handle_(std::exchange(other.handle_, 0)),
      routes_(std::move(other.routes_)),
      log_(std::move(other.log_)) {}

Server& Server::operator=(Server&& other) noexcept {
    if (this != &other) {
        release();
        handle_ = std::exchange(other.handle_, 0);
        routes_ = std::move(other.routes_);
        log_ = std::move(other.log_);
    }
    return *this;
}

void Server::check_open() const {
    if (forked_after_start()) {
        throw Error(ErrorCode::wrong_state,
                    "gobind cannot run in a process forked after it was loaded: the Go runtime "
                    "does not survive fork(). Start worker processes with spawn or exec instead "
                    "(multiprocessing.set_start_method(\"spawn\")).");
    }
}

void Server::handle(std::string_view pattern, Handler handler) {
    check_open();
    auto route = std::make_unique<Route>(Route{std::move(handler), log_, std::string(pattern)});
    detail::EngineError error;
    int status = gobind_server_handle(handle_, route->pattern.data(), route->pattern.size(),
                                      &Server::dispatch, route.get(), error.get());
    detail::check(status, error, "registering handler failed");
    routes_.push_back(std::move(route));
}

void Server::handle_all(Handler handler) {
    check_open();
    auto route = std::make_unique<Route>(Route{std::move(handler), log_, "/"});
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

std::string Server::start(std::string_view address) {
    check_open();
    char bound[512];
    detail::EngineError error;
    detail::check(gobind_server_start(handle_, const_cast<char*>(address.data()), address.size(),
                                      bound, sizeof bound, error.get()),
                  error, "starting server failed");
    return bound;
}

bool Server::wait(std::optional<std::chrono::milliseconds> timeout) {
    check_open();
    detail::EngineError error;
    int status = gobind_server_wait(handle_, timeout ? to_ms(*timeout) : -1, error.get());
    if (status == GOBIND_ERR_TIMEOUT) return false;
    detail::check(status, error, "waiting for server failed");
    return true;
}

bool Server::shutdown(std::chrono::milliseconds timeout) {
    check_open();
    detail::EngineError error;
    int status = gobind_server_shutdown(handle_, to_ms(timeout), error.get());
    if (status == GOBIND_ERR_TIMEOUT) return false;
    detail::check(status, error, "shutting down server failed");
    return true;
}

void Server::close() {
    check_open();
    gobind_server_close(handle_);
}

void Server::release() noexcept {
    if (handle_ == 0 || forked_after_start()) return;
    // Log lines after this point go to stderr, so log_ can be destroyed.
    gobind_server_set_log(handle_, nullptr, nullptr);
    gobind_server_free(handle_);
    handle_ = 0;
}

Stats Server::stats() const {
    check_open();
    Stats stats;
    gobind_server_stats(handle_, &stats.active_requests, &stats.open_connections);
    return stats;
}

int Server::dispatch(void* user_data, std::uint64_t call, const char* data,
                     std::size_t size) noexcept {
    auto* route = static_cast<Route*>(user_data);
    auto report = [route](const char* what) {
        try {
            std::string line = std::string("handler for \"") + route->pattern + "\" failed: " + what;
            if (route->log && *route->log) {
                (*route->log)(line);
            } else {
                std::fprintf(stderr, "gobind: %s\n", line.c_str());
            }
        } catch (...) {
        }
    };

    try {
        Request request(call, data, size);
        ResponseWriter writer(call);
        try {
            route->handler(request, writer);
            writer.finish();
        } catch (const std::exception& error) {
            report(error.what());
            writer.fail(request.body_timed_out() ? 408 : 500);
        } catch (...) {
            report("unknown exception");
            writer.fail(request.body_timed_out() ? 408 : 500);
        }
        return writer.aborted() ? GOBIND_HANDLER_ABORT : GOBIND_HANDLER_OK;
    } catch (const std::exception& error) {
        report(error.what());
    } catch (...) {
        report("unknown exception");
    }
    return GOBIND_HANDLER_ABORT;
}

}  // namespace gobind
