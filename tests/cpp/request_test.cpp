// Request: fields, path values, headers, query and the body stream.
#include <gtest/gtest.h>

#include <istream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

// What a handler saw, copied out of the Request before it returned.
struct Seen {
    std::string method, target, path, raw_path, query, protocol, scheme, host, remote_addr, local_addr;
    std::int64_t content_length = 0;
    std::vector<std::pair<std::string, std::string>> path_values;
    std::string path_value_id, path_value_missing;
    std::optional<std::string> header_lower, header_missing;
    std::vector<std::string> multi_values;
    std::vector<std::optional<std::string>> query_values;
    std::string body;
};

std::optional<std::string> copy(std::optional<std::string_view> value) {
    if (!value) return std::nullopt;
    return std::string(*value);
}

// Serves `pattern` with a handler that records what it saw into `seen`.
std::string serve_recording(Server& server, const std::string& pattern, Seen& seen) {
    server.handle(pattern, [&seen](Request& r, ResponseWriter& w) {
        seen.method = r.method();
        seen.target = r.target();
        seen.path = r.path();
        seen.raw_path = r.raw_path();
        seen.query = r.query();
        seen.protocol = r.protocol();
        seen.scheme = r.scheme();
        seen.host = r.host();
        seen.remote_addr = r.remote_addr();
        seen.local_addr = r.local_addr();
        seen.content_length = r.content_length();
        for (const auto& [name, value] : r.path_values()) seen.path_values.emplace_back(name, value);
        seen.path_value_id = r.path_value("id");
        seen.path_value_missing = r.path_value("missing");
        seen.header_lower = copy(r.header("x-custom"));
        seen.header_missing = copy(r.header("X-Absent"));
        for (auto value : r.header_values("X-Multi")) seen.multi_values.emplace_back(value);
        for (const char* name : {"q", "x", "empty", "flag", "missing", "sp ace"}) {
            seen.query_values.push_back(r.query_value(name));
        }
        seen.body = r.read_all();
        w.write("recorded");
    });
    return server.start("127.0.0.1:0");
}

TEST(RequestFields, MethodTargetAndPath) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "POST /items/{id}", seen);
    HttpResponse response = request(address, "POST", "/items/a%2Fb?q=1", {}, "payload");
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(seen.method, "POST");
    EXPECT_EQ(seen.target, "/items/a%2Fb?q=1");
    EXPECT_EQ(seen.path, "/items/a/b");
    EXPECT_EQ(seen.raw_path, "/items/a%2Fb");
    EXPECT_EQ(seen.query, "q=1");
    EXPECT_EQ(seen.protocol, "HTTP/1.1");
    EXPECT_EQ(seen.scheme, "http");
    EXPECT_EQ(seen.host, "test");
    EXPECT_EQ(seen.local_addr, address);
    EXPECT_EQ(seen.remote_addr.rfind("127.0.0.1:", 0), 0u) << seen.remote_addr;
    EXPECT_EQ(seen.content_length, 7);
    EXPECT_EQ(seen.body, "payload");
}

TEST(RequestPathValues, NamedAndRemainder) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "GET /items/{id}/{rest...}", seen);
    ASSERT_EQ(request(address, "GET", "/items/42/a/b/c").status, 200);
    ASSERT_EQ(seen.path_values.size(), 2u);
    EXPECT_EQ(seen.path_values[0], (std::pair<std::string, std::string>("id", "42")));
    EXPECT_EQ(seen.path_values[1], (std::pair<std::string, std::string>("rest", "a/b/c")));
    EXPECT_EQ(seen.path_value_id, "42");
    EXPECT_EQ(seen.path_value_missing, "");
}

TEST(RequestPathValues, EscapedSlashStaysInValue) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "GET /items/{id}", seen);
    ASSERT_EQ(request(address, "GET", "/items/a%2Fb").status, 200);
    EXPECT_EQ(seen.path_value_id, "a/b");
}

