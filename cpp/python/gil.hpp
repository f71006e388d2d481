// Internal: taking the GIL on Go-created threads, and the gate that keeps
// Go threads out of Python while the interpreter finalizes.
#pragma once

#include <Python.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace gobind::python {

/// Returns the thread state that holds the GIL, or null, without the
/// checks of PyThreadState_Get(). Before Python 3.12 it is the one of any
/// thread; from 3.12 on, only the calling thread's own.
inline PyThreadState* gil_holder() noexcept {
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

/// Holds the GIL on a thread that Python did not create. Each OS thread
/// gets one Python thread state on first use and keeps it, so later
/// requests on the same thread skip creating one, and threading.local
/// values survive between requests. A thread that already holds the GIL
/// (a log line emitted while Python calls into Go) is left as it is.
///
/// Whether the thread holds the GIL is found by comparing thread states:
/// PyGILState_Check() returns true on every thread once the process has
/// created a subinterpreter.
class GoThreadGil {
public:
    GoThreadGil() noexcept {
        if (thread_state_ != nullptr) {
            if (gil_holder() == thread_state_) return;
            PyEval_RestoreThread(thread_state_);
        } else {
            PyThreadState* own = PyGILState_GetThisThreadState();
            if (own != nullptr && gil_holder() == own) return;
            // Ensure's count is never dropped, so the state stays alive.
            PyGILState_Ensure();
            thread_state_ = PyThreadState_Get();
        }
        acquired_ = true;
    }

    ~GoThreadGil() {
        if (acquired_) PyEval_SaveThread();
    }

    GoThreadGil(const GoThreadGil&) = delete;
    GoThreadGil& operator=(const GoThreadGil&) = delete;

private:
    static inline thread_local PyThreadState* thread_state_ = nullptr;
    bool acquired_ = false;
};

/// Counts Go threads that are in, or about to enter, Python. Once closed,
/// enter() fails, so no Go thread takes the GIL while or after the
/// interpreter finalizes (a thread doing so would hang or crash).
class CallGate {
public:
    bool enter() noexcept {
        if (count_.fetch_add(1) & closed_bit) {
            count_.fetch_sub(1);
            return false;
        }
        return true;
    }

    void exit() noexcept { count_.fetch_sub(1); }

    /// Close the gate and wait up to timeout for the calls inside to leave.
    /// Returns the number still inside. The caller must not hold the GIL.
    std::int64_t close(std::chrono::milliseconds timeout) noexcept {
        count_.fetch_or(closed_bit);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (inside() > 0 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return inside();
    }

    std::int64_t inside() const noexcept { return count_.load() & ~closed_bit; }

private:
    static constexpr std::int64_t closed_bit = std::int64_t{1} << 62;
    std::atomic<std::int64_t> count_{0};
};

/// The one gate of this process.
CallGate& call_gate() noexcept;

/// Enters the gate for a scope; check entered() before touching Python.
class GateEntry {
public:
    GateEntry() noexcept : entered_(call_gate().enter()) {}
    ~GateEntry() {
        if (entered_) call_gate().exit();
    }
    GateEntry(const GateEntry&) = delete;
    GateEntry& operator=(const GateEntry&) = delete;
    bool entered() const noexcept { return entered_; }

private:
    bool entered_;
};

}  // namespace gobind::python
