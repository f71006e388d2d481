/*
 * gobind.h: the C ABI of gobind's Go HTTP engine (libgobind.a, built with
 * go build -buildmode=c-archive).
 *
 * Handles. Servers and calls (one request while its handler runs) are named
 * by 64-bit handles, never by pointers. Zero is never a valid handle. A
 * stale or unknown handle makes a function return GOBIND_ERR_HANDLE; it
 * never crashes the process.
 *
 * Errors. Every function returns a gobind_status. Functions that take a
 * gobind_error* fill it when they fail and the pointer is not NULL; its
 * message is allocated with malloc and released by gobind_error_clear.
 *
 * Threads. Every function may be called from any thread. Functions that can
 * block say so; a caller that holds a lock another thread needs (such as
 * Python's GIL) should release it around them. Go never installs handlers
 * for SIGINT or SIGTERM: the host program owns those signals.
 *
 * Encoded strings. Several buffers are sequences of strings, each a
 * uint32_t length in native byte order followed by that many bytes, with no
 * terminator. Lists are a uint32_t count followed by their items.
 */
#ifndef GOBIND_H
#define GOBIND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t gobind_server_t;
typedef uint64_t gobind_call_t;

typedef enum gobind_status {
    GOBIND_OK = 0,
    GOBIND_ERR_INVALID = 1,   /* invalid argument: pattern, address, header block, status */
    GOBIND_ERR_HANDLE = 2,    /* unknown or stale handle */
    GOBIND_ERR_STATE = 3,     /* wrong state: already started, not started, finished */
    GOBIND_ERR_OS = 4,        /* system call failed; sys_errno is set */
    GOBIND_ERR_TIMEOUT = 5,   /* a timeout passed */
    GOBIND_ERR_IO = 6,        /* the connection failed: client gone, reset, deadline */
    GOBIND_ERR_PANIC = 7,     /* Go panicked; the message says where */
    GOBIND_EOF = 8            /* gobind_request_read: the body has ended */
} gobind_status;

typedef struct gobind_error {
    int code;        /* a gobind_status */
    int sys_errno;   /* errno of the failed system call, or 0 */
    char* message;   /* malloc'd, NUL-terminated; NULL when no message */
} gobind_error;

/* Server settings. A zero field selects the default given in brackets. */
typedef struct gobind_config {
    int64_t read_header_timeout_ms;  /* time to read the header block [10000] */
    int64_t read_timeout_ms;         /* max wait of one body read [60000] */
    int64_t write_timeout_ms;        /* max wait of one response write [60000] */
    int64_t idle_timeout_ms;         /* keep-alive wait for the next request [75000] */
    int64_t max_header_bytes;        /* request line plus header block [65536] */
    int64_t max_concurrent_calls;    /* handlers running at once; further requests
                                        wait in Go [0: no bound] */
} gobind_config;

/*
 * Handler callback, run on a Go-created thread for each request, concurrently
 * with other calls. `request` is Go memory, valid only until the callback
 * returns; its layout, in encoded strings:
 *
 *   method, request target as sent, decoded path, escaped path, raw query,
 *   protocol ("HTTP/1.1"), scheme ("http" or "https"), host, remote address,
 *   local address, int64_t content length (-1 when unknown),
 *   list of path parameters as (name, value) pairs,
 *   list of header fields as (name, value) pairs, Host included.
 *
 * The callback answers through gobind_response_write with `call`, and
 * returns GOBIND_HANDLER_OK, or GOBIND_HANDLER_ABORT to close the connection
 * without finishing the response. It must not unwind (throw, longjmp) into Go.
 */
typedef int (*gobind_handler_fn)(void* user_data, gobind_call_t call,
                                 const char* request, size_t request_len);

enum { GOBIND_HANDLER_OK = 0, GOBIND_HANDLER_ABORT = 1 };

/* Log callback: one line of the server's error log, without a newline.
   Called from any Go thread; `line` is valid for the call only. */
typedef void (*gobind_log_fn)(void* user_data, const char* line, size_t line_len);

