// gobind/response.hpp: the writer a handler responds with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "gobind/header.hpp"

namespace gobind {

/// Builds one response. The status and header are sent with the first body
/// bytes that leave the process: writes are buffered up to buffer_limit
/// bytes, so a small response costs one call into the engine. Larger writes
/// go straight to the engine, without a copy. Use from the handler's thread
/// only; every method that sends can block while the client is slow.
class ResponseWriter {
public:
    static constexpr std::size_t buffer_limit = 64 * 1024;

    /// Writer for engine call `call`; the server creates one per request.
    explicit ResponseWriter(std::uint64_t call) noexcept : call_(call) {}
    ResponseWriter(const ResponseWriter&) = delete;
    ResponseWriter& operator=(const ResponseWriter&) = delete;

    /// Header fields to send; changes after the header is sent are ignored.
    Header& header() noexcept { return header_; }

    /// Set the status code (default 200). A 1xx code other than 101, such
    /// as 103 Early Hints, is sent at once with the current header fields,
    /// which stay for the final response; HTTP/1.0 clients do not get it.
    /// Throws std::logic_error once the header is sent (for a 1xx code, once
    /// a final status or body bytes were given), std::invalid_argument for
    /// 101 and outside 100-999.
    void write_header(int status);

    /// Append body bytes; returns data.size().
    std::size_t write(std::string_view data);

    /// Send buffered bytes to the client now.
    void flush();

    /// Send the header (unless sent) and the buffered bytes, then `count`
    /// bytes of the regular file open as descriptor `fd`, from its current
    /// offset, or the rest of the file when `count` is negative. The engine
    /// copies from a duplicate of `fd`, with sendfile(2) on a plain TCP
    /// connection, so the file's bytes are not copied through this
    /// process's memory. `fd` stays the caller's; its offset moves past the
    /// bytes sent. Returns their number. Set a Content-Length first for a
    /// response that is not chunked. Throws gobind::Error when the copy
    /// fails (the header may have gone out by then) and std::logic_error
    /// after finish().
    std::int64_t send_file(int fd, std::int64_t count = -1);

    /// Send what is buffered and end the response now, while the handler
    /// goes on with other work. A response whose header was not sent yet
    /// gets a Content-Length and reaches the client whole. A response
    /// already streamed gets its last chunk when the handler returns. The
    /// server ends the response after the handler returns anyway.
    void finish();

    /// End the request as failed: a `status` response (500, or 408 when
    /// a body read timed out) if nothing was sent yet, otherwise the
    /// connection is closed so the client sees a truncated response.
    /// Never throws.
    void fail(int status = 500) noexcept;

    /// Report whether write would only buffer `size` bytes, without calling the engine.
    bool buffers(std::size_t size) const noexcept {
        return !header_sent_ && buffer_.size() + size <= buffer_limit;
    }

    int status() const noexcept { return status_ == 0 ? 200 : status_; }
    bool header_sent() const noexcept { return header_sent_; }
    bool finished() const noexcept { return finished_; }
    bool aborted() const noexcept { return aborted_; }
    /// Whether a write or a file send failed because the connection did
    /// (the client went away, or the write timed out).
    bool write_failed() const noexcept { return write_failed_; }
    /// Body bytes accepted so far, buffered ones included.
    std::uint64_t bytes_written() const noexcept { return bytes_written_; }

private:
    friend class Server;

    /// Writer whose finish() may place a small complete response in
    /// `area` (engine memory lent for the handler call) instead of calling
    /// the engine; inline_size() then returns how many bytes it used.
    ResponseWriter(std::uint64_t call, char* area, std::size_t capacity) noexcept
        : call_(call), inline_area_(area), inline_capacity_(capacity) {}
    std::size_t inline_size() const noexcept { return inline_size_; }
    /// End the response after the handler returned: a small one goes back
    /// in the inline area, without a call into the engine.
    void complete();
    bool finish_inline() noexcept;
    void end(int flags);

    void send(std::string_view body, int flags);
    void send_informational(int status);
    std::string encode_header() const;

    std::uint64_t call_;
    char* inline_area_ = nullptr;
    std::size_t inline_capacity_ = 0;
    std::size_t inline_size_ = 0;
    Header header_;
    std::string buffer_;
    int status_ = 0;
    bool header_sent_ = false;
    bool finished_ = false;
    bool aborted_ = false;
    bool write_failed_ = false;
    std::uint64_t bytes_written_ = 0;
};

}  // namespace gobind
