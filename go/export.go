package main

// This file holds only the C ABI adapters documented in gobind.h: each
// export looks up its handle, converts arguments, calls plain Go code and
// converts the result. None of them lets a panic unwind into C.

/*
#define GOBIND_CGO_PREAMBLE
#include <stdlib.h>
#include "gobind.h"

static inline int64_t gobind_invoke_handler(gobind_handler_fn fn, void* user_data,
        gobind_call_t call, const char* request, size_t request_len,
        char* response, size_t response_cap) {
    return fn(user_data, call, request, request_len, response, response_cap);
}

static inline void gobind_invoke_log(gobind_log_fn fn, void* user_data,
        const char* line, size_t line_len) {
    fn(user_data, line, line_len);
}

static inline void gobind_invoke_access(gobind_access_fn fn, void* user_data,
        const char* remote_addr, size_t remote_addr_len, const char* method, size_t method_len,
        const char* target, size_t target_len, const char* protocol, size_t protocol_len,
        int status, uint64_t body_bytes, double seconds) {
    gobind_access_entry entry = {remote_addr, remote_addr_len, method, method_len, target,
                                 target_len, protocol, protocol_len, status, body_bytes, seconds};
    fn(user_data, &entry);
}
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

var servers registry[Server]

func main() {}

// cHandler is a Callback implemented by a C function.
type cHandler struct {
	fn       C.gobind_handler_fn
	userData unsafe.Pointer
}

func (h cHandler) Call(call uint64, request []byte, response []byte) (CallResult, int) {
	result := C.gobind_invoke_handler(h.fn, h.userData, C.gobind_call_t(call),
		(*C.char)(unsafe.Pointer(unsafe.SliceData(request))), C.size_t(len(request)),
		(*C.char)(unsafe.Pointer(unsafe.SliceData(response))), C.size_t(len(response)))
	switch {
	case result == C.GOBIND_HANDLER_ABORT:
		return CallAbort, 0
	case result > 0 && result <= C.int64_t(len(response)):
		return CallOK, int(result)
	}
	return CallOK, 0
}

// fail records err in out (when not NULL) and returns code.
func fail(out *C.gobind_error, code C.int, err error) C.int {
	if out == nil {
		return code
	}
	out.code = code
	out.sys_errno = 0
	var errno syscall.Errno
	if errors.As(err, &errno) {
		out.sys_errno = C.int(errno)
	}
	if out.message != nil {
		C.free(unsafe.Pointer(out.message))
	}
	out.message = C.CString(err.Error())
	return code
}

// recoverInto turns a panic of the calling export into GOBIND_ERR_PANIC.
func recoverInto(out *C.gobind_error, rc *C.int) {
	if r := recover(); r != nil {
		*rc = fail(out, C.GOBIND_ERR_PANIC, fmt.Errorf("panic in gobind engine: %v", r))
	}
}

func unknownServer(out *C.gobind_error) C.int {
	return fail(out, C.GOBIND_ERR_HANDLE, errors.New("unknown server handle (closed or never created)"))
}

func unknownCall(out *C.gobind_error) C.int {
	return fail(out, C.GOBIND_ERR_HANDLE, errors.New("unknown call handle: the handler has returned"))
}

func optionalString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

func milliseconds(ms C.int64_t) time.Duration {
	return time.Duration(ms) * time.Millisecond
}

//export gobind_error_clear
func gobind_error_clear(err *C.gobind_error) {
	if err == nil {
		return
	}
	if err.message != nil {
		C.free(unsafe.Pointer(err.message))
	}
	*err = C.gobind_error{}
}

//export gobind_server_new
func gobind_server_new(config *C.gobind_config, out *C.gobind_server_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	if config == nil || out == nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, errors.New("config and server must not be NULL"))
	}
	server, err := NewServer(Config{
		ReadHeaderTimeout:   milliseconds(config.read_header_timeout_ms),
		ReadTimeout:         milliseconds(config.read_timeout_ms),
		WriteTimeout:        milliseconds(config.write_timeout_ms),
		IdleTimeout:         milliseconds(config.idle_timeout_ms),
		MaxHeaderBytes:      int(config.max_header_bytes),
		MaxConcurrentCalls:  int(config.max_concurrent_calls),
		TLSCertFile:         optionalString(config.tls_cert_file),
		TLSKeyFile:          optionalString(config.tls_key_file),
		HTTP2Cleartext:      config.http2_cleartext != 0,
		MaxRequestLineBytes: int(config.max_request_line_bytes),
		MaxHeaderFieldBytes: int(config.max_header_field_bytes),
		MaxHeaderFields:     int(config.max_header_fields),
	})
	if err != nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, err)
	}
	*out = C.gobind_server_t(servers.add(server))
	return C.GOBIND_OK
}

//export gobind_server_handle
func gobind_server_handle(handle C.gobind_server_t, pattern *C.char, patternLen C.size_t,
	fn C.gobind_handler_fn, userData unsafe.Pointer, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return unknownServer(errOut)
	}
	if fn == nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, errors.New("handler must not be NULL"))
	}
	err := server.Handle(string(cBytes(pattern, patternLen)), cHandler{fn, userData})
	if err != nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, err)
	}
	return C.GOBIND_OK
}

//export gobind_server_handle_all
func gobind_server_handle_all(handle C.gobind_server_t, fn C.gobind_handler_fn,
	userData unsafe.Pointer, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return unknownServer(errOut)
	}
	if fn == nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, errors.New("handler must not be NULL"))
	}
	server.HandleAll(cHandler{fn, userData})
	return C.GOBIND_OK
}

//export gobind_server_set_log
func gobind_server_set_log(handle C.gobind_server_t, fn C.gobind_log_fn, userData unsafe.Pointer) (rc C.int) {
	defer recoverInto(nil, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return C.GOBIND_ERR_HANDLE
	}
	if fn == nil {
		server.SetLogOutput(nil)
		return C.GOBIND_OK
	}
	server.SetLogOutput(func(line string) {
		C.gobind_invoke_log(fn, userData, (*C.char)(unsafe.Pointer(unsafe.StringData(line))), C.size_t(len(line)))
	})
	return C.GOBIND_OK
}

//export gobind_server_set_access_log
func gobind_server_set_access_log(handle C.gobind_server_t, fn C.gobind_access_fn, userData unsafe.Pointer) (rc C.int) {
	defer recoverInto(nil, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return C.GOBIND_ERR_HANDLE
	}
	if fn == nil {
		server.SetAccessLog(nil)
		return C.GOBIND_OK
	}
	server.SetAccessLog(func(entry AccessEntry) {
		C.gobind_invoke_access(fn, userData,
			cString(entry.RemoteAddr), C.size_t(len(entry.RemoteAddr)),
			cString(entry.Method), C.size_t(len(entry.Method)),
			cString(entry.Target), C.size_t(len(entry.Target)),
			cString(entry.Protocol), C.size_t(len(entry.Protocol)),
			C.int(entry.Status), C.uint64_t(entry.BodyBytes), C.double(entry.Duration.Seconds()))
	})
	return C.GOBIND_OK
}

//export gobind_server_start
func gobind_server_start(handle C.gobind_server_t, address *C.char, addressLen C.size_t,
	bound *C.char, boundCap C.size_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return unknownServer(errOut)
	}
	actual, err := server.Start(string(cBytes(address, addressLen)))
	switch {
	case errors.Is(err, errAlreadyStarted), errors.Is(err, errClosed), errors.Is(err, errStopped):
		return fail(errOut, C.GOBIND_ERR_STATE, err)
	case errors.As(err, new(syscall.Errno)):
		return fail(errOut, C.GOBIND_ERR_OS, err)
	case err != nil:
		return fail(errOut, C.GOBIND_ERR_INVALID, err)
	}
	copyBound(bound, boundCap, actual)
	return C.GOBIND_OK
}

// copyBound writes address to the caller's buffer of boundCap bytes, cut
// short to fit and NUL-terminated.
func copyBound(bound *C.char, boundCap C.size_t, address string) {
	if bound != nil && boundCap > 0 {
		out := unsafe.Slice((*byte)(unsafe.Pointer(bound)), int(boundCap))
		n := copy(out[:len(out)-1], address)
		out[n] = 0
	}
}

//export gobind_listener_open
func gobind_listener_open(address *C.char, addressLen C.size_t, fd *C.int,
	bound *C.char, boundCap C.size_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	if fd == nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, errors.New("invalid argument: fd is NULL"))
	}
	descriptor, actual, err := OpenListener(string(cBytes(address, addressLen)))
	switch {
	case errors.As(err, new(syscall.Errno)):
		return fail(errOut, C.GOBIND_ERR_OS, err)
	case err != nil:
		return fail(errOut, C.GOBIND_ERR_INVALID, err)
	}
	*fd = C.int(descriptor)
	copyBound(bound, boundCap, actual)
	return C.GOBIND_OK
}

//export gobind_server_wait
func gobind_server_wait(handle C.gobind_server_t, timeoutMs C.int64_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return unknownServer(errOut)
	}
	stopped, err := server.Wait(milliseconds(timeoutMs))
	switch {
	case errors.Is(err, errNotStarted):
		return fail(errOut, C.GOBIND_ERR_STATE, err)
	case err != nil:
		return fail(errOut, C.GOBIND_ERR_IO, err)
	case !stopped:
		return C.GOBIND_ERR_TIMEOUT
	}
	return C.GOBIND_OK
}

//export gobind_server_shutdown
func gobind_server_shutdown(handle C.gobind_server_t, timeoutMs C.int64_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return unknownServer(errOut)
	}
	err := server.Shutdown(milliseconds(timeoutMs))
	if errors.Is(err, context.DeadlineExceeded) {
		return fail(errOut, C.GOBIND_ERR_TIMEOUT, fmt.Errorf("graceful shutdown timed out after %d ms; remaining connections were closed", int64(timeoutMs)))
	}
	if err != nil {
		return fail(errOut, C.GOBIND_ERR_IO, err)
	}
	return C.GOBIND_OK
}

//export gobind_server_close
func gobind_server_close(handle C.gobind_server_t) (rc C.int) {
	defer recoverInto(nil, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return C.GOBIND_ERR_HANDLE
	}
	server.Close()
	return C.GOBIND_OK
}

//export gobind_server_free
func gobind_server_free(handle C.gobind_server_t) (rc C.int) {
	defer recoverInto(nil, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return C.GOBIND_ERR_HANDLE
	}
	server.Release()
	servers.remove(uint64(handle))
	return C.GOBIND_OK
}

//export gobind_server_stats
func gobind_server_stats(handle C.gobind_server_t, activeRequests *C.int64_t, openConnections *C.int64_t) (rc C.int) {
	defer recoverInto(nil, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return C.GOBIND_ERR_HANDLE
	}
	stats := server.Stats()
	if activeRequests != nil {
		*activeRequests = C.int64_t(stats.ActiveRequests)
	}
	if openConnections != nil {
		*openConnections = C.int64_t(stats.OpenConnections)
	}
	return C.GOBIND_OK
}

//export gobind_request_read
func gobind_request_read(handle C.gobind_call_t, buf *C.char, capacity C.size_t, n *C.size_t,
	errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	if n != nil {
		*n = 0
	}
	call := calls.get(uint64(handle))
	if call == nil {
		return unknownCall(errOut)
	}
	if capacity == 0 {
		return C.GOBIND_OK
	}
	read, err := call.ReadBody(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(capacity)))
	if n != nil {
		*n = C.size_t(read)
	}
	switch {
	case err == io.EOF:
		return C.GOBIND_EOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fail(errOut, C.GOBIND_ERR_TIMEOUT, fmt.Errorf("reading request body timed out: %w", err))
	case errors.Is(err, errChunkedFraming):
		return fail(errOut, C.GOBIND_ERR_INVALID, fmt.Errorf("invalid request body: %w", err))
	case err != nil:
		return fail(errOut, C.GOBIND_ERR_IO, fmt.Errorf("reading request body failed: %w", err))
	}
	return C.GOBIND_OK
}

//export gobind_response_write
func gobind_response_write(handle C.gobind_call_t, status C.int, header *C.char, headerLen C.size_t,
	body *C.char, bodyLen C.size_t, flags C.int, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	call := calls.get(uint64(handle))
	if call == nil {
		return unknownCall(errOut)
	}
	err := call.Write(int(status), cBytes(header, headerLen), cBytes(body, bodyLen), int(flags))
	return responseStatus(errOut, err, "writing response")
}

// responseStatus maps the error of a response write to a status code,
// naming the operation ("writing response") in the message.
func responseStatus(errOut *C.gobind_error, err error, operation string) C.int {
	switch {
	case err == nil:
		return C.GOBIND_OK
	case errors.Is(err, errFinished):
		return fail(errOut, C.GOBIND_ERR_STATE, err)
	case errors.Is(err, errInvalidResponse):
		return fail(errOut, C.GOBIND_ERR_INVALID, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fail(errOut, C.GOBIND_ERR_TIMEOUT, fmt.Errorf("%s timed out: %w", operation, err))
	}
	return fail(errOut, C.GOBIND_ERR_IO, fmt.Errorf("%s failed: %w", operation, err))
}

// cString lends the bytes of s to C for the length of a call.
func cString(s string) *C.char {
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

// cBytes views n bytes of borrowed C memory at p without copying them.
// Unlike C.GoStringN, which takes a C int, it takes any length; one beyond
// the address space panics, which the export's recover turns into an error.
func cBytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// The WSGI adapter's export: wsgi.file_wrapper responses copied by Go.

//export gobind_response_send_file
func gobind_response_send_file(handle C.gobind_call_t, status C.int, header *C.char, headerLen C.size_t,
	fd C.int, count C.int64_t, sent *C.int64_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	if sent != nil {
		*sent = 0
	}
	call := calls.get(uint64(handle))
	if call == nil {
		return unknownCall(errOut)
	}
	n, err := call.SendFile(int(status), cBytes(header, headerLen), int(fd), int64(count))
	if sent != nil {
		*sent = C.int64_t(n)
	}
	// A failed dup of the descriptor is the caller's bad file, not the connection's.
	var syscallErr *os.SyscallError
	if errors.As(err, &syscallErr) && syscallErr.Syscall == "dup" {
		return fail(errOut, C.GOBIND_ERR_OS, fmt.Errorf("sending file failed: %w", err))
	}
	return responseStatus(errOut, err, "sending file")
}

// Queue mode: the asynchronous path of queue.go, for event loops.

// queues maps a server handle to its queue; a server has at most one.
var queues sync.Map

// queuesOpening makes the test for an existing queue and the creation of
// a new one a single step.
var queuesOpening sync.Mutex

func queueOf(handle C.gobind_server_t) *Queue {
	if q, ok := queues.Load(uint64(handle)); ok {
		return q.(*Queue)
	}
	return nil
}

func unknownAsyncCall(out *C.gobind_error) C.int {
	return fail(out, C.GOBIND_ERR_HANDLE, errors.New("unknown call handle: the response has finished"))
}

//export gobind_queue_open
func gobind_queue_open(handle C.gobind_server_t, wakeFD C.int, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	server := servers.get(uint64(handle))
	if server == nil {
		return unknownServer(errOut)
	}
	if wakeFD < 0 {
		return fail(errOut, C.GOBIND_ERR_INVALID, fmt.Errorf("invalid wake-up file descriptor %d", int(wakeFD)))
	}
	queuesOpening.Lock()
	defer queuesOpening.Unlock()
	if queueOf(handle) != nil {
		return fail(errOut, C.GOBIND_ERR_STATE, errors.New("server already has a queue"))
	}
	queues.Store(uint64(handle), NewQueue(server, int(wakeFD)))
	return C.GOBIND_OK
}

//export gobind_queue_set_max_body_bytes
func gobind_queue_set_max_body_bytes(handle C.gobind_server_t, maxBytes C.int64_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	q := queueOf(handle)
	if q == nil {
		return fail(errOut, C.GOBIND_ERR_HANDLE, errors.New("unknown server handle or no queue"))
	}
	if maxBytes < 0 {
		return fail(errOut, C.GOBIND_ERR_INVALID, fmt.Errorf("invalid max body bytes %d: must be 0 (no bound) or more", int64(maxBytes)))
	}
	q.SetMaxBodyBytes(int64(maxBytes))
	return C.GOBIND_OK
}

//export gobind_queue_drain
func gobind_queue_drain(handle C.gobind_server_t, buf *C.char, capacity C.size_t, used *C.size_t,
	needed *C.size_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	q := queueOf(handle)
	if q == nil {
		return fail(errOut, C.GOBIND_ERR_HANDLE, errors.New("unknown server handle or no queue"))
	}
	var out []byte
	if buf != nil && capacity > 0 {
		out = unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(capacity))
	}
	u, n := q.Drain(out)
	*used = C.size_t(u)
	*needed = C.size_t(n)
	return C.GOBIND_OK
}

//export gobind_queue_close
func gobind_queue_close(handle C.gobind_server_t) (rc C.int) {
	defer recoverInto(nil, &rc)
	q := queueOf(handle)
	if q == nil {
		return C.GOBIND_ERR_HANDLE
	}
	q.Close()
	queues.Delete(uint64(handle))
	return C.GOBIND_OK
}

//export gobind_async_read
func gobind_async_read(handle C.gobind_call_t, size C.size_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	call := asyncCalls.get(uint64(handle))
	if call == nil {
		return unknownAsyncCall(errOut)
	}
	if size == 0 || size > 1<<30 {
		return fail(errOut, C.GOBIND_ERR_INVALID, fmt.Errorf("invalid read size %d: must be 1 byte to 1 GiB", uint64(size)))
	}
	if err := call.StartRead(int(size)); err != nil {
		return fail(errOut, C.GOBIND_ERR_STATE, err)
	}
	return C.GOBIND_OK
}

//export gobind_async_submit
func gobind_async_submit(handle C.gobind_call_t, kind C.int, status C.int, header *C.char, headerLen C.size_t,
	body *C.char, bodyLen C.size_t, flags C.int, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	call := asyncCalls.get(uint64(handle))
	if call == nil {
		return unknownAsyncCall(errOut)
	}
	op := asyncOp{status: int(status), flags: int(flags),
		header: bytes.Clone(cBytes(header, headerLen))}
	switch kind {
	case C.GOBIND_OP_WRITE:
		op.kind = opWrite
		op.body = bytes.Clone(cBytes(body, bodyLen))
	case C.GOBIND_OP_SENDFILE:
		op.kind = opSendFile
		op.path = string(cBytes(body, bodyLen))
	case C.GOBIND_OP_TRAILERS:
		op.kind = opTrailers
	case C.GOBIND_OP_ABORT:
		op.kind = opAbort
	default:
		return fail(errOut, C.GOBIND_ERR_INVALID, fmt.Errorf("invalid operation kind %d", int(kind)))
	}
	if err := call.Submit(op); err != nil {
		return fail(errOut, C.GOBIND_ERR_STATE, err)
	}
	return C.GOBIND_OK
}

//export gobind_async_submit_batch
func gobind_async_submit_batch(batch *C.char, batchLen C.size_t, errOut *C.gobind_error) (rc C.int) {
	defer recoverInto(errOut, &rc)
	if err := submitBatch(newBatchBuffer(cBytes(batch, batchLen))); err != nil {
		return fail(errOut, C.GOBIND_ERR_INVALID, err)
	}
	return C.GOBIND_OK
}
