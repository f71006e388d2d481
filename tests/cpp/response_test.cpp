// ResponseWriter: status, header fields, flush and large bodies.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <future>
#include <stdexcept>
#include <string>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

std::vector<std::string> values_of(const HttpResponse& response, const std::string& name) {
    std::vector<std::string> found;
    for (const auto& [key, value] : response.headers) {
        if (key == name) found.push_back(value);
    }
    return found;
}

TEST(ResponseStatus, DefaultIs200WithEmptyBody) {
    Server server;
    server.handle("GET /", [](const Request&, ResponseWriter&) {});
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.header("Content-Length"), std::optional<std::string>("0"));
    EXPECT_EQ(response.body, "");
}

TEST(ResponseStatus, CustomStatusAndFields) {
    Server server;
    server.handle("POST /items", [](const Request&, ResponseWriter& w) {
        w.write_header(201);
        w.header().set("Location", "/items/7");
        w.header().add("X-Tag", "a");
        w.header().add("X-Tag", "b");
        w.write("created");
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "POST", "/items");
    EXPECT_EQ(response.status, 201);
    EXPECT_EQ(response.header("Location"), std::optional<std::string>("/items/7"));
    EXPECT_EQ(values_of(response, "X-Tag"), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(response.header("Content-Length"), std::optional<std::string>("7"));
    EXPECT_EQ(response.body, "created");
}

TEST(ResponseStatus, InvalidStatusThrows) {
    Server server;
    std::string message;
    server.handle("GET /", [&message](const Request&, ResponseWriter& w) {
        try {
            w.write_header(1000);
        } catch (const std::invalid_argument& error) {
            message = error.what();
        }
    });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "GET", "/").status, 200);
    EXPECT_EQ(message, "invalid status code 1000: must be 100-999");
}

TEST(ResponseStatus, EarlyHintsPrecedeFinalResponse) {
    Server server;
    server.handle("GET /", [](const Request&, ResponseWriter& w) {
        w.header().set("Link", "</style.css>; rel=preload");
        w.write_header(103);
        w.header().set("Content-Type", "text/plain");
        w.write("final");
    });
    std::string address = server.start("127.0.0.1:0");
    HttpConnection connection(address);
    connection.send_request("GET", "/");
    HttpResponse hints = connection.read_head();
    EXPECT_EQ(hints.status, 103);
    EXPECT_EQ(hints.headers, (Fields{{"Link", "</style.css>; rel=preload"}}));
    HttpResponse response = connection.read_response();
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.header("Link"), std::optional<std::string>("</style.css>; rel=preload"));
    EXPECT_EQ(response.body, "final");
}

TEST(ResponseStatus, EarlyHintsAfterBodyThrows) {
    Server server;
    std::string message;
    server.handle("GET /", [&message](const Request&, ResponseWriter& w) {
        w.write("body first");
        try {
            w.write_header(103);
        } catch (const std::logic_error& error) {
            message = error.what();
        }
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "body first");
    EXPECT_EQ(message, "write_header(103) called after the final status or body bytes");
}

TEST(ResponseStatus, SwitchingProtocolsThrows) {
    Server server;
    std::string message;
    server.handle("GET /", [&message](const Request&, ResponseWriter& w) {
        try {
            w.write_header(101);
        } catch (const std::invalid_argument& error) {
            message = error.what();
        }
    });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "GET", "/").status, 200);
    EXPECT_EQ(message, "invalid status code 101: handlers cannot switch protocols");
}

TEST(ResponseStatus, WriteHeaderAfterFlushThrows) {
    Server server;
    std::string message;
    server.handle("GET /", [&message](const Request&, ResponseWriter& w) {
        w.write("started");
        w.flush();
        try {
            w.write_header(404);
        } catch (const std::logic_error& error) {
            message = error.what();
        }
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(message, "write_header called after the response header was sent");
}

TEST(ResponseHeader, InvalidNameThrows) {
    Server server;
    std::string message;
    server.handle("GET /", [&message](const Request&, ResponseWriter& w) {
        try {
            w.header().set("Bad Name", "x");
        } catch (const std::invalid_argument& error) {
            message = error.what();
        }
    });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "GET", "/").status, 200);
    EXPECT_EQ(message.rfind("invalid header name \"Bad Name\"", 0), 0u) << message;
}

TEST(ResponseHeader, ConflictingContentLengthThrows) {
    Header header;
    header.add("Content-Length", "1");
    header.add("content-length", "1");
    EXPECT_EQ(header.values("Content-Length").size(), 1u);
    try {
        header.add("Content-Length", "2");
        FAIL() << "a second, different Content-Length was accepted";
    } catch (const std::invalid_argument& error) {
        EXPECT_STREQ(error.what(), "conflicting Content-Length values \"1\" and \"2\": a response has one length");
    }
    EXPECT_EQ(header.values("Content-Length").size(), 1u);
}

TEST(ResponseHeader, SameContentLengthWithLeadingZeroKeptOnce) {
    Header header;
    header.add("Content-Length", "05");
    header.add("content-length", "5");
    EXPECT_EQ(header.values("Content-Length"), std::vector<std::string_view>{"05"});
}

TEST(ResponseHeader, InvalidContentLengthThrows) {
    for (std::string value : {"+5", "-0", " 5", "5 ", "", "abc", "0x10", "9223372036854775808"}) {
        Header header;
        try {
            header.set("Content-Length", value);
            FAIL() << "Content-Length \"" << value << "\" was accepted";
        } catch (const std::invalid_argument& error) {
            EXPECT_EQ(std::string(error.what()),
                      "invalid Content-Length \"" + value + "\": it must be a number of bytes, digits only");
        }
        EXPECT_THROW(header.add("Content-Length", value), std::invalid_argument) << value;
        EXPECT_TRUE(header.empty()) << value;
    }
    Header largest;
    largest.set("Content-Length", "9223372036854775807");
    EXPECT_EQ(largest.get("Content-Length"), std::optional<std::string_view>("9223372036854775807"));
}

