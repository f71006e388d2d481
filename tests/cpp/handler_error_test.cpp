// Exceptions escaping handlers: a 500 or a cut response, and a log line.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

TEST(HandlerException, StdExceptionBecomes500) {
    Server server;
    LogCapture log;
    server.set_log(log.function());
    server.handle("GET /boom", [](const Request&, ResponseWriter& w) {
        w.header().set("X-Discarded", "yes");
        w.write("discarded");
        throw std::runtime_error("boom");
    });
    std::string address = server.start("127.0.0.1:0");
    HttpResponse response = request(address, "GET", "/boom");
    EXPECT_EQ(response.status, 500);
    EXPECT_EQ(response.body, "Internal Server Error\n");
    EXPECT_EQ(response.header("X-Discarded"), std::nullopt);
    EXPECT_EQ(log.wait_for(1), (std::vector<std::string>{"handler for \"GET /boom\" failed: boom"}));
}

TEST(HandlerException, OtherExceptionBecomes500) {
    Server server;
    LogCapture log;
    server.set_log(log.function());
    server.handle("GET /int", [](const Request&, ResponseWriter&) { throw 42; });
    std::string address = server.start("127.0.0.1:0");
    EXPECT_EQ(request(address, "GET", "/int").status, 500);
    EXPECT_EQ(log.wait_for(1), (std::vector<std::string>{"handler for \"GET /int\" failed: unknown exception"}));
}

TEST(HandlerException, AfterFlushCutsResponse) {
    Server server;
    LogCapture log;
    server.set_log(log.function());
    server.handle("GET /partial", [](const Request&, ResponseWriter& w) {
        w.write("partial");
        w.flush();
        throw std::runtime_error("failed midway");
    });
    std::string address = server.start("127.0.0.1:0");
    HttpConnection connection(address);
    connection.send_request("GET", "/partial");
    HttpResponse head = connection.read_head();
    EXPECT_EQ(head.status, 200);
    EXPECT_EQ(connection.read_body_piece(head), std::optional<std::string>("partial"));
    EXPECT_THROW(connection.read_body_piece(head), std::runtime_error);
    EXPECT_EQ(log.wait_for(1), (std::vector<std::string>{"handler for \"GET /partial\" failed: failed midway"}));
}

TEST(HandlerException, ServerKeepsServing) {
    Server server;
    server.set_log([](std::string_view) {});
    server.handle("GET /boom", [](const Request&, ResponseWriter&) { throw std::runtime_error("boom"); });
    server.handle("GET /ok", [](const Request&, ResponseWriter& w) { w.write("ok"); });
    std::string address = server.start("127.0.0.1:0");
    for (int i = 0; i < 3; ++i) EXPECT_EQ(request(address, "GET", "/boom").status, 500);
    EXPECT_EQ(request(address, "GET", "/ok").body, "ok");
}

TEST(HandlerException, ThrowingLogFunctionFallsBackToStderr) {
    Server server;
    server.set_log([](std::string_view) { throw std::runtime_error("log failed"); });
    server.handle("GET /boom", [](const Request&, ResponseWriter&) { throw std::runtime_error("boom"); });
    std::string address = server.start("127.0.0.1:0");
    testing::internal::CaptureStderr();
    int status = request(address, "GET", "/boom").status;
    std::string output = testing::internal::GetCapturedStderr();
    EXPECT_EQ(status, 500);
    EXPECT_NE(output.find("gobind: log function threw an exception; the line it received follows\n"),
              std::string::npos)
        << output;
    EXPECT_NE(output.find("gobind: handler for \"GET /boom\" failed: boom\n"), std::string::npos) << output;
}

TEST(HandlerException, DefaultLogIsStderr) {
    Server server;
    server.handle("GET /boom", [](const Request&, ResponseWriter&) { throw std::runtime_error("boom"); });
    std::string address = server.start("127.0.0.1:0");
    testing::internal::CaptureStderr();
    int status = request(address, "GET", "/boom").status;
    std::string output = testing::internal::GetCapturedStderr();
    EXPECT_EQ(status, 500);
    EXPECT_NE(output.find(" gobind: handler for \"GET /boom\" failed: boom\n"), std::string::npos) << output;
}

}  // namespace
}  // namespace gobind::test
