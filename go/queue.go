package main

// The asynchronous path: requests are handed to an event loop through a
// queue instead of a callback. A handler goroutine posts its request, then
// waits on a channel for operations (writes, finish) that the event loop
// submits without blocking. Body reads run on goroutines of their own. Results
// come back to the event loop as events on the same queue. No OS thread is
// held while a request waits for the event loop.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Event kinds, as in gobind.h.
const (
	eventRequest    = 1
	eventBody       = 2
	eventWritten    = 3
	eventDisconnect = 4
)

// eventHeaderSize is the fixed part of an event in a drained buffer:
// kind, status, call, data length, extra length.
const eventHeaderSize = 4 + 4 + 8 + 4 + 4

// prefetchLimit is the largest body read before the request is posted, so
// that small bodies reach the event loop with the request in one event.
const prefetchLimit = 64 << 10

// asyncOpCapacity bounds the operations one call may have submitted and
// not yet run; a further submit fails with errBusy.
const asyncOpCapacity = 16

var (
	errBusy        = errors.New("too many operations pending on this call")
	errReadPending = errors.New("a body read is already pending on this call")
)

// queueEvent is one result for the event loop. status is a gobind_status
// for body and write results; for requests it is 1 when extra holds the
// whole body.
type queueEvent struct {
	kind   uint32
	status int32
	call   uint64
	data   []byte
	extra  []byte
}

// Queue carries requests and results from handler goroutines to one event
// loop, which it wakes by writing to wakeFD when the queue turns non-empty.
type Queue struct {
	server *Server
	wakeFD int

	mu      sync.Mutex
	pending []queueEvent

	closed    chan struct{}
	closeOnce sync.Once

	// maxBodyBytes bounds each request body; 0 means no bound.
	maxBodyBytes atomic.Int64
}

// SetMaxBodyBytes bounds the request bodies of the queue's calls: a larger
// Content-Length gets 413 before the call is posted, and a chunked body
// gets 413 when a read passes the bound. 0 removes the bound.
func (q *Queue) SetMaxBodyBytes(limit int64) {
	q.maxBodyBytes.Store(limit)
}

// bodyTooLarge returns the message of a 413 response for limit.
func bodyTooLarge(limit int64) string {
	return fmt.Sprintf("request body exceeds the limit of %d bytes", limit)
}

// asyncCalls maps the handles of calls in queue mode to their state.
var asyncCalls registry[asyncCall]

// NewQueue makes server hand every request to a queue that wakes its
// reader through wakeFD (an eventfd or the write end of a pipe, owned by
// the caller and kept open until the server is released).
func NewQueue(server *Server, wakeFD int) *Queue {
	q := &Queue{server: server, wakeFD: wakeFD, closed: make(chan struct{})}
	var handler http.Handler = &queueHandler{queue: q}
	server.fallback.Store(&handler)
	procs.queueOpened()
	return q
}

func (q *Queue) post(e queueEvent) {
	q.mu.Lock()
	wasEmpty := len(q.pending) == 0
	q.pending = append(q.pending, e)
	q.mu.Unlock()

	// One wake-up per batch: the reader reads the fd before it drains, so
	// an event posted after its drain finds the queue empty and wakes it.
	if wasEmpty {
		q.wake()
	}
}

func (q *Queue) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	for {
		_, err := syscall.Write(q.wakeFD, one[:])
		if err != syscall.EINTR {
			return
		}
	}
}

// Drain moves whole events into buf, oldest first, and returns the bytes
// used. When the next event does not fit, needed is its size.
func (q *Queue) Drain(buf []byte) (used int, needed int) {
	q.mu.Lock()
	defer q.mu.Unlock()

	taken := 0
	for ; taken < len(q.pending); taken++ {
		e := &q.pending[taken]
		size := eventHeaderSize + len(e.data) + len(e.extra)
		if used+size > len(buf) {
			needed = size
			break
		}
		b := buf[used:used]
		b = binary.NativeEndian.AppendUint32(b, e.kind)
		b = binary.NativeEndian.AppendUint32(b, uint32(e.status))
		b = binary.NativeEndian.AppendUint64(b, e.call)
		b = binary.NativeEndian.AppendUint32(b, uint32(len(e.data)))
		b = binary.NativeEndian.AppendUint32(b, uint32(len(e.extra)))
		b = append(b, e.data...)
		b = append(b, e.extra...)
		used += size
	}
	left := copy(q.pending, q.pending[taken:])
	clear(q.pending[left:])
	q.pending = q.pending[:left]
	return used, needed
}

