#include "gobind/signal.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>

namespace gobind {
namespace {

// The self-pipe: the signal handler writes one byte per signal into
// pipe_write, and SignalGuard::wait reads them from pipe_read. The pipe is
// created once and never closed, so a handler still running on another
// thread while a guard is destroyed never writes to a closed or reused
// descriptor.
int pipe_read = -1;
int pipe_write = -1;
std::once_flag pipe_once;
std::atomic<bool> guard_exists{false};

static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

void create_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw std::system_error(errno, std::generic_category(), "creating the signal pipe failed");
    }
    pipe_read = fds[0];
    pipe_write = fds[1];
}

// Drop bytes left by signals that arrived after an earlier guard stopped
// waiting.
void drain_pipe() noexcept {
    unsigned char bytes[64];
    while (::read(pipe_read, bytes, sizeof bytes) > 0) {
    }
}

extern "C" void forward_signal(int signal) {
    int saved_errno = errno;
    unsigned char byte = static_cast<unsigned char>(signal);
    // A full pipe (64 KiB of pending signals on Linux) drops the signal.
    [[maybe_unused]] ssize_t written = ::write(pipe_write, &byte, 1);
    errno = saved_errno;
}

}  // namespace

struct SignalGuard::Saved {
    struct sigaction action;
};

SignalGuard::SignalGuard() : SignalGuard({SIGINT, SIGTERM}) {}

SignalGuard::SignalGuard(std::initializer_list<int> signals) : signals_(signals) {
    for (int signal : signals_) {
        if (signal <= 0 || signal >= 256 || signal == SIGKILL || signal == SIGSTOP) {
            throw std::invalid_argument("invalid signal " + std::to_string(signal) +
                                        ": SignalGuard catches signals 1-255 except SIGKILL and SIGSTOP");
        }
    }
    if (guard_exists.exchange(true)) {
        throw std::logic_error("a gobind::SignalGuard already exists; only one may catch signals at a time");
    }
    try {
        std::call_once(pipe_once, create_pipe);
        drain_pipe();

        struct sigaction action {};
        action.sa_handler = forward_signal;
        action.sa_flags = SA_ONSTACK | SA_RESTART;
        sigemptyset(&action.sa_mask);
        saved_.reserve(signals_.size());
        for (int signal : signals_) {
            Saved previous{};
            if (::sigaction(signal, &action, &previous.action) != 0) {
                throw std::system_error(errno, std::generic_category(),
                                        "installing a handler for " + signal_name(signal) + " failed");
            }
            saved_.push_back(previous);
        }
    } catch (...) {
        restore();
        guard_exists.store(false);
        throw;
    }
}

SignalGuard::~SignalGuard() {
    restore();
    guard_exists.store(false);
}

void SignalGuard::restore() noexcept {
    // In reverse order: a signal listed twice was saved the second time
    // with this guard's own handler, so its first saving must win.
    for (std::size_t i = saved_.size(); i-- > 0;) {
        ::sigaction(signals_[i], &saved_[i].action, nullptr);
    }
}

int SignalGuard::wait(std::optional<std::chrono::milliseconds> timeout) {
    using Clock = std::chrono::steady_clock;
    // A timeout beyond what the clock can add to now waits without end.
    const auto now = Clock::now();
    const bool bounded = timeout && *timeout < std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   Clock::time_point::max() - now);
    const auto deadline = bounded ? now + *timeout : Clock::time_point::max();
    for (;;) {
        unsigned char byte = 0;
        ssize_t n = ::read(pipe_read, &byte, 1);
        if (n == 1) return byte;
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "reading the signal pipe failed");
        }

        int wait_ms = -1;
        if (bounded) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return 0;
            wait_ms = left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count());
        }
        pollfd readable{pipe_read, POLLIN, 0};
        if (::poll(&readable, 1, wait_ms) < 0 && errno != EINTR) {
            throw std::system_error(errno, std::generic_category(), "waiting for a signal failed");
        }
    }
}

void SignalGuard::interrupt() noexcept {
    unsigned char byte = 0;
    [[maybe_unused]] ssize_t written = ::write(pipe_write, &byte, 1);
}

int SignalGuard::fd() const noexcept { return pipe_read; }

std::string signal_name(int signal) {
    switch (signal) {
        case SIGINT: return "SIGINT";
        case SIGTERM: return "SIGTERM";
        case SIGHUP: return "SIGHUP";
        case SIGQUIT: return "SIGQUIT";
        case SIGUSR1: return "SIGUSR1";
        case SIGUSR2: return "SIGUSR2";
        default: return "signal " + std::to_string(signal);
    }
}

}  // namespace gobind
