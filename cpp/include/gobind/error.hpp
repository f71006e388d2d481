// gobind/error.hpp: the exception type of the gobind C++ API.
#pragma once

#include <stdexcept>
#include <string>

namespace gobind {

/// Status codes of the engine; the values match gobind_status in gobind.h.
enum class ErrorCode : int {
    invalid_argument = 1,  ///< bad pattern, address, header or status
    unknown_handle = 2,    ///< the server or request is gone
    wrong_state = 3,       ///< already started, not started, already finished
    os_error = 4,          ///< a system call failed; see Error::sys_errno()
    timeout = 5,           ///< a timeout passed
    io_error = 6,          ///< the connection failed or the client went away
    engine_panic = 7,      ///< the Go engine panicked and recovered
};

/// An engine failure, with Go's message kept unchanged.
class Error : public std::runtime_error {
public:
    Error(ErrorCode code, const std::string& message, int sys_errno = 0)
        : std::runtime_error(message), code_(code), sys_errno_(sys_errno) {}

    ErrorCode code() const noexcept { return code_; }

    /// errno of the failed system call for ErrorCode::os_error, else 0.
    int sys_errno() const noexcept { return sys_errno_; }

private:
    ErrorCode code_;
    int sys_errno_;
};

}  // namespace gobind
