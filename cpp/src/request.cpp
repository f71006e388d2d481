#include "gobind/request.hpp"

#include <cstring>
#include <stdexcept>

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

}  // namespace

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
    detail::check(status, error, "reading request body failed");
    return n;
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
