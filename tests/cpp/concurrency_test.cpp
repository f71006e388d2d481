// Handlers running at once on Go's threads, driven by many client threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http_client.hpp"
#include "test_support.hpp"

namespace gobind::test {
namespace {

TEST(Concurrency, ManyClientThreads) {
    constexpr int threads = 16;
    constexpr int requests_per_thread = 25;
    Server server;
    std::atomic<int> served{0};
    server.handle("GET /echo/{n}", [&served](const Request& r, ResponseWriter& w) {
        served.fetch_add(1);
        w.write(r.path_value("n"));
    });
    std::string address = server.start("127.0.0.1:0");

    std::atomic<int> wrong{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < threads; ++t) {
        clients.emplace_back([&, t] {
            HttpConnection connection(address);
            for (int i = 0; i < requests_per_thread; ++i) {
                std::string n = std::to_string(t * 1000 + i);
                connection.send_request("GET", "/echo/" + n);
                if (connection.read_response().body != n) wrong.fetch_add(1);
            }
        });
    }
    for (auto& client : clients) client.join();
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(served.load(), threads * requests_per_thread);
}

TEST(Concurrency, HandlersRunInParallelOnSeveralThreads) {
    constexpr int clients_count = 8;
    Server server;
    std::mutex mutex;
    std::condition_variable all_arrived;
    int arrived = 0;
    std::set<std::thread::id> thread_ids;
    server.handle("GET /", [&](const Request&, ResponseWriter& w) {
        std::unique_lock<std::mutex> lock(mutex);
        ++arrived;
        thread_ids.insert(std::this_thread::get_id());
        all_arrived.notify_all();
        bool together = all_arrived.wait_for(lock, patience, [&] { return arrived == clients_count; });
        w.write(together ? "together" : "alone");
    });
    std::string address = server.start("127.0.0.1:0");

    std::vector<std::string> bodies(clients_count);
    std::vector<std::thread> clients;
    for (int i = 0; i < clients_count; ++i) {
        clients.emplace_back([&, i] { bodies[i] = request(address, "GET", "/").body; });
    }
    for (auto& client : clients) client.join();
    EXPECT_EQ(std::count(bodies.begin(), bodies.end(), "together"), clients_count);
    EXPECT_EQ(thread_ids.size(), static_cast<std::size_t>(clients_count));
}

TEST(Concurrency, MaxConcurrentCallsBoundsHandlers) {
    constexpr int clients_count = 8;
    Config config;
    config.max_concurrent_calls = 2;
    Server server(config);
    std::atomic<int> inside{0};
    std::atomic<int> most{0};
    server.handle("GET /", [&](const Request&, ResponseWriter& w) {
        int now = inside.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        // Long enough for the other clients' requests to arrive meanwhile.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        inside.fetch_sub(1);
        w.write("ok");
    });
    std::string address = server.start("127.0.0.1:0");

    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 0; i < clients_count; ++i) {
        clients.emplace_back([&] {
            if (request(address, "GET", "/").body == "ok") ok.fetch_add(1);
        });
    }
    for (auto& client : clients) client.join();
    EXPECT_EQ(ok.load(), clients_count);
    EXPECT_EQ(most.load(), 2);
}

}  // namespace
}  // namespace gobind::test
