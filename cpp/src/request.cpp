#include "gobind/request.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <streambuf>

#include "gobind/header.hpp"
#include "status.hpp"

namespace gobind {
namespace {

// Reads the encoded strings and integers of gobind.h from a buffer.
class Decoder {
public:
    Decoder(const char* data, std::size_t size) : data_(data), size_(size) {}

    std::uint32_t u32() {
        std::uint32_t value;
        take(&value, sizeof value);
        return value;
    }

    std::int64_t i64() {
        std::int64_t value;
        take(&value, sizeof value);
        return value;
    }

    std::string_view string() {
        std::uint32_t length = u32();
        if (length > size_ - offset_) truncated();
        std::string_view value(data_ + offset_, length);
        offset_ += length;
        return value;
    }

private:
    void take(void* out, std::size_t n) {
        if (n > size_ - offset_) truncated();
        std::memcpy(out, data_ + offset_, n);
        offset_ += n;
    }

    [[noreturn]] static void truncated() {
        throw std::invalid_argument("invalid encoded request: truncated");
    }

    const char* data_;
    std::size_t size_;
    std::size_t offset_ = 0;
};

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decode a query component as net/url.QueryUnescape does, except that an
// invalid escape is kept as it is instead of failing.
std::string unescape_query(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
                   hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

// Stream buffer over Request::read, for Request::body.
class Request::BodyBuffer : public std::streambuf {
public:
    explicit BodyBuffer(Request& request) : request_(request) {}

protected:
    int_type underflow() override {
        if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
        std::size_t n = request_.read(buffer_, sizeof buffer_);
        if (n == 0) return traits_type::eof();
        setg(buffer_, buffer_, buffer_ + n);
        return traits_type::to_int_type(*gptr());
    }

    std::streamsize xsgetn(char* out, std::streamsize count) override {
        // Large reads skip the buffer once it is empty.
        std::streamsize done = 0;
        while (done < count) {
            std::streamsize buffered = egptr() - gptr();
            if (buffered > 0) {
                std::streamsize n = std::min(buffered, count - done);
                std::memcpy(out + done, gptr(), static_cast<std::size_t>(n));
                gbump(static_cast<int>(n));
                done += n;
                continue;
            }
            std::size_t requested = static_cast<std::size_t>(count - done);
            if (requested < sizeof buffer_) {
                if (traits_type::eq_int_type(underflow(), traits_type::eof())) break;
                continue;
            }
            std::size_t n = request_.read(out + done, requested);
            if (n == 0) break;
            done += static_cast<std::streamsize>(n);
        }
        return done;
    }

private:
    Request& request_;
    char buffer_[64 * 1024];
};

Request::~Request() = default;

Request::Request(std::uint64_t call, const char* data, std::size_t size) : call_(call) {
    Decoder decoder(data, size);
    method_ = decoder.string();
    target_ = decoder.string();
    path_ = decoder.string();
    raw_path_ = decoder.string();
    query_ = decoder.string();
    protocol_ = decoder.string();
    scheme_ = decoder.string();
    host_ = decoder.string();
    remote_addr_ = decoder.string();
    local_addr_ = decoder.string();
    content_length_ = decoder.i64();

    std::uint32_t params = decoder.u32();
    path_values_.reserve(params);
    for (std::uint32_t i = 0; i < params; ++i) {
        auto name = decoder.string();
        path_values_.emplace_back(name, decoder.string());
    }

    std::uint32_t fields = decoder.u32();
    header_fields_.reserve(fields);
    for (std::uint32_t i = 0; i < fields; ++i) {
        auto name = decoder.string();
        header_fields_.emplace_back(name, decoder.string());
    }
}

std::string_view Request::path_value(std::string_view name) const noexcept {
    for (const auto& [key, value] : path_values_) {
        if (key == name) return value;
    }
    return {};
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
    for (const auto& [key, value] : header_fields_) {
        if (equal_field_names(key, name)) return value;
    }
    return std::nullopt;
}

std::vector<std::string_view> Request::header_values(std::string_view name) const {
    std::vector<std::string_view> found;
    for (const auto& [key, value] : header_fields_) {
        if (equal_field_names(key, name)) found.push_back(value);
    }
    return found;
}

std::optional<std::string> Request::query_value(std::string_view name) const {
    std::string_view rest = query_;
    while (!rest.empty()) {
        std::size_t end = rest.find('&');
        std::string_view pair = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);

        std::size_t equals = pair.find('=');
        std::string_view key = pair.substr(0, equals);
        std::string_view value = equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
        if (key == name || unescape_query(key) == name) return unescape_query(value);
    }
    return std::nullopt;
}

std::size_t Request::read(char* buffer, std::size_t capacity) {
    if (body_ended_ || capacity == 0) return 0;
    std::size_t n = 0;
    detail::EngineError error;
    int status = gobind_request_read(call_, buffer, capacity, &n, error.get());
    if (status == GOBIND_EOF) {
        body_ended_ = true;
        return n;
    }
    if (status == GOBIND_ERR_TIMEOUT) body_timed_out_ = true;
    // A body that ended early is the client's failure too, not the server's.
    if (status == GOBIND_ERR_INVALID || status == GOBIND_ERR_IO) body_invalid_ = true;
    if (status == GOBIND_ERR_INVALID) body_malformed_ = true;
    detail::check(status, error, "reading request body failed");
    return n;
}

std::size_t Request::read_full(char* buffer, std::size_t size) {
    std::size_t filled = 0;
    while (filled < size) {
        std::size_t n = read(buffer + filled, size - filled);
        if (n == 0) break;
        filled += n;
    }
    return filled;
}

std::istream& Request::body() {
    if (!body_stream_) {
        body_buffer_ = std::make_unique<BodyBuffer>(*this);
        body_stream_ = std::make_unique<std::istream>(body_buffer_.get());
        body_stream_->exceptions(std::ios::badbit);
    }
    return *body_stream_;
}

std::string Request::read_all(std::size_t limit) {
    std::string body;
    if (content_length_ > 0 && static_cast<std::uint64_t>(content_length_) <= limit) {
        body.reserve(static_cast<std::size_t>(content_length_));
    }
    char chunk[64 * 1024];
    for (;;) {
        std::size_t n = read(chunk, sizeof chunk);
        if (n == 0) return body;
        if (body.size() + n > limit) {
            throw std::length_error("request body exceeds " + std::to_string(limit) + " bytes");
        }
        body.append(chunk, n);
    }
}

}  // namespace gobind