// Close makes every waiting handler give up, closing its connection. The
// event loop calls it when it stops; later requests get 503.
func (q *Queue) Close() {
	q.closeOnce.Do(func() {
		close(q.closed)
		procs.queueClosed()
	})
}

// queueHandler hands every request of a server to its queue.
type queueHandler struct {
	queue *Queue
}

func (h *queueHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := h.queue
	s := q.server
	start := time.Now()
	select {
	case <-q.closed:
		s.respondError(w, r, "server is shutting down", http.StatusServiceUnavailable, start)
		return
	default:
	}
	if limit := q.maxBodyBytes.Load(); limit > 0 {
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			s.respondError(w, r, bodyTooLarge(limit), http.StatusRequestEntityTooLarge, start)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}

	enableFullDuplex(w, r)
	call := &asyncCall{Call: Call{server: s, writer: w, request: r}, queue: q, ops: make(chan asyncOp, asyncOpCapacity), start: start}
	if s.config.WriteTimeout > 0 {
		// net/http set the write deadline when it read the request header.
		call.writeDeadline = start.Add(s.config.WriteTimeout)
	}
	// As in callbackHandler, the body is read ahead before a slot is
	// taken, so that a client slow to send it holds no slot.
	body, complete, err := call.prefetchBody()
	if err != nil {
		call.rejectBody(err)
		return
	}

	// The same bound and release protocol as callbackHandler: a released
	// server starts no more calls.
	if s.slots != nil {
		if !s.acquireSlot(r) {
			// As in callbackHandler: no response to a client that went away.
			panic(http.ErrAbortHandler)
		}
		defer func() { <-s.slots }()
	}
	if s.calls.Add(1)&closedBit != 0 {
		s.calls.Add(-1)
		s.respondError(w, r, "server is shutting down", http.StatusServiceUnavailable, start)
		return
	}
	defer s.calls.Add(-1)
	s.active.Add(1)
	defer s.active.Add(-1)

	call.handle = asyncCalls.add(call)
	defer asyncCalls.remove(call.handle)

	q.post(queueEvent{kind: eventRequest, status: complete, call: call.handle,
		data: encodeRequest(make([]byte, 0, 512), r, s.connLocalAddress(r), nil), extra: body})

	abort := call.serve()
	call.stopReads()
	if !call.finished {
		call.finish(nil)
	}
	if abort {
		// The connection closes with the response incomplete, such as
		// after a failed body read once the header was sent. Operations
		// still queued will not run, so the app hears of it now instead of
		// waiting for their written events.
		q.post(queueEvent{kind: eventDisconnect, call: call.handle})
		panic(http.ErrAbortHandler)
	}
	call.reportShortBody()
}

// asyncCall is one request in queue mode. Writes run on the handler
// goroutine, in submission order. A body read runs on a goroutine of its
// own, so that a pending read does not hold up a write.
type asyncCall struct {
	Call
	queue  *Queue
	handle uint64
	ops    chan asyncOp
	start  time.Time

	mu      sync.Mutex
	ended   bool // the handler is returning: no more reads start
	reading bool
	readers sync.WaitGroup
}

type asyncOpKind int

const (
	opWrite asyncOpKind = iota
	opSendFile
	opTrailers
	opAbort
	// opReject is posted by a failed body read, not by the event loop. It
	// responds with 400 or 408, as rejectBody does, unless the header was sent.
	opReject
)

// asyncOp is an operation submitted by the event loop. Its slices are Go
// copies of the caller's memory.
type asyncOp struct {
	kind   asyncOpKind
	status int
	header []byte
	body   []byte
	flags  int
	path   string
	err    error // the read error of an opReject
	// batch, when set, is the buffer that header and body are slices of.
	// It is released once they are no longer used.
	batch *batchBuffer
}

