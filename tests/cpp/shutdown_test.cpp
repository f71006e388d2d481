// Graceful shutdown, its timeout, close, and listen_and_serve returning.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

// Whether new connections to address are refused, polled until they are or
// `patience` passes: shutdown closes the listener from another thread.
bool refuses_connections(const std::string& address) {
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            HttpConnection probe(address);
        } catch (const std::runtime_error&) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

// A server whose "GET /slow" handler signals `entered` and then waits for
// `release` before it responds.
struct SlowServer {
    Server server;
    Event entered;
    Event release;
    std::string address;

    SlowServer() {
        server.set_log([](std::string_view) {});
        server.handle("GET /slow", [this](const Request&, ResponseWriter& w) {
            entered.set();
            release.wait();
            w.write("finished");
        });
        address = server.start("127.0.0.1:0");
    }
};

TEST(Shutdown, WaitsForInFlightRequest) {
    SlowServer slow;
    auto client = std::async(std::launch::async, [&] { return request(slow.address, "GET", "/slow"); });
    ASSERT_TRUE(slow.entered.wait());
    EXPECT_EQ(slow.server.stats().active_requests, 1);

    auto graceful = std::async(std::launch::async, [&] { return slow.server.shutdown(patience); });
    EXPECT_TRUE(refuses_connections(slow.address));
    slow.release.set();
    EXPECT_TRUE(graceful.get());
    HttpResponse response = client.get();
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "finished");
}

TEST(Shutdown, TimeoutClosesRemainingConnections) {
    SlowServer slow;
    auto client = std::async(std::launch::async, [&] { return request(slow.address, "GET", "/slow"); });
    ASSERT_TRUE(slow.entered.wait());

    EXPECT_FALSE(slow.server.shutdown(std::chrono::milliseconds(50)));
    EXPECT_THROW(client.get(), std::runtime_error);
    slow.release.set();
}

TEST(Shutdown, StopsWait) {
    Server server;
    server.start("127.0.0.1:0");
    EXPECT_TRUE(server.shutdown(std::chrono::seconds(1)));
    EXPECT_TRUE(server.wait(std::chrono::milliseconds(0)));
}

TEST(Shutdown, ListenAndServeReturns) {
    Server server;
    server.handle("GET /", [](const Request&, ResponseWriter& w) { w.write("ok"); });
    std::string address = server.start("127.0.0.1:0");
    auto serving = std::async(std::launch::async, [&] { server.listen_and_serve(); });
    EXPECT_EQ(request(address, "GET", "/").body, "ok");
    EXPECT_TRUE(server.shutdown());
    EXPECT_EQ(serving.wait_for(patience), std::future_status::ready);
    EXPECT_NO_THROW(serving.get());
}

TEST(Shutdown, CloseFromHandlerStopsListenAndServe) {
    Server server;
    server.set_log([](std::string_view) {});
    server.handle("POST /quit", [&server](const Request&, ResponseWriter& w) {
        w.write("bye");
        w.flush();
        server.close();
    });
    std::string address = server.start("127.0.0.1:0");
    auto serving = std::async(std::launch::async, [&] { server.listen_and_serve(); });
    HttpConnection connection(address);
    connection.send_request("POST", "/quit");
    EXPECT_EQ(connection.read_head().status, 200);
    EXPECT_EQ(serving.wait_for(patience), std::future_status::ready);
}

TEST(ListenAndServe, StartFailureThrows) {
    Config config;
    config.address = "localhost";
    Server server(config);
    try {
        server.listen_and_serve();
        FAIL() << "listen_and_serve on a malformed address did not throw";
    } catch (const Error& error) {
        EXPECT_EQ(error.code(), ErrorCode::invalid_argument);
    }
}

TEST(Release, WaitsForRunningHandler) {
    auto slow = std::make_unique<SlowServer>();
    auto client = std::async(std::launch::async, [&] {
        try {
            return request(slow->address, "GET", "/slow").status;
        } catch (const std::runtime_error&) {
            return 0;
        }
    });
    ASSERT_TRUE(slow->entered.wait());
    std::atomic<bool> released{false};
    auto releasing = std::async(std::launch::async, [&] {
        slow->server.release();
        released.store(true);
    });
    EXPECT_EQ(releasing.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
    EXPECT_FALSE(released.load());
    slow->release.set();
    releasing.get();
    EXPECT_TRUE(released.load());
    client.get();
}

}  // namespace
}  // namespace gobind::test