TEST(RequestPathValues, Utf8Value) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "GET /items/{id}", seen);
    ASSERT_EQ(request(address, "GET", "/items/caf%C3%A9").status, 200);
    EXPECT_EQ(seen.path_value_id, "caf\xc3\xa9");
}

TEST(RequestHeaders, LookupIgnoresCase) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "GET /", seen);
    ASSERT_EQ(request(address, "GET", "/", {{"X-Custom", "value 1"}}).status, 200);
    EXPECT_EQ(seen.header_lower, std::optional<std::string>("value 1"));
    EXPECT_EQ(seen.header_missing, std::nullopt);
}

TEST(RequestHeaders, RepeatedFieldKeepsOrder) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "GET /", seen);
    ASSERT_EQ(request(address, "GET", "/", {{"X-Multi", "first"}, {"x-multi", "second"}}).status, 200);
    EXPECT_EQ(seen.multi_values, (std::vector<std::string>{"first", "second"}));
}

TEST(RequestHeaders, HostIncluded) {
    Server server;
    std::optional<std::string> host;
    server.handle("GET /", [&host](const Request& r, ResponseWriter&) { host = copy(r.header("Host")); });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "GET", "/", {{"Host", "example.test:81"}}).status, 200);
    EXPECT_EQ(host, std::optional<std::string>("example.test:81"));
}

TEST(RequestQuery, ValuesDecoded) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "GET /", seen);
    ASSERT_EQ(request(address, "GET", "/?q=hello+world&x=%41%2B&empty=&flag&q=second&sp%20ace=1").status, 200);
    ASSERT_EQ(seen.query_values.size(), 6u);
    EXPECT_EQ(seen.query_values[0], std::optional<std::string>("hello world"));
    EXPECT_EQ(seen.query_values[1], std::optional<std::string>("A+"));
    EXPECT_EQ(seen.query_values[2], std::optional<std::string>(""));
    EXPECT_EQ(seen.query_values[3], std::optional<std::string>(""));
    EXPECT_EQ(seen.query_values[4], std::nullopt);
    EXPECT_EQ(seen.query_values[5], std::optional<std::string>("1"));
    EXPECT_EQ(seen.query, "q=hello+world&x=%41%2B&empty=&flag&q=second&sp%20ace=1");
}

TEST(RequestBody, ChunkedHasUnknownLength) {
    Server server;
    Seen seen;
    std::string address = serve_recording(server, "POST /", seen);
    HttpConnection connection(address);
    connection.send_request("POST", "/", {{"Transfer-Encoding", "chunked"}});
    connection.send("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    ASSERT_EQ(connection.read_response().status, 200);
    EXPECT_EQ(seen.content_length, -1);
    EXPECT_EQ(seen.body, "hello world");
}

TEST(RequestBody, EmptyBodyEndsAtOnce) {
    Server server;
    std::size_t first_read = 99;
    bool ended = false;
    server.handle("GET /", [&](Request& r, ResponseWriter&) {
        char buffer[16];
        first_read = r.read(buffer, sizeof buffer);
        ended = r.body_ended();
    });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "GET", "/").status, 200);
    EXPECT_EQ(first_read, 0u);
    EXPECT_TRUE(ended);
}

TEST(RequestBody, StreamReadsLines) {
    Server server;
    std::vector<std::string> lines;
    server.handle("POST /", [&lines](Request& r, ResponseWriter&) {
        std::string line;
        while (std::getline(r.body(), line)) lines.push_back(line);
    });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "POST", "/", {}, "one\ntwo\nthree").status, 200);
    EXPECT_EQ(lines, (std::vector<std::string>{"one", "two", "three"}));
}