// batchBuffer is the Go copy of one submitted batch, shared by its
// operations. The last operation to finish with it returns it to
// batchBuffers, so that a busy event loop does not make garbage at the rate
// it sends bytes. A buffer never released is collected as usual.
type batchBuffer struct {
	data  []byte
	users atomic.Int32
}

// maxPooledBatch is the capacity of the largest buffer kept for reuse.
// Larger batches are allocated each time.
const maxPooledBatch = 2 << 20

var batchBuffers sync.Pool

// newBatchBuffer returns a buffer holding a copy of data, with one user:
// the caller, who releases it after handing slices of it to operations.
func newBatchBuffer(data []byte) *batchBuffer {
	b, _ := batchBuffers.Get().(*batchBuffer)
	if b == nil || cap(b.data) < len(data) {
		// Append, unlike make, does not zero the bytes that data covers.
		b = &batchBuffer{data: append([]byte(nil), data...)}
	} else {
		b.data = append(b.data[:0], data...)
	}
	b.users.Store(1)
	return b
}

// retain adds a user, which must call release.
func (b *batchBuffer) retain() {
	b.users.Add(1)
}

// release ends one user's use of the buffer. It may be called on nil.
func (b *batchBuffer) release() {
	if b == nil || b.users.Add(-1) != 0 {
		return
	}
	if cap(b.data) <= maxPooledBatch {
		batchBuffers.Put(b)
	}
}

// prefetchBody reads a body of known length up to prefetchLimit. complete
// is 1 when body is the whole body (possibly empty) and 0 when the event
// loop must read the body itself.
func (c *asyncCall) prefetchBody() (body []byte, complete int32, err error) {
	length := c.request.ContentLength
	if length == 0 && len(c.request.TransferEncoding) == 0 {
		c.bodyErr = io.EOF
		c.bodyEnded.Store(true)
		return nil, 1, nil
	}
	if length < 0 || length > prefetchLimit || expectsContinue(c.request) {
		return nil, 0, nil
	}
	buf := make([]byte, length+1)
	n := 0
	for {
		read, err := c.ReadBody(buf[n:])
		n += read
		if err == io.EOF {
			return buf[:n], 1, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if n == len(buf) {
			// net/http limits the body to its Content-Length, so this is
			// not expected; the event loop reads whatever follows.
			return buf[:n], 0, nil
		}
	}
}

// bodyErrorStatus returns the status of the response to a failed body
// read: 408 after a read timeout, 400 for malformed chunked framing, 413
// for a body past the limit, or 0 when the client is gone and the
// connection just closes.
func bodyErrorStatus(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, errChunkedFraming):
		return http.StatusBadRequest
	}
	return 0
}

// rejectBody ends a request whose body could not be read, with the
// response that bodyErrorStatus gives, or a closed connection.
func (c *asyncCall) rejectBody(err error) {
	s := c.server
	announceClose(c.writer, c.request)
	switch bodyErrorStatus(err) {
	case http.StatusRequestTimeout:
		s.respondError(c.writer, c.request, "request body read timed out", http.StatusRequestTimeout, c.start)
	case http.StatusBadRequest:
		s.respondError(c.writer, c.request, "Bad Request", http.StatusBadRequest, c.start)
	case http.StatusRequestEntityTooLarge:
		s.respondError(c.writer, c.request, bodyTooLarge(c.queue.maxBodyBytes.Load()), http.StatusRequestEntityTooLarge, c.start)
	default:
		panic(http.ErrAbortHandler)
	}
	c.finished = true
}

// serve runs submitted operations until one finishes the response, and
// posts a disconnect event when the client goes away. It reports whether
// the connection must be closed because the response is incomplete.
func (c *asyncCall) serve() (abort bool) {
	done := c.request.Context().Done()
	for {
		select {
		case op := <-c.ops:
			finished, abort := c.run(op)
			op.batch.release()
			if finished {
				return abort
			}
		case <-done:
			done = nil
			c.queue.post(queueEvent{kind: eventDisconnect, call: c.handle})
		case <-c.queue.closed:
			return !c.finished
		}
	}
}

