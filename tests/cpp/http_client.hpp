// A small blocking HTTP/1.1 client over POSIX sockets, enough to drive a
// gobind server in tests: raw requests, Content-Length and chunked bodies
// in both directions, and reading a response piece by piece.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gobind::test {

using Fields = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    int status = 0;
    Fields headers;
    std::string body;

    /// First value of header `name`, ignoring case.
    std::optional<std::string> header(std::string_view name) const;
};

/// One TCP connection to "host:port" (IPv4 or bracketed IPv6). Every read
/// and write fails with std::runtime_error after 60 s without progress, so a
/// broken server fails a test instead of hanging it.
class HttpConnection {
public:
    explicit HttpConnection(const std::string& address);
    ~HttpConnection();
    HttpConnection(const HttpConnection&) = delete;
    HttpConnection& operator=(const HttpConnection&) = delete;

    /// Send raw bytes.
    void send(std::string_view bytes);

    /// Send a request line and header fields, then the body. A Content-Length
    /// is added unless `fields` sets it or Transfer-Encoding.
    void send_request(std::string_view method, std::string_view target, const Fields& fields = {},
                      std::string_view body = {});

    /// Read a status line and header block; returns them with an empty body.
    HttpResponse read_head();

    /// Read the next piece of a body whose head read_head() returned:
    /// one chunk of a chunked body, else everything up to Content-Length or
    /// to the end of the connection. Returns nullopt at the end of the body.
    std::optional<std::string> read_body_piece(const HttpResponse& head);

    /// Read a whole response.
    HttpResponse read_response();

    /// Whether the server closed the connection: reads until the end of the
    /// stream, returning false if more bytes arrive first.
    bool closed_by_server();

private:
    std::string read_line();
    std::string read_exact(std::size_t size);
    bool fill();

    int fd_ = -1;
    std::string buffer_;
    std::size_t offset_ = 0;
    std::size_t body_left_ = 0;
    bool body_started_ = false;
};

/// Send one request on a new connection and read the response.
HttpResponse request(const std::string& address, std::string_view method, std::string_view target,
                     const Fields& fields = {}, std::string_view body = {});

/// FNV-1a hash of bytes, to compare large bodies without keeping copies.
std::uint64_t fnv1a(std::string_view bytes, std::uint64_t hash = 14695981039346656037ull);

/// `size` bytes of a repeating pattern that depends on the byte offset.
std::string pattern_bytes(std::size_t offset, std::size_t size);

}  // namespace gobind::test
