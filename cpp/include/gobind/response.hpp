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

    /// Send what is buffered and end the response. Called by the server
    /// after the handler returns; calling it earlier is allowed.
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
    bool finish_inline() noexcept;

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
    std::uint64_t bytes_written_ = 0;
};

}  // namespace gobind