/* Flags of gobind_response_write. */
enum {
    GOBIND_WRITE_FLUSH = 1,   /* flush buffered data to the client */
    GOBIND_WRITE_FINISH = 2   /* end the response; later writes fail */
};

#ifndef GOBIND_CGO_PREAMBLE

/* Release the message of err and zero it. */
void gobind_error_clear(gobind_error* err);

/* Create a server that is not yet listening; stores its handle in *server. */
int gobind_server_new(gobind_config* config, gobind_server_t* server, gobind_error* err);

/* Route requests matching a net/http ServeMux pattern ("GET /items/{id}")
   to handler. Invalid or conflicting patterns give GOBIND_ERR_INVALID.
   handler and user_data must stay valid until gobind_server_free returns. */
int gobind_server_handle(gobind_server_t server, char* pattern, size_t pattern_len,
                         gobind_handler_fn handler, void* user_data, gobind_error* err);

/* Route every request to handler, bypassing the pattern router and its
   path cleaning and redirects. Same lifetime rule as gobind_server_handle. */
int gobind_server_handle_all(gobind_server_t server, gobind_handler_fn handler,
                             void* user_data, gobind_error* err);

/* Send the error log to log (NULL: standard error). Same lifetime rule. */
int gobind_server_set_log(gobind_server_t server, gobind_log_fn log, void* user_data);

/* Bind address ("host:port", port 0 for any free port, IPv6 hosts in
   brackets, or "unix:/path") and start serving in the background. The
   address actually bound is written to bound (caller-allocated, bound_cap
   bytes, NUL-terminated, truncated if too small). Bind failures give
   GOBIND_ERR_OS with sys_errno; a malformed address GOBIND_ERR_INVALID. */
int gobind_server_start(gobind_server_t server, char* address, size_t address_len,
                        char* bound, size_t bound_cap, gobind_error* err);

/* Block until the server stops serving or timeout_ms passes (negative: no
   limit). GOBIND_OK: stopped; GOBIND_ERR_TIMEOUT: still serving. */
int gobind_server_wait(gobind_server_t server, int64_t timeout_ms, gobind_error* err);

/* Stop accepting, then block until in-flight requests end or timeout_ms
   passes; then close what is left and return GOBIND_ERR_TIMEOUT. */
int gobind_server_shutdown(gobind_server_t server, int64_t timeout_ms, gobind_error* err);

/* Close the listener and all connections at once. Blocks briefly. */
int gobind_server_close(gobind_server_t server);

/* Close the server, block until no handler callback runs, and invalidate
   the handle. After it returns, handler and log callbacks of this server
   are never called again. */
int gobind_server_free(gobind_server_t server);

/* Current load: requests inside handlers and open connections. */
int gobind_server_stats(gobind_server_t server, int64_t* active_requests,
                        int64_t* open_connections);

/* Read up to cap bytes of the request body into buf (caller-allocated).
   Blocks until data arrives, the body ends (GOBIND_EOF, *n == 0) or the
   read timeout passes (GOBIND_ERR_TIMEOUT). Connection failures give
   GOBIND_ERR_IO. */
int gobind_request_read(gobind_call_t call, char* buf, size_t cap, size_t* n,
                        gobind_error* err);

/* Write the response. The first call sends the status (0 means 200) and the
   header block `header` (a list of (name, value) pairs, borrowed for the
   call); later calls ignore both. body is borrowed for the call. With
   GOBIND_WRITE_FINISH and no Content-Length among the headers, the header
   gets Content-Length: body_len. Body bytes of a 204 or 304 response are
   dropped. Blocks while the client is slow to read, at most the write
   timeout (then GOBIND_ERR_TIMEOUT). */
int gobind_response_write(gobind_call_t call, int status, char* header, size_t header_len,
                          char* body, size_t body_len, int flags, gobind_error* err);

#endif /* GOBIND_CGO_PREAMBLE */

#ifdef __cplusplus
}
#endif

#endif /* GOBIND_H */
