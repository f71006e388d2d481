// hello: a gobind server with C++ handlers.
//
//   gobind_cpp_hello [ADDRESS]
//
// binds ADDRESS (default 127.0.0.1:8000; port 0 picks a free port), prints
// the bound address on standard output, and serves until SIGINT or SIGTERM:
//
//   curl http://127.0.0.1:8000/hello/world
#include <gobind/server.hpp>

#include <iostream>
#include <string>

int main(int argc, char** argv) {
    // Caught from here on, so that a signal sent right after the address
    // is printed shuts the server down instead of killing the process.
    gobind::SignalGuard signals;

    gobind::Config config;
    if (argc > 1) config.address = argv[1];
    gobind::Server server(config);

    server.handle("GET /hello", [](const gobind::Request&, gobind::ResponseWriter& w) {
        w.header().set("Content-Type", "text/plain");
        w.write("Hello, world");
    });
    server.handle("GET /hello/{name}", [](const gobind::Request& request, gobind::ResponseWriter& w) {
        w.header().set("Content-Type", "text/plain");
        w.write("Hello, " + std::string(request.path_value("name")) + "\n");
    });

    try {
        std::cout << server.start() << std::endl;
        server.listen_and_serve(signals);
    } catch (const gobind::Error& error) {
        std::cerr << "gobind_cpp_hello: " << error.what() << "\n";
        return 1;
    }
    return 0;
}
