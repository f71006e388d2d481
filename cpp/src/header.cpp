#include "gobind/header.hpp"

#include <cstdint>
#include <limits>
#include <stdexcept>

namespace gobind {
namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// RFC 9110 section 5.6.2: tchar.
bool is_token_char(unsigned char c) noexcept {
    if (c >= '0' && c <= '9') return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            return true;
        default:
            return false;
    }
}

std::string printable(std::string_view text) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : text.substr(0, 80)) {
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

// RFC 9110 section 8.6: Content-Length = 1*DIGIT. Returns -1 for anything
// else, a value above INT64_MAX included.
std::int64_t parse_content_length(std::string_view value) noexcept {
    if (value.empty()) return -1;
    std::int64_t length = 0;
    for (char c : value) {
        if (c < '0' || c > '9') return -1;
        int digit = c - '0';
        if (length > (std::numeric_limits<std::int64_t>::max() - digit) / 10) return -1;
        length = length * 10 + digit;
    }
    return length;
}

}  // namespace

bool equal_field_names(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

void Header::check_name(std::string_view name) {
    if (name.empty()) {
        throw std::invalid_argument("invalid header name: empty");
    }
    for (unsigned char c : name) {
        if (!is_token_char(c)) {
            throw std::invalid_argument("invalid header name \"" + printable(name) +
                                        "\": only letters, digits and !#$%&'*+-.^_`|~ are allowed");
        }
    }
}

void Header::check_value(std::string_view name, std::string_view value) {
    for (char c : value) {
        if (c == '\r' || c == '\n' || c == '\0') {
            throw std::invalid_argument("invalid value for header \"" + printable(name) +
                                        "\": CR, LF and NUL are not allowed (value \"" +
                                        printable(value) + "\")");
        }
    }
    if (equal_field_names(name, "Content-Length") && parse_content_length(value) < 0) {
        throw std::invalid_argument("invalid Content-Length \"" + printable(value) +
                                    "\": it must be a number of bytes, digits only");
    }
}

void Header::add(std::string_view name, std::string_view value) {
    check_name(name);
    check_value(name, value);
    if (equal_field_names(name, "Content-Length")) {
        if (auto length = get(name)) {
            // Two lengths would let a proxy and the client frame the
            // response differently. The same one twice is sent once.
            if (parse_content_length(*length) != parse_content_length(value)) {
                throw std::invalid_argument("conflicting Content-Length values \"" + printable(*length) +
                                            "\" and \"" + printable(value) + "\": a response has one length");
            }
            return;
        }
    }
    add_unchecked(name, value);
}

void Header::set(std::string_view name, std::string_view value) {
    check_name(name);
    check_value(name, value);
    remove(name);
    add_unchecked(name, value);
}

std::size_t Header::remove(std::string_view name) {
    std::size_t before = fields_.size();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < before; ++i) {
        if (!equal_field_names(fields_[i].first, name)) {
            if (kept != i) fields_[kept] = std::move(fields_[i]);
            ++kept;
        }
    }
    fields_.resize(kept);
    return before - kept;
}

std::optional<std::string_view> Header::get(std::string_view name) const {
    for (const auto& field : fields_) {
        if (equal_field_names(field.first, name)) return std::string_view(field.second);
    }
    return std::nullopt;
}

std::vector<std::string_view> Header::values(std::string_view name) const {
    std::vector<std::string_view> found;
    for (const auto& field : fields_) {
        if (equal_field_names(field.first, name)) found.emplace_back(field.second);
    }
    return found;
}

}  // namespace gobind
