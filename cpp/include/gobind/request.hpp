// gobind/request.hpp: the request a handler receives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gobind {

/// One HTTP request, valid only while its handler runs: every string_view
/// points into memory that the engine reuses once the handler returns.
/// A Request may be read from the handler's thread only.
///
/// The body is a stream that can be read once, through read(), read_full(),
/// read_all() or body(). Bytes that body() has buffered are not seen by the
/// other three, so pick one way per request.
class Request {
public:
    using Pair = std::pair<std::string_view, std::string_view>;

    /// Parse an encoded request, laid out as the engine's C ABI documents
    /// (the server does this; handlers receive a ready Request). Throws
    /// std::invalid_argument if the buffer is malformed.
    Request(std::uint64_t call, const char* data, std::size_t size);
    ~Request();
    Request(const Request&) = delete;
    Request& operator=(const Request&) = delete;

    std::string_view method() const noexcept { return method_; }
    /// Request target exactly as sent: "/items/a%2Fb?x=1".
    std::string_view target() const noexcept { return target_; }
    /// Percent-decoded path: "/items/a/b".
    std::string_view path() const noexcept { return path_; }
    /// Path with its escapes as sent: "/items/a%2Fb".
    std::string_view raw_path() const noexcept { return raw_path_; }
    /// Query string without "?", undecoded.
    std::string_view query() const noexcept { return query_; }
    /// "HTTP/1.1" or "HTTP/2.0".
    std::string_view protocol() const noexcept { return protocol_; }
    /// "http" or "https".
    std::string_view scheme() const noexcept { return scheme_; }
    /// Host from the request target or the Host header.
    std::string_view host() const noexcept { return host_; }
    /// Client address, "ip:port".
    std::string_view remote_addr() const noexcept { return remote_addr_; }
    /// Server address the connection arrived on, "ip:port".
    std::string_view local_addr() const noexcept { return local_addr_; }
    /// Body length from Content-Length, or -1 when unknown (chunked).
    std::int64_t content_length() const noexcept { return content_length_; }

    /// Wildcard values of the matched pattern, in pattern order.
    const std::vector<Pair>& path_values() const noexcept { return path_values_; }
    /// Value of wildcard `name`, or an empty view when the pattern has none.
    std::string_view path_value(std::string_view name) const noexcept;

    /// Header fields in arrival order within each name, Host included.
    const std::vector<Pair>& header_fields() const noexcept { return header_fields_; }
    /// First value of header `name`, ignoring case.
    std::optional<std::string_view> header(std::string_view name) const noexcept;
    /// Every value of header `name`, ignoring case, in arrival order.
    std::vector<std::string_view> header_values(std::string_view name) const;

    /// First value of query parameter `name`, percent-decoded with "+" as
    /// a space (application/x-www-form-urlencoded), or nullopt when absent.
    std::optional<std::string> query_value(std::string_view name) const;

    /// Read up to `capacity` body bytes into `buffer`; returns 0 at the end
    /// of the body. Blocks until data arrives; throws gobind::Error with
    /// ErrorCode::timeout when the client stays silent past the read timeout.
    std::size_t read(char* buffer, std::size_t capacity);

    /// Read until `size` bytes arrived or the body ended; returns the count,
    /// less than `size` only at the end of the body. Throws like read().
    std::size_t read_full(char* buffer, std::size_t size);
    /// Whether a body read failed because the client stayed silent past the
    /// read timeout; a handler failure then becomes 408, not 500.
    bool body_timed_out() const noexcept { return body_timed_out_; }
    /// Whether a body read failed: timed out, invalid framing, or the
    /// connection failed.
    bool body_failed() const noexcept { return body_timed_out_ || body_invalid_; }
    /// Whether a body read failed because the body's chunked framing was
    /// invalid (ErrorCode::invalid_argument).
    bool body_malformed() const noexcept { return body_malformed_; }

    /// Status for a handler that failed after a body read failed: 408 when
    /// the client stayed silent, 400 when the body's framing was invalid or
    /// the body ended early (the connection failed), else 500.
    int failure_status() const noexcept {
        if (body_timed_out_) return 408;
        if (body_invalid_) return 400;
        return 500;
    }

    /// Read the rest of the body. Throws std::length_error when it exceeds
    /// `limit` bytes.
    std::string read_all(std::size_t limit = SIZE_MAX);

    /// The body as a std::istream, created on first use, reading through a
    /// 64 KiB buffer. Engine failures propagate as gobind::Error out of the
    /// stream's read functions (badbit is in its exceptions mask); the end
    /// of the body is end-of-file.
    std::istream& body();

    /// Whether the end of the body was reached by read(), read_full(),
    /// read_all() or body().
    bool body_ended() const noexcept { return body_ended_; }

    /// Handle of this request in the engine.
    std::uint64_t call() const noexcept { return call_; }

private:
    class BodyBuffer;

    std::uint64_t call_;
    std::string_view method_, target_, path_, raw_path_, query_, protocol_, scheme_, host_,
        remote_addr_, local_addr_;
    std::int64_t content_length_ = -1;
    std::vector<Pair> path_values_;
    std::vector<Pair> header_fields_;
    bool body_ended_ = false;
    std::unique_ptr<BodyBuffer> body_buffer_;
    std::unique_ptr<std::istream> body_stream_;
    bool body_timed_out_ = false;
    bool body_invalid_ = false;
    bool body_malformed_ = false;
};

}  // namespace gobind