func (c *asyncCall) run(op asyncOp) (finished, abort bool) {
	switch op.kind {
	case opAbort:
		return true, !c.finished
	case opReject:
		if c.headerSent {
			return true, true
		}
		c.rejectBody(op.err)
		return true, false
	case opSendFile:
		if err := c.sendFile(op); err != nil {
			c.server.logger.Printf("http.response.pathsend of %q failed: %v", op.path, err)
			if !c.headerSent {
				clear(c.writer.Header())
				http.Error(c.writer, "Internal Server Error", http.StatusInternalServerError)
				c.headerSent, c.finished = true, true
			}
			return true, !c.finished
		}
		return true, false
	case opTrailers:
		c.setTrailers(op.header)
		if op.flags&writeFinish != 0 {
			return true, false
		}
		c.postWritten(nil)
		return false, false
	}

	if op.flags&writeFinish != 0 && !c.headerSent {
		if c.claimBody() {
			// The response is complete and no read is pending: what the
			// app left of the body is settled before the header, as in
			// callbackHandler.
			c.settle = true
			defer c.releaseBody()
		} else if !c.bodyEnded.Load() && c.request.ContentLength != 0 {
			// With a read pending, where the body ends is unknown, so the
			// connection closes after this response.
			announceClose(c.writer, c.request)
		}
	}
	// NOTE: with Expect: 100-continue and a read pending, net/http's header
	// write below waits until that read returns: both take the body's lock
	// (net/http's bodyRemains, Go 1.27). docs/asgi.md documents it.
	err := c.Write(op.status, op.header, op.body, op.flags)
	if op.flags&writeFinish != 0 {
		return true, err != nil && c.headerSent
	}
	c.postWritten(err)
	return false, false
}

func (c *asyncCall) postWritten(err error) {
	status, message := statusOf(err)
	c.queue.post(queueEvent{kind: eventWritten, status: status, call: c.handle, extra: message})
}

// sendFile sends the status and header, then the file at op.path as the
// whole body, cut at the Content-Length the app declared. net/http uses
// sendfile(2) where it can.
func (c *asyncCall) sendFile(op asyncOp) error {
	// Checked before the open, which waits for a writer on a FIFO.
	if info, err := os.Stat(op.path); err != nil {
		return err
	} else if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", op.path)
	}
	file, err := os.Open(op.path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		// The path changed between the check and the open.
		return fmt.Errorf("%s is not a regular file", op.path)
	}
	if !c.headerSent {
		if err := decodeHeader(c.writer.Header(), op.header); err != nil {
			return err
		}
		if c.writer.Header()["Content-Length"] == nil {
			c.writer.Header()["Content-Length"] = []string{strconv.FormatInt(info.Size(), 10)}
		}
		if err := c.Write(op.status, nil, nil, 0); err != nil {
			return err
		}
	}
	if _, err := c.copyFile(file, c.bodyLimit); err != nil {
		return err
	}
	return c.finish(nil)
}

// setTrailers adds header fields sent after the body; net/http sends them
// at the end of a chunked response.
func (c *asyncCall) setTrailers(encoded []byte) {
	trailers := http.Header{}
	if err := decodeHeader(trailers, encoded); err != nil {
		return
	}
	header := c.writer.Header()
	for name, values := range trailers {
		header[http.TrailerPrefix+name] = append(header[http.TrailerPrefix+name], values...)
	}
}

// StartRead reads up to size body bytes on a new goroutine and posts them
// as a body event.
func (c *asyncCall) StartRead(size int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return errFinished
	}
	if c.reading {
		return errReadPending
	}
	c.reading = true
	c.readers.Add(1)
	go func() {
		defer c.readers.Done()
		buf := make([]byte, size)
		n, err := c.readBody(buf, c.readsStopped)
		if err == nil && c.bodyEnded.Load() && c.bodyErr == io.EOF {
			// The last bytes and the end go in one event, which reaches the app
			// before the disconnect that net/http may notice from then on.
			err = io.EOF
		}
		c.mu.Lock()
		c.reading = false
		c.mu.Unlock()
		if bodyErrorStatus(err) != 0 {
			// The client gets 408 or 400 even if the app goes on waiting.
			_ = c.Submit(asyncOp{kind: opReject, err: err})
		}
		status, message := statusOf(err)
		c.queue.post(queueEvent{kind: eventBody, status: status, call: c.handle, data: buf[:n], extra: message})
	}()
	return nil
}