TEST(RequestBody, ReadFullFillsBuffer) {
    Server server;
    std::vector<std::string> pieces;
    server.handle("POST /", [&pieces](Request& r, ResponseWriter&) {
        char buffer[4];
        while (std::size_t n = r.read_full(buffer, sizeof buffer)) pieces.emplace_back(buffer, n);
    });
    std::string address = server.start("127.0.0.1:0");
    HttpConnection connection(address);
    connection.send_request("POST", "/", {{"Transfer-Encoding", "chunked"}});
    connection.send("3\r\nabc\r\n3\r\ndef\r\n3\r\nghi\r\n0\r\n\r\n");
    ASSERT_EQ(connection.read_response().status, 200);
    EXPECT_EQ(pieces, (std::vector<std::string>{"abcd", "efgh", "i"}));
}

TEST(RequestBody, InvalidFramingIsMalformed) {
    Server server;
    std::string flags;
    server.handle("POST /", [&flags](Request& r, ResponseWriter&) {
        char buffer[16];
        try {
            while (r.read(buffer, sizeof buffer) > 0) {
            }
        } catch (const gobind::Error& error) {
            flags = std::to_string(static_cast<int>(error.code()));
        }
        flags += r.body_failed() ? " failed" : " read";
        flags += r.body_malformed() ? " malformed" : "";
    });
    std::string address = server.start("127.0.0.1:0");

    HttpConnection bad(address);
    bad.send_request("POST", "/", {{"Transfer-Encoding", "chunked"}});
    bad.send("zz\r\n");
    bad.read_response();
    EXPECT_EQ(flags, std::to_string(static_cast<int>(gobind::ErrorCode::invalid_argument)) + " failed malformed");

    flags.clear();
    ASSERT_EQ(request(address, "POST", "/", {}, "fine").status, 200);
    EXPECT_EQ(flags, " read");
}

TEST(RequestBody, ReadAllLimitThrowsLengthError) {
    Server server;
    server.handle("POST /", [](Request& r, ResponseWriter& w) {
        try {
            r.read_all(10);
        } catch (const std::length_error& error) {
            w.write_header(413);
            w.write(error.what());
        }
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "POST", "/", {}, std::string(11, 'x'));
    EXPECT_EQ(response.status, 413);
    EXPECT_EQ(response.body, "request body exceeds 10 bytes");
}

TEST(RequestBody, Upload20MegabytesThroughStream) {
    constexpr std::size_t size = 20 << 20;
    Server server;
    std::uint64_t received = 0;
    std::uint64_t hash = 0;
    server.handle("PUT /upload", [&](Request& r, ResponseWriter& w) {
        std::istream& body = r.body();
        std::vector<char> block(1 << 20);
        hash = fnv1a({});
        while (body.read(block.data(), static_cast<std::streamsize>(block.size())) || body.gcount() > 0) {
            std::string_view piece(block.data(), static_cast<std::size_t>(body.gcount()));
            hash = fnv1a(piece, hash);
            received += piece.size();
        }
        w.write(std::to_string(received));
    });
    std::string address = server.start("127.0.0.1:0");

    HttpConnection connection(address);
    connection.send_request("PUT", "/upload", {{"Content-Length", std::to_string(size)}});
    std::uint64_t sent_hash = fnv1a({});
    for (std::size_t offset = 0; offset < size; offset += 1 << 20) {
        std::string piece = pattern_bytes(offset, 1 << 20);
        sent_hash = fnv1a(piece, sent_hash);
        connection.send(piece);
    }
    HttpResponse response = connection.read_response();
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, std::to_string(size));
    EXPECT_EQ(received, size);
    EXPECT_EQ(hash, sent_hash);
}

TEST(RequestBody, UnreadBodyDoesNotBreakKeepAlive) {
    Server server;
    server.handle("POST /", [](const Request&, ResponseWriter& w) { w.write("ignored the body"); });
    std::string address = server.start("127.0.0.1:0");
    HttpConnection connection(address);
    connection.send_request("POST", "/", {}, std::string(1000, 'x'));
    EXPECT_EQ(connection.read_response().body, "ignored the body");
    connection.send_request("POST", "/", {}, "y");
    EXPECT_EQ(connection.read_response().body, "ignored the body");
}

}  // namespace
}  // namespace gobind::test
