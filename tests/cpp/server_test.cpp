// Server lifecycle: start, bound address, errors, move semantics, release.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

Handler reply(std::string text) {
    return [text](const Request&, ResponseWriter& w) { w.write(text); };
}

std::string port_of(const std::string& address) { return address.substr(address.rfind(':') + 1); }

TEST(ServerStart, PortZeroReturnsBoundAddress) {
    Server server;
    std::string address = server.start("127.0.0.1:0");
    EXPECT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
    EXPECT_NE(port_of(address), "0");
    EXPECT_EQ(server.address(), address);
}

TEST(ServerStart, AddressEmptyBeforeStart) {
    Server server;
    EXPECT_EQ(server.address(), "");
}

TEST(ServerStart, UsesConfigAddress) {
    Server server(local_config());
    server.handle("GET /", reply("up"));
    std::string address = server.start();
    EXPECT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
    EXPECT_EQ(request(address, "GET", "/").body, "up");
}

// C++20 designated initializers, which GCC also accepts in C++17 mode as an
// extension (with a warning under -Wpedantic).
TEST(ServerStart, DesignatedConfig) {
    Server server({.address = "127.0.0.1:0", .max_concurrent_calls = 4});
    EXPECT_EQ(server.config().max_concurrent_calls, 4);
    EXPECT_EQ(server.start().rfind("127.0.0.1:", 0), 0u);
}

TEST(ServerStart, DefaultConfigAddress) {
    EXPECT_EQ(Config().address, "127.0.0.1:8000");
}

TEST(ServerStart, Ipv6Loopback) {
    Server server;
    server.handle("GET /", reply("v6"));
    std::string address = server.start("[::1]:0");
    EXPECT_EQ(address.rfind("[::1]:", 0), 0u) << address;
    EXPECT_EQ(request(address, "GET", "/").body, "v6");
}

TEST(ServerStart, TwiceThrowsWrongState) {
    Server server;
    server.start("127.0.0.1:0");
    try {
        server.start("127.0.0.1:0");
        FAIL() << "second start did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::wrong_state);
        EXPECT_STREQ(error.what(), "server is already started");
    }
}

TEST(ServerStart, PortInUseThrowsOsError) {
    Server first;
    std::string address = first.start("127.0.0.1:0");
    Server second;
    try {
        second.start(address);
        FAIL() << "start on a used port did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::os_error);
        EXPECT_EQ(error.sys_errno(), EADDRINUSE);
        EXPECT_EQ(std::string(error.what()), "listen tcp " + address + ": bind: address already in use");
    }
}

TEST(ServerStart, MalformedAddressThrowsInvalidArgument) {
    Server server;
    try {
        server.start("localhost");
        FAIL() << "start on a malformed address did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
        EXPECT_STREQ(error.what(),
                     "invalid address \"localhost\": expected host:port, unix:/path or fd:N "
                     "(address localhost: missing port in address)");
    }
}

// Two servers serve one listening socket, as the worker processes of a
// supervisor do, each from its own descriptor of it.
TEST(ServerStart, OpenedListenerServedByTwoServers) {
    Listener listener = open_listener("127.0.0.1:0");
    ASSERT_GE(listener.fd, 0);
    EXPECT_EQ(listener.address.rfind("127.0.0.1:", 0), 0u) << listener.address;
    int second_fd = ::dup(listener.fd);
    ASSERT_GE(second_fd, 0);

    Server first;
    first.handle("GET /", reply("first"));
    EXPECT_EQ(first.start("fd:" + std::to_string(listener.fd)), listener.address);
    Server second;
    second.handle("GET /", reply("second"));
    EXPECT_EQ(second.start("fd:" + std::to_string(second_fd)), listener.address);

    // Whichever server accepts the connection serves it. Once the first
    // server closes, the second serves the socket alone.
    std::string body = request(listener.address, "GET", "/").body;
    EXPECT_TRUE(body == "first" || body == "second") << body;
    first.close();
    EXPECT_EQ(request(listener.address, "GET", "/").body, "second");
}

TEST(ServerStart, DescriptorThatDoesNotListenThrowsInvalidArgument) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    Server server;
    try {
        server.start("fd:" + std::to_string(fd));
        FAIL() << "start on a socket that does not listen did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
        EXPECT_NE(std::string(error.what()).find("is a socket that does not listen"), std::string::npos)
            << error.what();
    }
    EXPECT_EQ(::close(fd), 0) << "the descriptor of a failed start stays the caller's";
}

TEST(ServerStart, UnixSocket) {
    std::string path = testing::TempDir() + "gobind-test-" + std::to_string(::getpid()) + ".sock";
    Server server;
    std::string address = server.start("unix:" + path);
    EXPECT_EQ(address, "unix:" + path);
    server.close();
    ::unlink(path.c_str());
}

TEST(ServerHandle, InvalidPatternThrows) {
    Server server;
    try {
        server.handle("GET /{", reply(""));
        FAIL() << "invalid pattern did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
        EXPECT_STREQ(error.what(),
                     "invalid pattern \"GET /{\": parsing \"GET /{\": at offset 5: bad wildcard segment "
                     "(must end with '}')");
    }
}

TEST(ServerHandle, ConflictingPatternThrows) {
    Server server;
    server.handle("GET /items/{id}", reply(""));
    try {
        server.handle("GET /items/{name}", reply(""));
        FAIL() << "conflicting pattern did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
        EXPECT_EQ(std::string(error.what()).rfind("invalid pattern \"GET /items/{name}\": pattern \"GET "
                                                  "/items/{name}\"",
                                                  0),
                  0u)
            << error.what();
    }
}

