// SignalGuard and listen_and_serve's signal handling, with real signals
// sent to this test process.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

void (*current_handler(int signal))(int) {
    struct sigaction action {};
    sigaction(signal, nullptr, &action);
    return action.sa_handler;
}

TEST(SignalGuard, WaitReturnsCaughtSignal) {
    SignalGuard guard({SIGUSR1});
    ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
    EXPECT_EQ(guard.wait(patience), SIGUSR1);
}

TEST(SignalGuard, QueuesSignalsInOrder) {
    SignalGuard guard({SIGUSR1, SIGUSR2});
    ASSERT_EQ(::kill(::getpid(), SIGUSR2), 0);
    ASSERT_EQ(guard.wait(patience), SIGUSR2);
    ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
    EXPECT_EQ(guard.wait(patience), SIGUSR1);
}

TEST(SignalGuard, InterruptReturnsZero) {
    SignalGuard guard({SIGUSR1});
    std::thread other([&guard] { guard.interrupt(); });
    EXPECT_EQ(guard.wait(patience), 0);
    other.join();
}

TEST(SignalGuard, TimeoutReturnsZero) {
    SignalGuard guard({SIGUSR1});
    EXPECT_EQ(guard.wait(std::chrono::milliseconds(1)), 0);
}

TEST(SignalGuard, DefaultCatchesIntAndTerm) {
    SignalGuard guard;
    EXPECT_EQ(guard.signals(), (std::vector<int>{SIGINT, SIGTERM}));
    EXPECT_NE(current_handler(SIGINT), SIG_DFL);
    EXPECT_NE(current_handler(SIGTERM), SIG_DFL);
}

TEST(SignalGuard, SecondGuardThrows) {
    SignalGuard guard({SIGUSR1});
    try {
        SignalGuard second({SIGUSR2});
        FAIL() << "a second guard did not throw";
    } catch (const std::logic_error& error) {
        EXPECT_STREQ(error.what(), "a gobind::SignalGuard already exists; only one may catch signals at a time");
    }
}

TEST(SignalGuard, UncatchableSignalThrows) {
    try {
        SignalGuard guard({SIGKILL});
        FAIL() << "a guard for SIGKILL did not throw";
    } catch (const std::invalid_argument& error) {
        EXPECT_STREQ(error.what(), "invalid signal 9: SignalGuard catches signals 1-255 except SIGKILL and SIGSTOP");
    }
}

void own_handler(int) {}

TEST(SignalGuard, RestoresPreviousHandler) {
    struct sigaction own {};
    own.sa_handler = own_handler;
    struct sigaction before {};
    ASSERT_EQ(sigaction(SIGUSR2, &own, &before), 0);
    {
        SignalGuard guard({SIGUSR2});
        EXPECT_NE(current_handler(SIGUSR2), own_handler);
    }
    EXPECT_EQ(current_handler(SIGUSR2), own_handler);
    sigaction(SIGUSR2, &before, nullptr);
}

TEST(SignalGuard, RestoresHandlerOfSignalListedTwice) {
    struct sigaction own {};
    own.sa_handler = own_handler;
    struct sigaction before {};
    ASSERT_EQ(sigaction(SIGUSR2, &own, &before), 0);
    { SignalGuard guard({SIGUSR2, SIGUSR2}); }
    EXPECT_EQ(current_handler(SIGUSR2), own_handler);
    sigaction(SIGUSR2, &before, nullptr);
}

TEST(SignalGuard, HugeTimeoutStillWaits) {
    SignalGuard guard({SIGUSR1});
    std::thread sender([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        ::kill(::getpid(), SIGUSR1);
    });
    EXPECT_EQ(guard.wait(std::chrono::milliseconds::max()), SIGUSR1);
    sender.join();
}

TEST(SignalGuard, NextGuardDropsStaleSignals) {
    {
        SignalGuard guard({SIGUSR1});
        ASSERT_EQ(::kill(::getpid(), SIGUSR1), 0);
        ASSERT_EQ(guard.wait(patience), SIGUSR1);
        guard.interrupt();
    }
    SignalGuard guard({SIGUSR1});
    EXPECT_EQ(guard.wait(std::chrono::milliseconds(1)), 0);
}

TEST(SignalName, KnownAndNumbered) {
    EXPECT_EQ(signal_name(SIGINT), "SIGINT");
    EXPECT_EQ(signal_name(SIGTERM), "SIGTERM");
    EXPECT_EQ(signal_name(SIGWINCH), "signal " + std::to_string(SIGWINCH));
}

TEST(ListenAndServeSignals, FirstSignalShutsDown) {
    SignalGuard guard;
    Server server;
    LogCapture log;
    server.set_log(log.function());
    server.handle("GET /", [](const Request&, ResponseWriter& w) { w.write("ok"); });
    std::string address = server.start("127.0.0.1:0");
    auto serving = std::async(std::launch::async, [&] { server.listen_and_serve(guard); });
    EXPECT_EQ(request(address, "GET", "/").body, "ok");

    ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
    ASSERT_EQ(serving.wait_for(patience), std::future_status::ready);
    EXPECT_NO_THROW(serving.get());
    EXPECT_EQ(log.lines(), (std::vector<std::string>{
                               "received SIGTERM: shutting down, waiting up to 30000 ms for 0 in-flight "
                               "requests; send it again to close every connection now"}));
}

TEST(ListenAndServeSignals, SecondSignalClosesConnections) {
    SignalGuard guard;
    Server server;
    LogCapture log;
    server.set_log(log.function());
    Event entered, release;
    server.handle("GET /slow", [&](const Request&, ResponseWriter& w) {
        entered.set();
        release.wait();
        w.write("late");
    });
    std::string address = server.start("127.0.0.1:0");
    auto serving = std::async(std::launch::async, [&] { server.listen_and_serve(guard); });
    auto client = std::async(std::launch::async, [&] { return request(address, "GET", "/slow"); });
    ASSERT_TRUE(entered.wait());

    ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
    log.wait_for(1);
    ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
    ASSERT_EQ(serving.wait_for(patience), std::future_status::ready);
    EXPECT_THROW(client.get(), std::runtime_error);
    auto lines = log.wait_for(2);
    ASSERT_GE(lines.size(), 2u);
    EXPECT_EQ(lines[0],
              "received SIGINT: shutting down, waiting up to 30000 ms for 1 in-flight request; send it again "
              "to close every connection now");
    EXPECT_EQ(lines[1], "received SIGINT again: closing every connection");
    release.set();
}

TEST(ListenAndServeSignals, ConfigFlagInstallsGuard) {
    Config config = local_config();
    config.handle_signals = true;
    Server server(config);
    server.set_log([](std::string_view) {});
    auto serving = std::async(std::launch::async, [&] { server.listen_and_serve(); });

    // The guard is installed inside listen_and_serve, on the other thread.
    auto deadline = std::chrono::steady_clock::now() + patience;
    while (current_handler(SIGTERM) == SIG_DFL && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_NE(current_handler(SIGTERM), SIG_DFL);
    ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
    ASSERT_EQ(serving.wait_for(patience), std::future_status::ready);
    EXPECT_NO_THROW(serving.get());
    EXPECT_EQ(current_handler(SIGTERM), SIG_DFL);
}

TEST(ListenAndServeSignals, ConfigFlagWithExistingGuardThrows) {
    SignalGuard guard({SIGUSR1});
    Config config = local_config();
    config.handle_signals = true;
    Server server(config);
    EXPECT_THROW(server.listen_and_serve(), std::logic_error);
}

}  // namespace
}  // namespace gobind::test
