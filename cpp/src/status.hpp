// Internal: turn engine status codes into gobind::Error.
#pragma once

#include <string>

#include "gobind.h"
#include "gobind/error.hpp"

namespace gobind::detail {

/// Owns a gobind_error and releases its message.
struct EngineError {
    gobind_error value{};
    EngineError() = default;
    EngineError(const EngineError&) = delete;
    EngineError& operator=(const EngineError&) = delete;
    ~EngineError() { gobind_error_clear(&value); }
    gobind_error* get() noexcept { return &value; }
};

/// Throw gobind::Error for a failed status, keeping the engine's message.
[[noreturn]] inline void raise(int status, const gobind_error& error, const char* fallback) {
    std::string message = error.message != nullptr ? error.message : fallback;
    throw Error(static_cast<ErrorCode>(status), message, error.sys_errno);
}

inline void check(int status, EngineError& error, const char* fallback) {
    if (status != GOBIND_OK) {
        raise(status, error.value, fallback);
    }
}

}  // namespace gobind::detail
