// gobind/signal.hpp: opt-in handling of SIGINT and SIGTERM for programs
// that let a gobind::Server decide when to stop.
#pragma once

#include <chrono>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace gobind {

/// Catches termination signals while it lives and turns them into events
/// that a thread can wait for. Construction installs a handler for each
/// signal that writes the signal number into a pipe. The handler uses
/// SA_ONSTACK, because the Go runtime requires it of foreign handlers that
/// can run on its threads. Destruction restores the previous handlers. The Go engine never installs handlers for these
/// signals, so without a SignalGuard they keep the disposition the program
/// gave them (by default, SIGINT and SIGTERM terminate the process).
///
/// One SignalGuard may exist at a time in a process; constructing a second
/// one throws std::logic_error. Create it before starting any work that a
/// signal should interrupt, ideally early in main().
///
/// Threads: wait() and fd() belong to one waiting thread; interrupt() may be
/// called from any thread and from signal handlers.
class SignalGuard {
public:
    /// Catch `signals` (default SIGINT and SIGTERM). Throws std::logic_error
    /// when another SignalGuard exists, std::invalid_argument for a signal
    /// that cannot be caught, std::system_error when sigaction or pipe fails.
    SignalGuard();
    explicit SignalGuard(std::initializer_list<int> signals);
    ~SignalGuard();

    SignalGuard(const SignalGuard&) = delete;
    SignalGuard& operator=(const SignalGuard&) = delete;

    /// Block until a caught signal arrives, interrupt() is called, or
    /// timeout passes (none: no limit). Returns the signal number, or 0 for
    /// an interrupt or a timeout. Signals that arrive while no thread waits
    /// are queued and returned by later calls, in order.
    int wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

    /// Wake the thread blocked in wait(), which then returns 0; if none
    /// waits, the next wait() returns 0 at once. Async-signal-safe.
    void interrupt() noexcept;

    /// File descriptor that becomes readable when a signal or an interrupt
    /// is pending, for poll() or epoll loops; call wait() to consume it.
    int fd() const noexcept;

    /// The signals this guard catches.
    const std::vector<int>& signals() const noexcept { return signals_; }

private:
    struct Saved;

    /// Put back the handlers that were there before this guard.
    void restore() noexcept;

    std::vector<int> signals_;
    std::vector<Saved> saved_;
};

/// Name of a signal for log lines: "SIGINT", "SIGTERM", else "signal N".
std::string signal_name(int signal);

}  // namespace gobind
