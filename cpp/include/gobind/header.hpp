// gobind/header.hpp: HTTP header fields, ordered and multi-valued.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gobind {

/// Header fields in the order they were added. Names compare
/// case-insensitively; a name may carry several values. Values are bytes:
/// any octet but CR, LF and NUL is allowed.
///
/// Not synchronized: use one Header from one thread at a time.
class Header {
public:
    using Field = std::pair<std::string, std::string>;

    /// Append a field. Throws std::invalid_argument when the name is not an
    /// HTTP token, the value contains CR, LF or NUL, a Content-Length is not
    /// digits only, or a Content-Length with another value is present. A
    /// second Content-Length with the same value ("5" and "05") is not added.
    void add(std::string_view name, std::string_view value);

    /// Replace every field named `name` with one field, checked as by add.
    void set(std::string_view name, std::string_view value);

    /// Remove every field named `name`; returns how many were removed.
    std::size_t remove(std::string_view name);

    /// First value of `name`, if any.
    std::optional<std::string_view> get(std::string_view name) const;

    /// Every value of `name`, in order.
    std::vector<std::string_view> values(std::string_view name) const;

    bool contains(std::string_view name) const { return get(name).has_value(); }
    std::size_t size() const noexcept { return fields_.size(); }
    bool empty() const noexcept { return fields_.empty(); }
    void clear() noexcept { fields_.clear(); }
    /// Exchange the fields with other's, without copying them.
    void swap(Header& other) noexcept { fields_.swap(other.fields_); }
    const std::vector<Field>& fields() const noexcept { return fields_; }

    /// Append without validation, for fields that the engine already parsed.
    void add_unchecked(std::string_view name, std::string_view value) {
        fields_.emplace_back(std::string(name), std::string(value));
    }

    /// Throw std::invalid_argument unless `name` is a valid field name.
    static void check_name(std::string_view name);
    /// Throw std::invalid_argument if `value` contains CR, LF or NUL, or if
    /// `name` is Content-Length and `value` is not digits only.
    static void check_value(std::string_view name, std::string_view value);

private:
    std::vector<Field> fields_;
};

/// Compare two field names as HTTP does, ignoring ASCII case.
bool equal_field_names(std::string_view a, std::string_view b) noexcept;

}  // namespace gobind
