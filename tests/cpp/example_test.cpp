// The example program examples/cpp/hello.cpp, run as a child process: it
// prints its bound address, serves, and exits cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "http_client.hpp"
#include "test_support.hpp"

extern char** environ;

namespace gobind::test {
namespace {

// The example process with its standard output on a pipe. posix_spawn
// execs at once, which is safe in a process that runs the Go runtime.
class HelloProcess {
public:
    HelloProcess() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        std::string program = program_path();
        char address[] = "127.0.0.1:0";
        char* argv[] = {program.data(), address, nullptr};
        int rc = posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(fds[0]);
            throw std::runtime_error("spawning " + program + " failed: " + std::strerror(rc));
        }
        output_ = ::fdopen(fds[0], "r");
    }

    ~HelloProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        if (output_ != nullptr) std::fclose(output_);
    }

    std::string read_line() {
        char line[256] = "";
        if (std::fgets(line, sizeof line, output_) == nullptr) return "";
        std::string text(line);
        if (!text.empty() && text.back() == '\n') text.pop_back();
        return text;
    }

    // Send signal and wait for the exit; returns the wait status.
    int stop(int signal) {
        ::kill(pid_, signal);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = 0;
        return status;
    }

private:
    // GOBIND_HELLO names another build of the example, such as one linked
    // against an installed gobind; by default the one built beside the tests.
    static std::string program_path() {
        const char* other = std::getenv("GOBIND_HELLO");
        return other != nullptr && *other != '\0' ? other : GOBIND_HELLO_PATH;
    }

    pid_t pid_ = 0;
    std::FILE* output_ = nullptr;
};

TEST(ExampleHello, GreetsByName) {
    HelloProcess hello;
    std::string address = hello.read_line();
    ASSERT_EQ(address.rfind("127.0.0.1:", 0), 0u) << address;
    HttpResponse response = request(address, "GET", "/hello/world");
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.header("Content-Type"), std::optional<std::string>("text/plain"));
    EXPECT_EQ(response.body, "Hello, world\n");
}

TEST(ExampleHello, PlainHello) {
    HelloProcess hello;
    std::string address = hello.read_line();
    EXPECT_EQ(request(address, "GET", "/hello").body, "Hello, world");
}

TEST(ExampleHello, ExitsCleanlyOnSigterm) {
    HelloProcess hello;
    std::string address = hello.read_line();
    ASSERT_EQ(request(address, "GET", "/hello").status, 200);
    int status = hello.stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(ExampleHello, ExitsCleanlyOnSigint) {
    HelloProcess hello;
    ASSERT_NE(hello.read_line(), "");
    int status = hello.stop(SIGINT);
    ASSERT_TRUE(WIFEXITED(status)) << "wait status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace gobind::test
