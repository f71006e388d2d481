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
    GOBIND_ERR_PANIC = 7,     /* Go panicked; the message names the place */
    GOBIND_EOF = 8            /* gobind_request_read: the body has ended */
} gobind_status;

typedef struct gobind_error {
    int code;        /* a gobind_status */
    int sys_errno;   /* errno of the failed system call, or 0 */
    char* message;   /* malloc'd, NUL-terminated; NULL when no message */
} gobind_error;

/* Server settings. A zero field selects the default given in brackets.
   Strings are NUL-terminated and borrowed for the call. */
typedef struct gobind_config {
    int64_t read_header_timeout_ms;  /* time to read the header block [10000] */
    int64_t read_timeout_ms;         /* max wait of one body read [60000] */
    int64_t write_timeout_ms;        /* max wait of one response write [60000] */
    int64_t idle_timeout_ms;         /* keep-alive wait for the next request [75000] */
    int64_t max_header_bytes;        /* request line plus header block [65536] */
    int64_t max_concurrent_calls;    /* handlers running at once; further requests
                                        wait in Go [0: no bound] */
    const char* tls_cert_file;       /* PEM certificate chain; NULL or "": plain HTTP */
    const char* tls_key_file;        /* PEM private key; needed with tls_cert_file */
    int32_t http2_cleartext;         /* nonzero: also accept HTTP/2 without TLS [0] */
    /* Request head limits; a violation gets the status given, then the
       connection closes. */
    int64_t max_request_line_bytes;  /* request line without CRLF, else 414 [8190] */
    int64_t max_header_field_bytes;  /* one header field line, else 431 [8190] */
    int64_t max_header_fields;       /* header field lines, else 431 [100] */
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
 * The callback responds in one of two ways. It may write the response with
 * gobind_response_write(call, ...) and return GOBIND_HANDLER_OK. Or, when the
 * whole response fits in `response` (Go memory, response_cap bytes, valid
 * until the callback returns), it may encode it there, without any call
 * back into Go, and return its length n > 0. The encoding is an int32_t
 * status, the list of header (name, value) pairs, then the body: all the
 * remaining bytes. Returning GOBIND_HANDLER_ABORT closes the connection
 * without finishing the response. The callback must not unwind (throw,
 * longjmp) into Go.
 */
typedef int64_t (*gobind_handler_fn)(void* user_data, gobind_call_t call,
                                     const char* request, size_t request_len,
                                     char* response, size_t response_cap);

enum { GOBIND_HANDLER_OK = 0, GOBIND_HANDLER_ABORT = -1 };

/* Log callback: one line of the server's error log, without a newline.
   Called from any Go thread; `line` is valid for the call only. */
typedef void (*gobind_log_fn)(void* user_data, const char* line, size_t line_len);

/* A response that the engine made itself, without a handler: a 404 or 405
   of the router, a 503 while the server shuts down, or a 400, 408 or 413 for a
   request body that queue mode could not read. The strings are not
   NUL-terminated and are valid for the call only. */
typedef struct gobind_access_entry {
    const char* remote_addr;
    size_t remote_addr_len;
    const char* method;
    size_t method_len;
    const char* target; /* the request-target as sent */
    size_t target_len;
    const char* protocol; /* "HTTP/1.1" */
    size_t protocol_len;
    int status;
    uint64_t body_bytes;
    double seconds;
} gobind_access_entry;

/* Access log callback: one response the engine made itself. Called from
   any Go thread. */
typedef void (*gobind_access_fn)(void* user_data, const gobind_access_entry* entry);

/* Flags of gobind_response_write. */
enum {
    GOBIND_WRITE_FLUSH = 1,   /* flush buffered data to the client */
    GOBIND_WRITE_FINISH = 2   /* end the response; later writes fail. With
                                 GOBIND_WRITE_FLUSH too, the bytes leave at
                                 once, and a response whose header was not
                                 sent yet gets a Content-Length, so the
                                 client has it before the handler returns */
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

/* Report each response the engine makes itself to access (NULL: none, the
   default). Handlers log their own responses. Same lifetime rule. */
int gobind_server_set_access_log(gobind_server_t server, gobind_access_fn access, void* user_data);

/* Bind address ("host:port", port 0 for any free port, IPv6 hosts in
   brackets, or "unix:/path") and start serving in the background.
   "fd:N" serves on a listening socket inherited as descriptor N instead;
   the server then owns N and closes it (N stays the caller's when the call
   fails). The address actually bound is written to bound (caller-allocated,
   bound_cap bytes, NUL-terminated, truncated if too small). Bind failures
   give GOBIND_ERR_OS with sys_errno, and so does an "fd:N" whose N is not
   an open socket (EBADF, ENOTSOCK); a malformed address, or a socket that
   does not listen, GOBIND_ERR_INVALID. */
int gobind_server_start(gobind_server_t server, char* address, size_t address_len,
                        char* bound, size_t bound_cap, gobind_error* err);

/* Bind address as gobind_server_start does ("host:port" or "unix:/path"),
   but serve nothing: *fd receives a close-on-exec descriptor of the
   listening socket, which the caller owns, for worker processes to serve
   with "fd:N". bound as in gobind_server_start. Closing the descriptor
   does not remove a Unix socket's file. Errors as gobind_server_start. */
int gobind_listener_open(char* address, size_t address_len, int* fd, char* bound,
                         size_t bound_cap, gobind_error* err);

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

/* Current load: requests inside handlers or waiting for a free handler
   slot (max_concurrent_calls), and open connections. */
int gobind_server_stats(gobind_server_t server, int64_t* active_requests,
                        int64_t* open_connections);

/* Read up to cap bytes of the request body into buf (caller-allocated).
   Blocks until data arrives, the body ends (GOBIND_EOF, *n == 0) or the
   read timeout passes (GOBIND_ERR_TIMEOUT). A body whose chunked framing
   is invalid gives GOBIND_ERR_INVALID; connection failures give
   GOBIND_ERR_IO. After a failed read, later reads fail the same way. */
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

/* WSGI adapter: send the response header (the first time, as in
   gobind_response_write) and then the file open as descriptor fd, from its
   current offset: count bytes, or to its end when count is negative. The
   copy uses sendfile(2) where net/http can. fd stays the caller's; its
   offset moves past the bytes sent, and *sent (when not NULL) gets their
   number. Blocks until the file is sent, at most the write timeout. An
   invalid fd gives GOBIND_ERR_OS. */
int gobind_response_send_file(gobind_call_t call, int status, char* header, size_t header_len,
                              int fd, int64_t count, int64_t* sent, gobind_error* err);

#endif /* GOBIND_CGO_PREAMBLE */

/*
 * Queue mode: the asynchronous path, for event loops (ASGI).
 *
 * After gobind_queue_open, every request of the server goes to a queue
 * instead of a handler callback. The request's goroutine waits in Go, so no
 * OS thread is held while the event loop works. The engine writes to
 * wake_fd (an eventfd, or a pipe's write end; 8 bytes per write) whenever
 * the queue turns non-empty. The reader must read wake_fd before it calls
 * gobind_queue_drain, and drain until nothing is left.
 *
 * Events in a drained buffer, each: uint32_t kind, int32_t status,
 * uint64_t call, uint32_t data_len, uint32_t extra_len, then data_len
 * bytes of data and extra_len bytes of extra, all in native byte order.
 *
 *   GOBIND_EVENT_REQUEST     data: the encoded request (the layout of the
 *                            handler callback, no path parameters); extra:
 *                            body bytes read ahead; status 1 when extra is
 *                            the whole body, 0 when the body must be read
 *                            with gobind_async_read.
 *   GOBIND_EVENT_BODY        result of gobind_async_read. data: the bytes;
 *                            status: GOBIND_OK, GOBIND_EOF (data may be
 *                            empty) or an error code; extra: its message.
 *   GOBIND_EVENT_WRITTEN     a non-final operation ran. status: GOBIND_OK
 *                            or an error code; extra: its message.
 *   GOBIND_EVENT_DISCONNECT  the client went away.
 *
 * A call handle is valid from its request event until an operation that
 * finishes the response (or GOBIND_OP_ABORT) runs.
 */
enum {
    GOBIND_EVENT_REQUEST = 1,
    GOBIND_EVENT_BODY = 2,
    GOBIND_EVENT_WRITTEN = 3,
    GOBIND_EVENT_DISCONNECT = 4
};

/* Operations of gobind_async_submit. */
enum {
    GOBIND_OP_WRITE = 1,      /* status, header, body, flags as gobind_response_write */
    GOBIND_OP_SENDFILE = 2,   /* status, header; body is a file path sent as the body */
    GOBIND_OP_TRAILERS = 3,   /* header contains trailer fields; GOBIND_WRITE_FINISH ends */
    GOBIND_OP_ABORT = 4       /* close the connection unless the response finished */
};

#ifndef GOBIND_CGO_PREAMBLE

/* Send every request of server to a queue that wakes its reader through
   wake_fd. The caller owns wake_fd and keeps it open until
   gobind_server_free returns. A server gets one queue. */
int gobind_queue_open(gobind_server_t server, int wake_fd, gobind_error* err);

/* Bound the request bodies of server's queue to max_bytes (0: no bound,
   the default). A larger Content-Length gets 413 before the request is
   posted. A chunked body gets 413 when a read passes the bound, and the
   reader's GOBIND_EVENT_BODY reports the error. A negative max_bytes gives
   GOBIND_ERR_INVALID. */
int gobind_queue_set_max_body_bytes(gobind_server_t server, int64_t max_bytes, gobind_error* err);

/* Copy whole pending events into buf (caller-allocated, cap bytes), oldest
   first; *used is the bytes written. When the next event does not fit,
   *needed is its size (else 0). Never blocks. */
int gobind_queue_drain(gobind_server_t server, char* buf, size_t cap, size_t* used,
                       size_t* needed, gobind_error* err);

/* Stop the queue: waiting requests close their connections, new ones get
   503. Call it before gobind_server_free when the event loop stops. */
int gobind_queue_close(gobind_server_t server);

/* Start reading up to size body bytes; the result arrives as a
   GOBIND_EVENT_BODY. One read at a time per call. Never blocks. */
int gobind_async_read(gobind_call_t call, size_t size, gobind_error* err);

/* Submit an operation (GOBIND_OP_*). header and body are borrowed for the
   call and copied. Operations run in order; each one without
   GOBIND_WRITE_FINISH posts a GOBIND_EVENT_WRITTEN when it has run, which
   is the caller's backpressure. Never blocks; GOBIND_ERR_STATE when the
   response has finished or too many operations are pending. */
int gobind_async_submit(gobind_call_t call, int kind, int status, char* header, size_t header_len,
                        char* body, size_t body_len, int flags, gobind_error* err);

/* Submit several operations in one call, in order, as gobind_async_submit
   would. batch is borrowed for the call and copied; each operation is:
   uint64_t call, int32_t kind, int32_t status, int32_t flags,
   uint32_t header_len, uint32_t body_len, then the header block and the
   body, in native byte order. An operation that cannot be submitted (its
   call busy or finished) posts a GOBIND_EVENT_WRITTEN with the error
   while its call is known. Never blocks; GOBIND_ERR_INVALID for a
   malformed batch, in which the operations before the fault were
   submitted. */
int gobind_async_submit_batch(char* batch, size_t batch_len, gobind_error* err);

#endif /* GOBIND_CGO_PREAMBLE */

#ifdef __cplusplus
}
#endif

#endif /* GOBIND_H */
