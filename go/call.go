package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// calls maps the handles given to callbacks to their in-progress requests.
var calls registry[Call]

// Call is one request while its callback runs.
type Call struct {
	server  *Server
	writer  http.ResponseWriter
	request *http.Request

	status     int
	bodyLimit  int64 // the Content-Length the handler declared, or -1
	headerSent bool
	finished   bool
	// bodyEnded and bodyRead are set by queue mode's reading goroutine
	// while the handler goroutine may finish the response.
	bodyEnded atomic.Bool
	bodyRead  atomic.Bool // the handler read the body at least once
	// bodyConsumed counts the body bytes the handler read.
	bodyConsumed atomic.Int64
	bodyErr      error // the error that ended the body, io.EOF at its end
	// settle allows settleBody: set when the handler reads the body on its
	// own goroutine, and in queue mode while a complete response is
	// written with no read pending.
	settle        bool
	continued     bool // the handler sent 100 Continue itself
	writeFailed   bool // a body write failed, so a short body is the client's doing
	writeDeadline time.Time
	// ended is the clock reading at the end of the callback, which the
	// writes made right after it use in place of a fresh one.
	ended time.Time
}

// callbackHandler serves the requests of one pattern through a Callback.
type callbackHandler struct {
	server   *Server
	callback Callback
	params   []string
}

// exchange holds what one callback uses and the pool recycles: the Call,
// the encoded request and the area for an inline response.
type exchange struct {
	call     Call
	request  []byte
	response [inlineResponseSize]byte
}

// inlineResponseSize bounds the responses that return from a callback
// without a call back into Go: status, header and body together.
const inlineResponseSize = 16 << 10

var exchanges = sync.Pool{New: func() any { return &exchange{request: make([]byte, 0, 1024)} }}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.server
	// net/http set the write deadline when it read the request header, just
	// before this call, so the deadline counts from here and not from the
	// start of the callback, which can come much later.
	arrived := time.Now()
	enableFullDuplex(w, r)

	// Requests beyond the callback bound wait here, as goroutines, instead
	// of occupying an OS thread each inside the callback. The start of the
	// body is read first, so that a client slow to send its body holds no
	// slot while it is slow.
	holdsSlot := false
	if s.slots != nil {
		if r.ContentLength != 0 && !expectsContinue(r) {
			prefetchBody(w, r, s.config.ReadTimeout)
		}
		if !s.acquireSlot(r) {
			// The client went away while waiting. Returning would send it
			// an empty 200, so the connection closes without a response.
			panic(http.ErrAbortHandler)
		}
		holdsSlot = true
		defer func() {
			if holdsSlot {
				s.releaseSlot()
			}
		}()
	}

	// A released server runs no more callbacks. The counter is raised
	// before the closed bit is tested, so Release either waits for this
	// call or this call observes the bit and returns 503.
	start := arrived
	if s.slots != nil {
		start = time.Now() // after the read ahead and the wait for a slot
	}
	if s.calls.Add(1)&closedBit != 0 {
		s.calls.Add(-1)
		s.respondError(w, r, "server is shutting down", http.StatusServiceUnavailable, start)
		return
	}
	defer s.calls.Add(-1)
	s.active.Add(1)
	defer s.active.Add(-1)

	// The exchange returns to the pool after the handle is removed, so a
	// stale handle never reaches a later request's Call. It returns
	// without the request, so the pool does not keep the request alive.
	buffers := exchanges.Get().(*exchange)
	defer func() {
		buffers.call = Call{}
		exchanges.Put(buffers)
	}()
	call := &buffers.call
	*call = Call{server: s, writer: w, request: r, settle: true}
	if s.config.WriteTimeout > 0 {
		call.writeDeadline = arrived.Add(s.config.WriteTimeout)
	}
	handle := calls.add(call)
	defer calls.remove(handle)

	buffers.request = encodeRequest(buffers.request[:0], r, s.connLocalAddress(r), h.params)
	result, inline := h.callback.Call(handle, buffers.request, buffers.response[:])
	call.ended = time.Now()
	procs.callbackEnded(start, call.ended)
	if holdsSlot {
		holdsSlot = false
		s.releaseSlot()
	}
	if inline > 0 && !call.finished {
		call.writeInline(buffers.response[:inline])
	}

	if !call.finished {
		call.finish(nil)
	}
	if result == CallAbort {
		panic(http.ErrAbortHandler)
	}
	call.reportShortBody()
}

