#include "gobind/response.hpp"

#include <cstring>
#include <stdexcept>

#include "gobind.h"
#include "status.hpp"

namespace gobind {
namespace {

void append_u32(std::string& out, std::uint32_t value) {
    char bytes[sizeof value];
    std::memcpy(bytes, &value, sizeof value);
    out.append(bytes, sizeof value);
}

void append_string(std::string& out, std::string_view value) {
    append_u32(out, static_cast<std::uint32_t>(value.size()));
    out.append(value);
}

}  // namespace

void ResponseWriter::write_header(int status) {
    if (header_sent_ || finished_) {
        throw std::logic_error("write_header called after the response header was sent");
    }
    if (status < 100 || status > 999) {
        throw std::invalid_argument("invalid status code " + std::to_string(status) +
                                    ": must be 100-999");
    }
    if (status == 101) {
        throw std::invalid_argument("invalid status code 101: handlers cannot switch protocols");
    }
    if (status < 200) {
        if (status_ != 0 || bytes_written_ > 0) {
            throw std::logic_error("write_header(" + std::to_string(status) +
                                   ") called after the final status or body bytes");
        }
        send_informational(status);
        return;
    }
    status_ = status;
}

void ResponseWriter::send_informational(int status) {
    std::string header_block = encode_header();
    detail::EngineError error;
    int rc = gobind_response_write(call_, status, header_block.data(), header_block.size(), nullptr, 0, 0,
                                   error.get());
    detail::check(rc, error, "writing an informational response failed");
}

std::size_t ResponseWriter::write(std::string_view data) {
    if (finished_) {
        throw std::logic_error("write called after the response was finished");
    }
    bytes_written_ += data.size();
    if (buffers(data.size())) {
        buffer_.append(data);
        return data.size();
    }
    if (!buffer_.empty() || !header_sent_) {
        send(buffer_, 0);
        buffer_.clear();
    }
    send(data, 0);
    return data.size();
}

void ResponseWriter::flush() {
    if (finished_) return;
    send(buffer_, GOBIND_WRITE_FLUSH);
    buffer_.clear();
}

std::int64_t ResponseWriter::send_file(int fd, std::int64_t count) {
    if (finished_) {
        throw std::logic_error("send_file called after the response was finished");
    }
    if (!buffer_.empty()) {
        send(buffer_, 0);
        buffer_.clear();
    }
    std::string header_block;
    if (!header_sent_) header_block = encode_header();
    // The engine sends the header before it opens the file, so a failed
    // copy leaves it sent: fail() must then cut the connection, not add an
    // error page to a response that has started.
    header_sent_ = true;
    std::int64_t sent = 0;
    detail::EngineError error;
    int rc = gobind_response_send_file(call_, status(), header_block.empty() ? nullptr : header_block.data(),
                                       header_block.size(), fd, count, &sent, error.get());
    bytes_written_ += static_cast<std::uint64_t>(sent);
    if (rc == GOBIND_ERR_IO || rc == GOBIND_ERR_TIMEOUT) write_failed_ = true;
    detail::check(rc, error, "sending a file failed");
    return sent;
}

void ResponseWriter::finish() {
    if (finished_) return;
    end(GOBIND_WRITE_FINISH | GOBIND_WRITE_FLUSH);
}

void ResponseWriter::complete() {
    if (finished_ || finish_inline()) return;
    // net/http sends the rest when the handler returns, just after this.
    end(GOBIND_WRITE_FINISH);
}

void ResponseWriter::end(int flags) {
    send(buffer_, flags);
    buffer_.clear();
    finished_ = true;
}

void ResponseWriter::fail(int status) noexcept {
    if (finished_) return;
    if (header_sent_) {
        aborted_ = true;
        finished_ = true;
        return;
    }
    try {
        header_.clear();
        header_.add_unchecked("Content-Type", "text/plain; charset=utf-8");
        switch (status) {
        case 400: buffer_.assign("Bad Request\n"); break;
        case 408: buffer_.assign("Request Timeout\n"); break;
        default: buffer_.assign("Internal Server Error\n"); break;
        }
        bytes_written_ = buffer_.size();
        status_ = status;
        complete();
    } catch (...) {
        aborted_ = true;
        finished_ = true;
    }
}

bool ResponseWriter::finish_inline() noexcept {
    if (header_sent_ || inline_area_ == nullptr) return false;
    std::size_t size = sizeof(std::int32_t) + sizeof(std::uint32_t) + buffer_.size();
    for (const auto& [name, value] : header_.fields()) {
        size += 2 * sizeof(std::uint32_t) + name.size() + value.size();
    }
    if (size > inline_capacity_) return false;

    char* out = inline_area_;
    auto put = [&out](const void* data, std::size_t n) {
        std::memcpy(out, data, n);
        out += n;
    };
    auto put_string = [&](std::string_view text) {
        auto length = static_cast<std::uint32_t>(text.size());
        put(&length, sizeof length);
        put(text.data(), text.size());
    };
    std::int32_t status = status_;
    auto count = static_cast<std::uint32_t>(header_.size());
    put(&status, sizeof status);
    put(&count, sizeof count);
    for (const auto& [name, value] : header_.fields()) {
        put_string(name);
        put_string(value);
    }
    put(buffer_.data(), buffer_.size());

    inline_size_ = size;
    buffer_.clear();
    header_sent_ = true;
    finished_ = true;
    return true;
}

void ResponseWriter::send(std::string_view body, int flags) {
    std::string header_block;
    if (!header_sent_) header_block = encode_header();
    detail::EngineError error;
    int status = gobind_response_write(
        call_, status_, header_block.empty() ? nullptr : header_block.data(), header_block.size(),
        const_cast<char*>(body.data()), body.size(), flags, error.get());
    header_sent_ = true;
    if (status == GOBIND_ERR_IO || status == GOBIND_ERR_TIMEOUT) write_failed_ = true;
    detail::check(status, error, "writing response failed");
}

std::string ResponseWriter::encode_header() const {
    std::string out;
    append_u32(out, static_cast<std::uint32_t>(header_.size()));
    for (const auto& [name, value] : header_.fields()) {
        append_string(out, name);
        append_string(out, value);
    }
    return out;
}

}  // namespace gobind
