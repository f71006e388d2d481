// Helpers shared by the C++ tests.
#pragma once

#include <gobind/server.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

namespace gobind::test {

/// Upper bound of every wait in the tests: a broken server fails a test
/// after this long instead of hanging it. No test expects to reach it.
constexpr std::chrono::seconds patience{60};

/// Collects the lines of a server's log.
class LogCapture {
public:
    LogFunction function() {
        return [this](std::string_view line) {
            std::lock_guard<std::mutex> lock(mutex_);
            lines_.emplace_back(line);
            changed_.notify_all();
        };
    }

    std::vector<std::string> lines() {
        std::lock_guard<std::mutex> lock(mutex_);
        return lines_;
    }

    /// Wait until at least `count` lines arrived; returns them.
    std::vector<std::string> wait_for(std::size_t count) {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait_for(lock, patience, [&] { return lines_.size() >= count; });
        return lines_;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> lines_;
};

/// A one-shot event that threads can wait for.
class Event {
public:
    void set() {
        std::lock_guard<std::mutex> lock(mutex_);
        set_ = true;
        changed_.notify_all();
    }

    /// Wait until set; returns false if `patience` passed first.
    bool wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return set_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool set_ = false;
};

/// Config for a test server on a free loopback port.
inline Config local_config() {
    Config config;
    config.address = "127.0.0.1:0";
    return config;
}

}  // namespace gobind::test