// prefetchedBody serves the bytes read ahead, then the rest of the body.
type prefetchedBody struct {
	data []byte
	err  error // the error that ended the read ahead: io.EOF at the end of the body
	rest io.ReadCloser
}

func (b *prefetchedBody) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.rest.Read(p)
}

func (b *prefetchedBody) Close() error { return b.rest.Close() }

// prefetchBody reads up to prefetchLimit body bytes (the same read-ahead
// as queue mode's), each read bounded by timeout, and puts them in front
// of r.Body. A read error, such as a client that stayed silent, is kept
// and returned to the handler's first read past those bytes, so that the
// handler receives it without having held a slot while the client was slow.
func prefetchBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	size := int64(prefetchLimit)
	if r.ContentLength > 0 && r.ContentLength < size {
		size = r.ContentLength
	}
	buffer := make([]byte, size)
	controller := http.NewResponseController(w)
	// Each read gets its own deadline, so a client that sends slowly but
	// steadily is not cut off.
	var n int
	var err error
	for n < len(buffer) && err == nil {
		_ = controller.SetReadDeadline(time.Now().Add(timeout))
		var read int
		read, err = r.Body.Read(buffer[n:])
		n += read
	}
	// Only io.EOF ends a body: net/http reports a body that the client cut
	// off, chunked or not, as io.ErrUnexpectedEOF.
	if err == nil && r.ContentLength == int64(n) {
		err = io.EOF
	}
	if err == io.EOF {
		// net/http reads in the background once a body ended, and a
		// deadline would cut that read short.
		_ = controller.SetReadDeadline(time.Time{})
	}
	r.Body = &prefetchedBody{data: buffer[:n], err: err, rest: r.Body}
}

// expectsContinue reports whether the client waits for 100 Continue before
// it sends the body. net/http sends that response at the first body read,
// so the body is not read ahead: the handler decides whether it wants it.
//
// NOTE: net/http's HTTP/2 server removes the Expect field before the
// handler runs, so over HTTP/2 the body is read ahead and 100 Continue
// goes out before the application decides.
func expectsContinue(r *http.Request) bool {
	return r.ProtoAtLeast(1, 1) && strings.EqualFold(r.Header.Get("Expect"), "100-continue")
}

// acquireSlot waits for a free callback slot, and reports false when the
// client went away first. The common case of a free slot skips the
// select, which would make the request context allocate its Done channel.
//
// NOTE: net/http notices that a client left only through its background
// read, which starts once the request body was read. A client that leaves
// with its body unread (over 64 KiB, or Expect: 100-continue) or with
// requests pipelined behind this one is not noticed here, so its callback
// still runs.
func (s *Server) acquireSlot(r *http.Request) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	s.slotWaiters.Add(1)
	defer s.slotWaiters.Add(-1)
	select {
	case s.slots <- struct{}{}:
		return true
	case <-r.Context().Done():
		if s.closing.Load() {
			// Only a request that the server drops is logged, not a
			// client that left.
			s.writeLog(fmt.Sprintf("dropped %s %s: the server closed its connection while the request waited for a handler thread",
				r.Method, r.URL.RequestURI()))
		}
		return false
	}
}

// releaseSlot frees a callback slot once its callback has returned. Go runs
// the request it wakes on this processor only after this goroutine blocks,
// which is after the response went out. Yielding starts that callback now,
// while another processor writes this response.
func (s *Server) releaseSlot() {
	<-s.slots
	if s.slotWaiters.Load() > 0 {
		runtime.Gosched()
	}
}