TEST(ResponseFlush, DeliversBeforeHandlerReturns) {
    Server server;
    Event client_saw_first;
    bool handler_waited = false;
    server.handle("GET /stream", [&](const Request&, ResponseWriter& w) {
        w.write("first");
        w.flush();
        handler_waited = client_saw_first.wait();
        w.write("second");
    });
    std::string address = server.start("127.0.0.1:0");

    HttpConnection connection(address);
    connection.send_request("GET", "/stream");
    HttpResponse head = connection.read_head();
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(head.header("Transfer-Encoding"), std::optional<std::string>("chunked"));
    EXPECT_EQ(connection.read_body_piece(head), std::optional<std::string>("first"));
    client_saw_first.set();
    EXPECT_EQ(connection.read_body_piece(head), std::optional<std::string>("second"));
    EXPECT_EQ(connection.read_body_piece(head), std::nullopt);
    EXPECT_TRUE(handler_waited);
}

TEST(ResponseFinish, DeliversBeforeHandlerReturns) {
    Server server;
    Event client_saw_body;
    std::promise<bool> handler_waited;
    std::future<bool> waited = handler_waited.get_future();
    server.handle("GET /", [&](const Request&, ResponseWriter& w) {
        w.write("done");
        w.finish();
        handler_waited.set_value(client_saw_body.wait());
    });
    std::string address = server.start("127.0.0.1:0");

    HttpResponse response = request(address, "GET", "/");
    client_saw_body.set();
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "done");
    EXPECT_TRUE(waited.get());
}

TEST(ResponseWriter, AccessorsTrackProgress) {
    Server server;
    int status = 0;
    std::uint64_t written = 0;
    bool sent_before = true, sent_after = false;
    server.handle("GET /", [&](const Request&, ResponseWriter& w) {
        w.write_header(202);
        sent_before = w.header_sent();
        w.write("12345");
        w.flush();
        sent_after = w.header_sent();
        status = w.status();
        written = w.bytes_written();
    });
    std::string address = server.start("127.0.0.1:0");
    ASSERT_EQ(request(address, "GET", "/").status, 202);
    EXPECT_FALSE(sent_before);
    EXPECT_TRUE(sent_after);
    EXPECT_EQ(status, 202);
    EXPECT_EQ(written, 5u);
}

TEST(ResponseBody, Download20MegabytesInPieces) {
    constexpr std::size_t size = 20 << 20;
    Server server;
    server.handle("GET /download", [](const Request&, ResponseWriter& w) {
        for (std::size_t offset = 0; offset < size; offset += 1 << 20) w.write(pattern_bytes(offset, 1 << 20));
    });
    std::string address = server.start("127.0.0.1:0");

    HttpConnection connection(address);
    connection.send_request("GET", "/download");
    HttpResponse head = connection.read_head();
    ASSERT_EQ(head.status, 200);
    std::size_t received = 0;
    std::uint64_t hash = fnv1a({});
    while (auto piece = connection.read_body_piece(head)) {
        hash = fnv1a(*piece, hash);
        received += piece->size();
    }
    EXPECT_EQ(received, size);
    EXPECT_EQ(hash, fnv1a(pattern_bytes(0, size)));
}

TEST(ResponseBody, Echo20Megabytes) {
    constexpr std::size_t size = 20 << 20;
    Server server;
    server.handle("POST /echo", [](Request& r, ResponseWriter& w) {
        w.header().set("Content-Type", "application/octet-stream");
        w.write(r.read_all());
    });
    std::string address = server.start("127.0.0.1:0");
    std::string payload = pattern_bytes(0, size);
    HttpResponse response = request(address, "POST", "/echo", {}, payload);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body.size(), size);
    EXPECT_EQ(fnv1a(response.body), fnv1a(payload));
}

TEST(ResponseBody, SendFileAfterBufferedBytes) {
    std::string content = pattern_bytes(0, 300000);
    FILE* file = std::tmpfile();
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(std::fwrite(content.data(), 1, content.size(), file), content.size());
    ASSERT_EQ(std::fflush(file), 0);
    int fd = fileno(file);
    std::int64_t sent = 0;
    std::uint64_t written = 0;
    Server server;
    server.handle("GET /file", [&](const Request&, ResponseWriter& w) {
        // Skip the first 1000 bytes, then send the next 200000 after a prefix.
        lseek(fd, 1000, SEEK_SET);
        w.header().set("Content-Length", std::to_string(6 + 200000));
        w.write("prefix");
        sent = w.send_file(fd, 200000);
        written = w.bytes_written();
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/file");
    std::fclose(file);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "prefix" + content.substr(1000, 200000));
    EXPECT_EQ(sent, 200000);
    EXPECT_EQ(written, 6u + 200000u);
}

TEST(ResponseBody, SmallWritesAreCoalesced) {
    Server server;
    server.handle("GET /", [](const Request&, ResponseWriter& w) {
        for (int i = 0; i < 1000; ++i) w.write("x");
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/");
    EXPECT_EQ(response.header("Content-Length"), std::optional<std::string>("1000"));
    EXPECT_EQ(response.body, std::string(1000, 'x'));
}

}  // namespace
}  // namespace gobind::test
