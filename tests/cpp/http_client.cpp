#include "http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace gobind::test {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

bool equal_names(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::optional<std::string> find_field(const Fields& fields, std::string_view name) {
    for (const auto& [key, value] : fields) {
        if (equal_names(key, name)) return value;
    }
    return std::nullopt;
}

bool is_chunked(const HttpResponse& head) {
    auto coding = head.header("Transfer-Encoding");
    return coding && *coding == "chunked";
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    return find_field(headers, name);
}

HttpConnection::HttpConnection(const std::string& address) {
    auto colon = address.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("address without port: " + address);
    std::string host = address.substr(0, colon);
    int port = std::stoi(address.substr(colon + 1));
    bool v6 = host.size() > 1 && host.front() == '[';

    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) fail("socket");
    timeval timeout{60, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    int rc;
    if (v6) {
        sockaddr_in6 addr{};
        addr.sin6_family = AF_INET6;
        addr.sin6_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &addr.sin6_addr);
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } else {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
        rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    if (rc != 0) {
        int saved = errno;
        ::close(fd_);
        errno = saved;
        fail("connect to " + address);
    }
}

HttpConnection::~HttpConnection() {
    if (fd_ >= 0) ::close(fd_);
}

void HttpConnection::send(std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("send");
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void HttpConnection::send_request(std::string_view method, std::string_view target, const Fields& fields,
                                  std::string_view body) {
    std::string head;
    head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    if (!find_field(fields, "Host")) head += "Host: test\r\n";
    for (const auto& [name, value] : fields) head.append(name).append(": ").append(value).append("\r\n");
    bool framed = find_field(fields, "Transfer-Encoding") || find_field(fields, "Content-Length");
    if (!framed && (!body.empty() || method == "POST" || method == "PUT")) {
        head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    head += "\r\n";
    send(head);
    send(body);
}

bool HttpConnection::fill() {
    if (offset_ > 0 && offset_ == buffer_.size()) {
        buffer_.clear();
        offset_ = 0;
    }
    char chunk[64 * 1024];
    for (;;) {
        ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return true;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno == ECONNRESET) return false;
        fail("recv");
    }
}

std::string HttpConnection::read_line() {
    for (;;) {
        auto end = buffer_.find("\r\n", offset_);
        if (end != std::string::npos) {
            std::string line = buffer_.substr(offset_, end - offset_);
            offset_ = end + 2;
            return line;
        }
        if (!fill()) throw std::runtime_error("connection closed in the middle of a line");
    }
}

std::string HttpConnection::read_exact(std::size_t size) {
    while (buffer_.size() - offset_ < size) {
        if (!fill()) throw std::runtime_error("connection closed before the end of the body");
    }
    std::string out = buffer_.substr(offset_, size);
    offset_ += size;
    return out;
}

HttpResponse HttpConnection::read_head() {
    HttpResponse response;
    std::string status_line = read_line();
    if (status_line.compare(0, 5, "HTTP/") != 0 || status_line.size() < 12) {
        throw std::runtime_error("invalid status line: " + status_line);
    }
    response.status = std::stoi(status_line.substr(9, 3));
    for (std::string line = read_line(); !line.empty(); line = read_line()) {
        auto colon = line.find(':');
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        response.headers.emplace_back(line.substr(0, colon), value);
    }
    body_started_ = false;
    return response;
}

std::optional<std::string> HttpConnection::read_body_piece(const HttpResponse& head) {
    if (is_chunked(head)) {
        std::size_t size = std::stoul(read_line(), nullptr, 16);
        if (size == 0) {
            while (!read_line().empty()) {
            }
            return std::nullopt;
        }
        std::string data = read_exact(size);
        read_line();
        return data;
    }
    if (auto length = head.header("Content-Length")) {
        if (!body_started_) {
            body_left_ = std::stoull(*length);
            body_started_ = true;
        }
        if (body_left_ == 0) return std::nullopt;
        if (offset_ == buffer_.size() && !fill()) {
            throw std::runtime_error("connection closed before the end of the body");
        }
        std::size_t n = std::min(body_left_, buffer_.size() - offset_);
        std::string data = buffer_.substr(offset_, n);
        offset_ += n;
        body_left_ -= n;
        return data;
    }
    if (head.status == 204 || head.status == 304) return std::nullopt;
    if (offset_ == buffer_.size() && !fill()) return std::nullopt;
    std::string data = buffer_.substr(offset_);
    offset_ = buffer_.size();
    return data;
}

HttpResponse HttpConnection::read_response() {
    HttpResponse response = read_head();
    while (auto piece = read_body_piece(response)) response.body += *piece;
    return response;
}

bool HttpConnection::closed_by_server() {
    if (offset_ < buffer_.size()) return false;
    return !fill();
}

HttpResponse request(const std::string& address, std::string_view method, std::string_view target,
                     const Fields& fields, std::string_view body) {
    HttpConnection connection(address);
    connection.send_request(method, target, fields, body);
    return connection.read_response();
}

std::uint64_t fnv1a(std::string_view bytes, std::uint64_t hash) {
    for (unsigned char c : bytes) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash;
}

std::string pattern_bytes(std::size_t offset, std::size_t size) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        std::size_t position = offset + i;
        out[i] = static_cast<char>('a' + (position * 7 + position / 4096) % 26);
    }
    return out;
}

}  // namespace gobind::test