TEST(ServerHandle, UnmatchedPathIs404) {
    Server server;
    server.handle("GET /known", reply("known"));
    std::string address = server.start("127.0.0.1:0");
    EXPECT_EQ(request(address, "GET", "/unknown").status, 404);
}

TEST(ServerHandle, WrongMethodIs405) {
    Server server;
    server.handle("GET /known", reply("known"));
    std::string address = server.start("127.0.0.1:0");
    EXPECT_EQ(request(address, "DELETE", "/known").status, 405);
}

TEST(ServerAccessLog, ReportsRouterResponsesOnly) {
    Server server;
    server.handle("GET /items/{id}", [](const Request&, ResponseWriter& w) { w.write("item"); });
    std::mutex mutex;
    std::vector<std::string> entries;
    server.set_access_log([&](const AccessEntry& entry) {
        std::lock_guard<std::mutex> lock(mutex);
        entries.push_back(std::string(entry.method) + " " + std::string(entry.target) + " " +
                          std::string(entry.protocol) + " " + std::to_string(entry.status) + " " +
                          std::to_string(entry.body_bytes) + (entry.remote_addr.empty() ? " no remote" : ""));
    });
    std::string address = server.start("127.0.0.1:0");
    EXPECT_EQ(request(address, "GET", "/items/1").status, 200);
    EXPECT_EQ(request(address, "GET", "/missing?x=1").status, 404);
    EXPECT_EQ(request(address, "DELETE", "/items/1").status, 405);
    server.release();
    EXPECT_EQ(entries, (std::vector<std::string>{"GET /missing?x=1 HTTP/1.1 404 19",
                                                 "DELETE /items/1 HTTP/1.1 405 19"}));
}

TEST(ServerHandleAll, ReceivesUncleanedPaths) {
    Server server;
    server.handle_all([](const Request& r, ResponseWriter& w) { w.write(r.target()); });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/a/../b//c");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "/a/../b//c");
}

TEST(ServerMove, ConstructedServerKeepsHandlers) {
    Server original;
    original.handle("GET /", reply("moved"));
    Server moved(std::move(original));
    std::string address = moved.start("127.0.0.1:0");
    EXPECT_EQ(request(address, "GET", "/").body, "moved");
}

TEST(ServerMove, MovedFromThrowsUnknownHandle) {
    Server original;
    Server moved(std::move(original));
    try {
        original.start("127.0.0.1:0");
        FAIL() << "start on a moved-from server did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::unknown_handle);
        EXPECT_STREQ(error.what(), "server is empty: it was moved from or released");
    }
}

TEST(ServerMove, MovedFromCloseAndReleaseDoNothing) {
    Server original;
    Server moved(std::move(original));
    EXPECT_NO_THROW(original.close());
    EXPECT_NO_THROW(original.release());
}

TEST(ServerMove, MoveKeepsAddress) {
    Server original;
    std::string address = original.start("127.0.0.1:0");
    Server moved(std::move(original));
    EXPECT_EQ(moved.address(), address);
    EXPECT_EQ(original.address(), "");
}

TEST(ServerMove, AssignmentReleasesTarget) {
    Server target;
    target.handle("GET /", reply("target"));
    std::string old_address = target.start("127.0.0.1:0");
    Server source;
    source.handle("GET /", reply("source"));
    std::string new_address = source.start("127.0.0.1:0");

    target = std::move(source);
    EXPECT_THROW(HttpConnection connection(old_address), std::runtime_error);
    EXPECT_EQ(request(new_address, "GET", "/").body, "source");
    EXPECT_EQ(target.address(), new_address);
}

TEST(ServerMove, VectorReallocationKeepsServing) {
    std::vector<Server> servers;
    std::vector<std::string> addresses;
    for (int i = 0; i < 8; ++i) {
        Server server;
        server.handle("GET /", reply(std::to_string(i)));
        addresses.push_back(server.start("127.0.0.1:0"));
        servers.push_back(std::move(server));
    }
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(request(addresses[i], "GET", "/").body, std::to_string(i)) << "server " << i;
    }
}

TEST(ServerRelease, IsIdempotent) {
    Server server;
    server.start("127.0.0.1:0");
    server.release();
    EXPECT_NO_THROW(server.release());
}

TEST(ServerRelease, StatsAfterReleaseThrows) {
    Server server;
    server.release();
    EXPECT_THROW(server.stats(), Error);
}

TEST(ServerStats, CountsOpenConnection) {
    Server server;
    server.handle("GET /", reply("ok"));
    std::string address = server.start("127.0.0.1:0");
    HttpConnection connection(address);
    connection.send_request("GET", "/");
    EXPECT_EQ(connection.read_response().body, "ok");
    EXPECT_EQ(server.stats().open_connections, 1);
    EXPECT_EQ(server.stats().active_requests, 0);
}

TEST(ServerWait, TimesOutWhileServing) {
    Server server;
    server.start("127.0.0.1:0");
    EXPECT_FALSE(server.wait(std::chrono::milliseconds(1)));
}

TEST(ServerWait, BeforeStartThrowsWrongState) {
    Server server;
    try {
        server.wait(std::chrono::milliseconds(1));
        FAIL() << "wait before start did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::wrong_state);
        EXPECT_STREQ(error.what(), "server is not started");
    }
}

TEST(ServerKeepAlive, ServesSeveralRequestsOnOneConnection) {
    Server server;
    server.handle("GET /{n}", [](const Request& r, ResponseWriter& w) { w.write(r.path_value("n")); });
    std::string address = server.start("127.0.0.1:0");
    HttpConnection connection(address);
    for (int i = 0; i < 5; ++i) {
        connection.send_request("GET", "/" + std::to_string(i));
        EXPECT_EQ(connection.read_response().body, std::to_string(i));
    }
}

}  // namespace
}  // namespace gobind::test