// encodeRequest appends r to b in the layout documented in gobind.h.
func encodeRequest(b []byte, r *http.Request, localAddress string, params []string) []byte {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	b = appendString(b, r.Method)
	b = appendString(b, r.RequestURI)
	b = appendString(b, r.URL.Path)
	b = appendString(b, r.URL.EscapedPath())
	b = appendString(b, r.URL.RawQuery)
	b = appendString(b, r.Proto)
	b = appendString(b, scheme)
	b = appendString(b, r.Host)
	b = appendString(b, r.RemoteAddr)
	b = appendString(b, localAddress)
	b = binary.NativeEndian.AppendUint64(b, uint64(r.ContentLength))

	b = binary.NativeEndian.AppendUint32(b, uint32(len(params)))
	for _, name := range params {
		b = appendString(b, name)
		b = appendString(b, r.PathValue(name))
	}

	// net/http moves Host and Transfer-Encoding out of the header map; they
	// go back in so that handlers see every header the client sent. The
	// count is patched in after one pass over the map.
	countAt := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	count := 0
	if r.Host != "" {
		b = appendString(b, "Host")
		b = appendString(b, r.Host)
		count++
	}
	for _, coding := range r.TransferEncoding {
		b = appendString(b, "Transfer-Encoding")
		b = appendString(b, coding)
		count++
	}
	for name, values := range r.Header {
		for _, value := range values {
			b = appendString(b, name)
			b = appendString(b, value)
			count++
		}
	}
	binary.NativeEndian.PutUint32(b[countAt:], uint32(count))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// ReadBody reads up to len(p) bytes of the request body. It returns 0 and
// io.EOF at the end, and the same error again after a failed read. Each
// read waits at most the configured ReadTimeout.
func (c *Call) ReadBody(p []byte) (int, error) {
	return c.readBody(p, nil)
}

// readBody is ReadBody. When stopped is not nil, it is checked once the
// read's deadline is set, and a read it stops returns errFinished: a
// deadline set to cut the read short cannot be overwritten unseen.
func (c *Call) readBody(p []byte, stopped func() bool) (int, error) {
	if c.bodyEnded.Load() {
		return 0, c.bodyErr
	}
	controller := http.NewResponseController(c.writer)
	// The deadline is cleared at the end of the body because net/http keeps
	// reading the connection in the background from then on, to notice a
	// client that goes away, and a deadline would cut that read short.
	// After a failed read it stays: the unread body is drained around the
	// response (settleBody, then net/http), and without a deadline a silent
	// client would hold that drain forever.
	_ = controller.SetReadDeadline(time.Now().Add(c.server.config.ReadTimeout))
	if stopped != nil && stopped() {
		return 0, errFinished
	}
	c.bodyRead.Store(true)
	n, err := c.request.Body.Read(p)
	c.bodyConsumed.Add(int64(n))
	if err != nil {
		err = framingError(c.request, err)
		if errors.Is(err, io.EOF) {
			_ = controller.SetReadDeadline(time.Time{})
			err = io.EOF
		}
		c.bodyErr = err
		c.bodyEnded.Store(true)
	}
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// bodyFailed reports whether a read of the request body failed. The
// connection must then close, because where the body ends is unknown.
func (c *Call) bodyFailed() bool {
	return c.bodyEnded.Load() && !errors.Is(c.bodyErr, io.EOF)
}

// maxUnreadBody bounds the unread request body that settleBody reads,
// as net/http bounds its own.
const maxUnreadBody = 256 << 10

// settleBody reads and discards what the handler left of an HTTP/1 request
// body, before a response that is complete goes out, as net/http does
// without full duplex (see enableFullDuplex). After a body longer than
// maxUnreadBody, or a failed read, the response announces that the
// connection closes.
func (c *Call) settleBody() {
	r := c.request
	if !c.settle || !fullDuplex || r.ProtoMajor != 1 || r.ContentLength == 0 || c.bodyEnded.Load() {
		return
	}
	if !c.bodyRead.Load() && expectsContinue(r) {
		// The client waits for 100 Continue before it sends the body.
		return
	}
	if c.unreadTooLong() {
		// Discarding would only delay the response: the connection
		// closes anyway. net/http skips this discard too.
		announceClose(c.writer, r)
		return
	}
	// One deadline for the whole discard, as net/http sets, so that a
	// client sending a byte at a time cannot stretch it.
	controller := http.NewResponseController(c.writer)
	_ = controller.SetReadDeadline(time.Now().Add(c.server.config.ReadTimeout))
	_, err := io.CopyN(io.Discard, r.Body, maxUnreadBody+1)
	if errors.Is(err, io.EOF) {
		_ = controller.SetReadDeadline(time.Time{})
		c.bodyErr = io.EOF
		c.bodyEnded.Store(true)
		return
	}
	announceClose(c.writer, r)
}

// unreadTooLong reports whether the Content-Length shows that more than
// maxUnreadBody bytes of the body are left unread. Bytes read ahead
// (prefetchBody) count as unread, so the count may exceed what is left on
// the connection by up to prefetchLimit: such a connection closes, though
// net/http could have discarded the rest.
func (c *Call) unreadTooLong() bool {
	r := c.request
	return r.ContentLength > 0 && r.ContentLength-c.bodyConsumed.Load() > maxUnreadBody
}

// mayEndUnread reports whether the HTTP/1 request body may outlast a
// streamed response: what is left of it is unknown (chunked) or longer
// than maxUnreadBody, which net/http discards when the handler returns.
// Such a response announces that the connection closes, because its
// header goes out before the handler has shown whether it reads the rest.
func (c *Call) mayEndUnread() bool {
	r := c.request
	if !fullDuplex || r.ProtoMajor != 1 || c.bodyEnded.Load() {
		return false
	}
	return r.ContentLength < 0 || c.unreadTooLong()
}

// continueBeforeHeader sends 100 Continue ahead of the header of a streamed
// response that is not an error, which leaves the handler free to read the
// body afterwards, when the client waits for it before it sends the body.
// Once the header is out, net/http would never send it, and would close
// the body.
func (c *Call) continueBeforeHeader() {
	r := c.request
	if !fullDuplex || r.ProtoMajor != 1 || r.ContentLength == 0 || c.continued || c.bodyRead.Load() ||
		!expectsContinue(r) {
		return
	}
	// Written before the response's own fields enter the header map, which
	// net/http sends along with a 1xx status.
	c.writer.WriteHeader(http.StatusContinue)
}

// announceClose adds "Connection: close" to an HTTP/1 response, so that
// the client sends no further request on a connection that net/http will
// close. HTTP/2 gets no such header: there net/http would end the whole
// connection.
func announceClose(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

// Write flags, as in gobind.h.
const (
	writeFlush  = 1
	writeFinish = 2
)

var (
	errFinished        = errors.New("response is already finished")
	errInvalidResponse = errors.New("invalid response")
)

// Write sends the response header (on the first call) and body bytes.
// The header block is encoded as in gobind.h and is read only on the first
// call. With writeFinish, a response without Content-Length gets one, so
// that a whole body sent at once is not chunked.
func (c *Call) Write(status int, header []byte, body []byte, flags int) error {
	if c.finished {
		return errFinished
	}
	if !c.headerSent {
		final := flags&writeFinish != 0
		// A response ended and flushed while the handler goes on leaves
		// before net/http could add the Content-Length of a small body.
		sized := final && (len(body) >= 2048 || flags&writeFlush != 0)
		if err := c.sendHeader(status, header, len(body), final, sized); err != nil {
			return err
		}
	}
	// 204 and 304 forbid a body: it is dropped, as net/http does for HEAD
	// requests, instead of failing the whole response.
	if len(body) > 0 && c.status != http.StatusNoContent && c.status != http.StatusNotModified {
		if body = c.trimToDeclaredLength(body); len(body) == 0 {
			return c.afterWrite(flags)
		}
		for len(body) > 0 {
			piece := body[:min(len(body), writePiece)]
			c.extendWriteDeadline()
			if _, err := c.writer.Write(piece); err != nil {
				c.writeFailed = true
				return err
			}
			body = body[len(piece):]
		}
	}
	return c.afterWrite(flags)
}

func (c *Call) afterWrite(flags int) error {
	if flags&writeFinish != 0 {
		if err := c.finish(nil); err != nil || flags&writeFlush == 0 {
			return err
		}
		// An early end: the client gets the response while the handler
		// goes on, not when it returns.
		return http.NewResponseController(c.writer).Flush()
	}
	if flags&writeFlush != 0 {
		c.extendWriteDeadline()
		return http.NewResponseController(c.writer).Flush()
	}
	return nil
}

// sendHeader sends the status and the encoded header fields. final means
// that bodyLength is the whole body; with sized it becomes the
// Content-Length, unless the fields set one or a Transfer-Encoding.
func (c *Call) sendHeader(status int, encoded []byte, bodyLength int, final, sized bool) error {
	if status == 0 {
		status = http.StatusOK
	}
	if status < 100 || status > 999 {
		return fmt.Errorf("%w: status code %d is outside 100-999", errInvalidResponse, status)
	}
	if status < 200 && status != http.StatusSwitchingProtocols {
		return c.sendInformational(status, encoded)
	}
	if !final && status < 400 {
		c.continueBeforeHeader()
	}
	header := c.writer.Header()
	if err := decodeHeader(header, encoded); err != nil {
		return err
	}
	// net/http itself adds Content-Length to bodies below its chunking
	// threshold (2 KiB) when the handler returns before a flush, so only
	// larger ones need it here, and those flushed at once.
	if final && sized && bodyAllowed(status) && header["Content-Length"] == nil && header["Transfer-Encoding"] == nil {
		header["Content-Length"] = []string{strconv.Itoa(bodyLength)}
	}
	if final {
		c.settleBody()
	}
	if c.bodyFailed() || !final && c.mayEndUnread() {
		announceClose(c.writer, c.request)
	}
	c.writer.WriteHeader(status)
	c.status = status
	c.headerSent = true
	c.bodyLimit = -1
	if declared := header["Content-Length"]; len(declared) == 1 {
		if n, err := strconv.ParseInt(declared[0], 10, 64); err == nil && n >= 0 {
			c.bodyLimit = n
		}
	}
	return nil
}

// sendInformational sends a 1xx response, such as 103 Early Hints, ahead of
// the final one. Its header fields leave the header map afterwards, because
// the final response brings its own whole header block. HTTP/1.0 clients
// get nothing, since RFC 9110 forbids 1xx responses to them.
func (c *Call) sendInformational(status int, encoded []byte) error {
	if !c.request.ProtoAtLeast(1, 1) {
		return nil
	}
	if status == http.StatusContinue && (c.continued || c.bodyRead.Load() && expectsContinue(c.request)) {
		// Sent already: by the handler, or by net/http at the first body read.
		return nil
	}
	header := c.writer.Header()
	if err := decodeHeader(header, encoded); err != nil {
		return err
	}
	c.writer.WriteHeader(status)
	clear(header)
	if status == http.StatusContinue {
		c.continued = true
	}
	return nil
}

// trimToDeclaredLength cuts body to what the declared Content-Length still
// allows: net/http fails a write that crosses it, which would lose the
// bytes that fit. The cut is logged once per response.
func (c *Call) trimToDeclaredLength(body []byte) []byte {
	if c.bodyLimit < 0 || int64(len(body)) <= c.bodyLimit {
		if c.bodyLimit >= 0 {
			c.bodyLimit -= int64(len(body))
		}
		return body
	}
	c.server.writeLog(fmt.Sprintf("response to %s %s is longer than its Content-Length; the extra bytes were not sent",
		c.request.Method, c.request.URL.Path))
	body = body[:c.bodyLimit]
	c.bodyLimit = 0
	return body
}

// reportShortBody logs a response that ended before the length its
// Content-Length declared. net/http then closes the connection and logs
// nothing, and the client sees a cut response.
func (c *Call) reportShortBody() {
	if c.bodyLimit <= 0 || c.writeFailed || c.request.Method == http.MethodHead || !bodyAllowed(c.status) {
		return
	}
	c.server.writeLog(fmt.Sprintf("response to %s %s ended %d bytes short of its Content-Length; the connection is closed",
		c.request.Method, c.request.URL.Path, c.bodyLimit))
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// writeInline sends a whole response that a callback encoded in the
// inline area: an int32 status, a header block, then the body.
func (c *Call) writeInline(encoded []byte) {
	status, rest, ok := readUint32(encoded)
	if !ok {
		c.finish(fmt.Errorf("%w: inline response is truncated", errInvalidResponse))
		return
	}
	header, body, err := splitHeader(rest)
	if err == nil {
		err = c.Write(int(int32(status)), header, body, writeFinish)
	}
	if err != nil && !c.finished {
		c.finish(err)
	}
}

// splitHeader splits an encoded header block from the bytes after it.
func splitHeader(b []byte) (header, rest []byte, err error) {
	count, after, ok := readUint32(b)
	for i := uint32(0); ok && i < 2*count; i++ {
		var n uint32
		if n, after, ok = readUint32(after); ok && uint64(n) <= uint64(len(after)) {
			after = after[n:]
		} else {
			ok = false
		}
	}
	if !ok {
		return nil, nil, fmt.Errorf("%w: header block is truncated", errInvalidResponse)
	}
	return b[:len(b)-len(after)], after, nil
}

// decodeHeader adds the pairs of an encoded header block to header.
func decodeHeader(header http.Header, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	count, b, ok := readUint32(b)
	for i := uint32(0); ok && i < count; i++ {
		var name, value []byte
		if name, b, ok = readBytes(b); !ok {
			break
		}
		if value, b, ok = readBytes(b); !ok {
			break
		}
		key, known := commonHeaderKeys[string(name)]
		if !known {
			key = textproto.CanonicalMIMEHeaderKey(string(name))
		}
		text, known := commonHeaderValues[string(value)]
		if !known {
			text = string(value)
		}
		header[key] = append(header[key], text)
	}
	if !ok {
		return fmt.Errorf("%w: header block is truncated", errInvalidResponse)
	}
	return nil
}

func readUint32(b []byte) (uint32, []byte, bool) {
	if len(b) < 4 {
		return 0, b, false
	}
	return binary.NativeEndian.Uint32(b), b[4:], true
}

// commonHeaderKeys maps frequent response header names, as handlers spell
// them, to their canonical form. commonHeaderValues contains frequent
// values. A map lookup with a string(bytes) key does not allocate, so these
// headers are decoded without allocating strings.
var commonHeaderKeys, commonHeaderValues = func() (keys, values map[string]string) {
	keys = map[string]string{}
	for _, name := range []string{
		"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Type", "Date", "Etag", "Expires", "Last-Modified", "Location", "Server", "Set-Cookie",
		"Vary", "X-Content-Type-Options", "X-Frame-Options",
	} {
		keys[name] = name
		keys[strings.ToLower(name)] = name
	}
	keys["ETag"] = "Etag"
	values = map[string]string{}
	for _, value := range []string{
		"application/json", "application/octet-stream", "text/html", "text/html; charset=utf-8",
		"text/plain", "text/plain; charset=utf-8", "no-cache", "no-store", "nosniff", "gzip", "close",
		"chunked", "keep-alive", "Accept-Encoding",
	} {
		values[value] = value
	}
	return keys, values
}()

// readBytes reads a length-prefixed byte string, without copying it.
func readBytes(b []byte) ([]byte, []byte, bool) {
	n, b, ok := readUint32(b)
	if !ok || uint64(n) > uint64(len(b)) {
		return nil, b, false
	}
	return b[:n], b[n:], true
}

// writePiece bounds the bytes written under one write deadline. A large
// write goes out in pieces, each of which moves the deadline forward when
// due, so that the write timeout bounds a client's stall, not the time a
// large body takes to reach a client that keeps reading.
const writePiece = 256 << 10

// extendWriteDeadline moves the write deadline forward once half of it has
// passed, so that a response streamed for longer than WriteTimeout keeps
// going as long as the client keeps reading, at the cost of one clock read
// per write.
func (c *Call) extendWriteDeadline() {
	timeout := c.server.config.WriteTimeout
	now := c.ended
	if now.IsZero() {
		now = time.Now()
	}
	if c.writeDeadline.Sub(now) > timeout/2 {
		return
	}
	c.writeDeadline = now.Add(timeout)
	_ = http.NewResponseController(c.writer).SetWriteDeadline(c.writeDeadline)
}

// finish ends the response. A response that was never started becomes an
// empty 200. An unread request body gets a read deadline so that net/http,
// which drains it for keep-alive, does not wait on a silent client forever.
func (c *Call) finish(err error) error {
	if c.finished {
		return err
	}
	if !c.headerSent {
		if sendErr := c.sendHeader(http.StatusOK, nil, 0, true, false); sendErr != nil && err == nil {
			err = sendErr
		}
	}
	// net/http writes what is buffered after the handler returns.
	c.extendWriteDeadline()
	c.finished = true
	if !c.bodyEnded.Load() && c.request.ContentLength != 0 {
		deadline := time.Now().Add(c.server.config.ReadTimeout)
		if !c.bodyRead.Load() && expectsContinue(c.request) {
			// The client waits for a 100 Continue that never came, so it
			// sends no body, and the connection closes after the response.
			deadline = time.Now()
		}
		_ = http.NewResponseController(c.writer).SetReadDeadline(deadline)
	}
	return err
}