// claimBody keeps reads from starting, for settleBody, and reports false
// when a read is pending or reads have stopped.
func (c *asyncCall) claimBody() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.reading {
		return false
	}
	c.reading = true
	return true
}

// releaseBody ends claimBody.
func (c *asyncCall) releaseBody() {
	c.mu.Lock()
	c.reading = false
	c.settle = false
	c.mu.Unlock()
}

// readsStopped reports whether stopReads has run.
func (c *asyncCall) readsStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// stopReads cuts a pending body read short and waits for it, so that no
// read runs after the handler returns.
func (c *asyncCall) stopReads() {
	c.mu.Lock()
	c.ended = true
	reading := c.reading
	c.mu.Unlock()
	if reading {
		_ = http.NewResponseController(c.writer).SetReadDeadline(time.Now())
	}
	c.readers.Wait()
}

// Submit queues op for the handler goroutine without waiting.
func (c *asyncCall) Submit(op asyncOp) error {
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return errFinished
	}
	select {
	case c.ops <- op:
		return nil
	default:
		return errBusy
	}
}

// statusOf maps an I/O result to a gobind_status and its message.
func statusOf(err error) (int32, []byte) {
	switch {
	case err == nil:
		return 0, nil
	case err == io.EOF:
		return 8, nil
	case errors.Is(err, errFinished):
		return 3, []byte(err.Error())
	case errors.Is(err, errInvalidResponse):
		return 1, []byte(err.Error())
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 5, []byte("timed out: " + err.Error())
	}
	return 6, []byte(err.Error())
}

// opKinds maps the GOBIND_OP_* values of gobind.h to operation kinds.
var opKinds = map[uint32]asyncOpKind{1: opWrite, 2: opSendFile, 3: opTrailers, 4: opAbort}

// submitBatch submits the operations encoded in buffer (layout in
// gobind.h), whose slices they keep until they are done. An operation that
// cannot be submitted is reported as a failed write event of its call,
// since its submitter has moved on.
func submitBatch(buffer *batchBuffer) error {
	defer buffer.release()
	batch := buffer.data
	for len(batch) > 0 {
		if len(batch) < batchOpHeaderSize {
			return fmt.Errorf("%w: operation batch is truncated", errInvalidResponse)
		}
		handle := binary.NativeEndian.Uint64(batch)
		kindValue := binary.NativeEndian.Uint32(batch[8:])
		op := asyncOp{
			status: int(int32(binary.NativeEndian.Uint32(batch[12:]))),
			flags:  int(int32(binary.NativeEndian.Uint32(batch[16:]))),
		}
		headerLen := uint64(binary.NativeEndian.Uint32(batch[20:]))
		bodyLen := uint64(binary.NativeEndian.Uint32(batch[24:]))
		batch = batch[batchOpHeaderSize:]
		if headerLen+bodyLen > uint64(len(batch)) {
			return fmt.Errorf("%w: operation batch is truncated", errInvalidResponse)
		}
		op.header, op.body, batch = batch[:headerLen:headerLen], batch[headerLen:headerLen+bodyLen:headerLen+bodyLen], batch[headerLen+bodyLen:]

		kind, ok := opKinds[kindValue]
		if !ok {
			return fmt.Errorf("%w: invalid operation kind %d", errInvalidResponse, kindValue)
		}
		op.kind = kind
		if kind == opSendFile {
			op.path, op.body = string(op.body), nil
		}
		call := asyncCalls.get(handle)
		if call == nil {
			continue // the response has finished, so no result is expected
		}
		op.batch = buffer
		buffer.retain()
		if err := call.Submit(op); err != nil {
			buffer.release()
			call.postWritten(err)
		}
	}
	return nil
}

// batchOpHeaderSize is the fixed part of an operation in a batch: call,
// kind, status, flags, header length, body length.
const batchOpHeaderSize = 8 + 4 + 4 + 4 + 4 + 4
