package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A guardConn sits between a TCP connection and net/http. It hands
// net/http only bytes it has checked: whole request heads that passed
// checkHead, and body bytes framed exactly as net/http frames them
// (Content-Length or chunked). Leading empty lines before a request line are
// dropped. When a head is rejected, net/http never receives it: the next read
// for a request returns io.EOF, net/http closes the connection, and Close
// sends the rejection after every earlier response. So no request is ever
// parsed from bytes whose framing was ambiguous.

// guardSettings are shared by the connections of one server.
type guardSettings struct {
	limits         headLimits
	headerTimeout  time.Duration // bound on receiving one whole head
	writeTimeout   time.Duration // bound on sending a rejection
	connectAllowed atomic.Bool   // a pattern registered the CONNECT method
	http2Cleartext bool          // an HTTP/2 preface turns the connection transparent

	// logf receives one line per rejection sent; nil means none.
	logf func(format string, args ...any)
}

// http2Preface is the first line of a cleartext HTTP/2 connection with
// prior knowledge; net/http hands such a connection to its HTTP/2 server.
const http2Preface = "PRI * HTTP/2.0\r\n"

type guardListener struct {
	net.Listener
	settings *guardSettings
}

func (l *guardListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: conn, settings: l.settings}, nil
}

// parseState is the part of the byte stream that a guardConn expects next.
type parseState int

const (
	stateHead      parseState = iota // a request head, possibly after empty lines
	stateLength                      // remaining Content-Length body bytes
	stateChunkLine                   // a chunk-size line
	stateChunkData                   // remaining bytes of a chunk
	stateChunkEnd                    // the CRLF after chunk data
	stateTrailer                     // a trailer field line or the final empty line
	stateEnd                         // nothing more is handed to net/http
)

const (
	// minFillBytes is the least free space of the connection's own buffer
	// for a read into it; the buffer grows when less is free.
	minFillBytes = 1024
	// lingerTime and lingerBytes bound how long and how much a connection
	// keeps reading after a rejection, so that unread request bytes do not
	// turn the close into a reset that discards the response (net/http
	// waits 500 ms for the same reason).
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// errChunkedFraming is returned to the body reader when the chunked
// framing of a request body is invalid or exceeds a limit.
var errChunkedFraming = errors.New("invalid chunked framing in request body")

// guardKey is the context key of a request's guardConn.
type guardKey struct{}

// framingError returns errChunkedFraming for a failed body read of r when
// the guard stopped that body as malformed. net/http reports a malformed
// trailer as its own unexpected-EOF error, which would otherwise pass for a
// client that went away.
func framingError(r *http.Request, err error) error {
	guard, _ := r.Context().Value(guardKey{}).(*guardConn)
	if guard != nil && guard.bodyErr == errChunkedFraming {
		return errChunkedFraming
	}
	return err
}

type guardConn struct {
	net.Conn
	settings *guardSettings

	// The parse state below is used by one reader at a time: net/http
	// never reads a connection concurrently.
	buf       []byte // received bytes not yet returned; buf[:vetted] are checked
	vetted    int
	state     parseState
	remaining uint64 // bytes left in the body or chunk
	last      bool   // stateEnd follows the current request's body
	bodyErr   error  // framing error inside a body

	// Progress through an incomplete head.
	skipped   int  // empty lines dropped before the request line, in bytes
	scanned   int  // bytes of the head searched for its end
	lineStart int  // offset of the incomplete line
	lines     int  // complete lines
	lineSeen  bool // the request line is complete and passed its checks

	// Progress through chunked framing.
	overhead      int64 // chunk-line bytes not yet balanced by data, as net/http counts them
	trailerBytes  int
	trailerFields int

	// The read deadlines, in Unix nanoseconds (0 for none), reach the socket
	// only when a read is in progress or about to start, because net/http
	// sets one about seven times per request, mostly with no read in between.
	// The setter stores the deadline before it checks reading, and the reader
	// sets reading before it checks the deadline, so one of them puts it on
	// the socket.
	deadlineMu   sync.Mutex
	readDeadline atomic.Int64 // the deadline net/http set last
	headDeadline int64        // the shorter deadline of an incomplete head, changed by the reader under deadlineMu
	applied      atomic.Int64 // the deadline on the socket, changed under deadlineMu
	reading      atomic.Bool  // a read of the socket is in progress
	// cut reports that the deadline on the socket is cutReadDeadline.
	cut atomic.Bool
	// headDeadlineSet mirrors headDeadline != zero for the reader, which
	// alone changes it, so that complete heads take no lock.
	headDeadlineSet bool

	// The write deadlines reach the socket at the next write in the same
	// way, under writeMu. net/http sets a new one for every request, a few
	// microseconds later than the last, so a deadline at most the write
	// timeout / writeSlackDivisor later than the socket's is skipped.
	writeMu       sync.Mutex
	writeDeadline atomic.Int64 // the deadline net/http set last
	writeApplied  atomic.Int64 // the deadline on the socket, changed under writeMu
	writing       atomic.Int32 // writes of the socket in progress

	active       atomic.Bool // net/http is serving a request (StateActive)
	fresh        atomic.Bool // net/http has not read a request yet (StateNew), kept by Server
	transparent  atomic.Bool // hijacked: bytes pass unchecked
	rejection    atomic.Pointer[rejection]
	rejectionDue atomic.Bool // net/http saw io.EOF in place of the rejected head
	closing      atomic.Bool
}

// setState follows net/http's connection states (http.Server.ConnState).
func (c *guardConn) setState(state http.ConnState) {
	switch state {
	case http.StateActive:
		c.active.Store(true)
	case http.StateIdle:
		c.active.Store(false)
	case http.StateHijacked:
		c.transparent.Store(true)
	}
}

func (c *guardConn) Read(p []byte) (int, error) {
	for {
		if c.vetted > 0 {
			return c.take(p), nil
		}
		if c.transparent.Load() {
			if len(c.buf) > 0 {
				c.vetted = len(c.buf)
				continue
			}
			return c.readConn(p)
		}
		if c.state == stateEnd {
			return c.readAfterEnd(p)
		}
		if len(c.buf) == 0 {
			// Fast path: the bytes land in net/http's buffer and are
			// checked in place; only an incomplete unit is copied aside.
			// net/http's background read, one byte long, takes this path
			// too, so a connection whose client waits for each response
			// never allocates a buffer of its own.
			n, err := c.readConn(p)
			c.noteReadError(err)
			out, in := c.vet(p[:n])
			if in < n && c.state != stateEnd {
				c.buf = append(c.buf, p[in:n]...)
			}
			if out > 0 {
				return out, nil
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
}

// take moves checked bytes into p.
func (c *guardConn) take(p []byte) int {
	n := copy(p, c.buf[:c.vetted])
	c.vetted -= n
	rest := copy(c.buf, c.buf[n:])
	c.buf = c.buf[:rest]
	if rest == 0 && cap(c.buf) > 16<<10 {
		c.buf = nil // a long head grew it; idle connections keep no large buffer
	}
	return n
}

// fill reads more bytes into buf and checks them.
func (c *guardConn) fill() error {
	// net/http waits for the rest of a head. While a handler runs, the read
	// is net/http's background read instead, which must not time out
	// because that would cancel the request.
	if c.state == stateHead && len(c.buf) > 0 && !c.active.Load() {
		c.shortenDeadline()
	}
	if cap(c.buf)-len(c.buf) < minFillBytes {
		grown := make([]byte, len(c.buf), max(2*cap(c.buf), 4096))
		copy(grown, c.buf)
		c.buf = grown
	}
	n, err := c.readConn(c.buf[len(c.buf):cap(c.buf)])
	c.noteReadError(err)
	c.buf = c.buf[:len(c.buf)+n]
	if n > 0 {
		out, in := c.vet(c.buf)
		if c.state == stateEnd {
			c.buf = c.buf[:out]
		} else {
			c.buf = c.buf[:out+copy(c.buf[out:], c.buf[in:])]
		}
		c.vetted = out
	}
	if n == 0 || c.vetted == 0 {
		return err
	}
	return nil
}

// noteReadError ends the stream when a body read times out. The rest of
// that body may still arrive, so no later request can be framed; and
// net/http, which reads the rest of an unread body before it responds,
// gets the error at once instead of waiting without a deadline.
func (c *guardConn) noteReadError(err error) {
	if err == nil || c.state == stateHead || c.state == stateEnd {
		return
	}
	if c.cut.Load() {
		// A read cut short on purpose: net/http's background read, which
		// can be in the next pipelined request's body when a handler
		// returns. That body did not time out, and none of it was lost.
		return
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		c.bodyErr = err
		c.state = stateEnd
	}
}

// readAfterEnd serves reads once no more requests may be parsed.
func (c *guardConn) readAfterEnd(p []byte) (int, error) {
	if !c.active.Load() {
		// net/http wants the next request: there is none.
		if c.rejection.Load() != nil {
			c.rejectionDue.Store(true)
		}
		return 0, io.EOF
	}
	if c.bodyErr != nil {
		return 0, c.bodyErr
	}
	// A request is still being served and this is net/http's background
	// read, which treats io.EOF as the client going away. It waits like a
	// read that receives nothing, until the client closes or net/http
	// cuts it short with a deadline.
	for {
		if _, err := c.readConn(p); err != nil {
			return 0, err
		}
		if !c.active.Load() {
			return 0, io.EOF
		}
	}
}

// vet checks data from the current parse state on. It moves the bytes to
// hand to net/http to data[:out], drops the bytes it consumes but does not
// hand on (empty lines before a request line), and returns in, the number
// of bytes consumed. data[in:] is an incomplete unit (head, chunk line,
// CRLF or trailer line), or anything after the point where checking ended.
func (c *guardConn) vet(data []byte) (out, in int) {
	for in < len(data) && c.state != stateEnd {
		unit := data[in:]
		n, keep := 0, true
		switch c.state {
		case stateHead:
			n, keep = c.vetHead(unit)
		case stateLength, stateChunkData:
			n = int(min(c.remaining, uint64(len(unit))))
			c.remaining -= uint64(n)
			if c.remaining == 0 {
				if c.state == stateLength {
					c.endBody()
				} else {
					c.state = stateChunkEnd
				}
			}
		case stateChunkLine:
			n = c.vetChunkLine(unit)
		case stateChunkEnd:
			n = c.vetChunkEnd(unit)
		case stateTrailer:
			n = c.vetTrailerLine(unit)
		}
		if n == 0 {
			break
		}
		if keep && out != in {
			copy(data[out:], unit[:n])
		}
		if keep {
			out += n
		}
		in += n
	}
	return out, in
}

// vetHead consumes a complete, accepted head or one empty line before it.
// It returns 0 while the head is incomplete and when it is rejected.
func (c *guardConn) vetHead(unit []byte) (int, bool) {
	if c.settings.http2Cleartext && c.scanned == 0 {
		n := min(len(unit), len(http2Preface))
		if string(unit[:n]) == http2Preface[:n] {
			if n < len(http2Preface) {
				return 0, true
			}
			// HTTP/2 frames its own messages: nothing to check here.
			c.transparent.Store(true)
			return len(unit), true
		}
	}
	limits := &c.settings.limits
	if c.scanned == 0 && unit[0] == '\r' {
		if len(unit) < 2 {
			return 0, true
		}
		if unit[1] == '\n' {
			c.skipped += 2
			if c.skipped > limits.maxHeadBytes {
				c.rejectHead(&rejection{http.StatusBadRequest, "too many empty lines before the request line"})
				return 0, false
			}
			return 2, false
		}
	}

	if c.scanned == 0 {
		if end, verdict, ok := scanHead(unit, limits, c.settings.connectAllowed.Load()); ok {
			c.endHead()
			c.startBody(verdict)
			return end, true
		}
	}
	end := c.findHeadEnd(unit)
	if end < 0 {
		if r := c.checkIncompleteHead(unit); r != nil {
			c.rejectHead(r)
		}
		return 0, true
	}
	head := unit[:end]
	c.endHead()

	if len(head) > limits.maxHeadBytes {
		c.rejectHead(&rejection{http.StatusRequestHeaderFieldsTooLarge, headTooLarge(limits)})
		return 0, false
	}
	verdict := checkHead(head, limits, c.settings.connectAllowed.Load())
	if verdict.rejection != nil {
		c.rejectHead(verdict.rejection)
		return 0, false
	}
	c.startBody(verdict)
	return len(head), true
}

// endHead resets the progress through a head once it is complete, and
// restores the read deadline that an incomplete head shortened.
func (c *guardConn) endHead() {
	c.scanned, c.lineStart, c.lines, c.skipped, c.lineSeen = 0, 0, 0, 0, false
	c.restoreDeadline()
}

// startBody sets the parse state for the body of an accepted head.
func (c *guardConn) startBody(verdict headVerdict) {
	c.last = verdict.last
	switch {
	case verdict.framing == framingChunked:
		c.state = stateChunkLine
		c.overhead, c.trailerBytes, c.trailerFields = 0, 0, 0
	case verdict.framing == framingLength && verdict.length > 0:
		c.state = stateLength
		c.remaining = uint64(verdict.length)
	default:
		c.endBody()
	}
}

// findHeadEnd returns the length of the head up to and including its
// empty line, or -1 when the empty line has not arrived. It resumes where
// the previous call stopped.
func (c *guardConn) findHeadEnd(unit []byte) int {
	for {
		i := bytes.IndexByte(unit[c.scanned:], '\n')
		if i < 0 {
			c.scanned = len(unit)
			return -1
		}
		end := c.scanned + i + 1
		line := unit[c.lineStart:end]
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return end
		}
		c.lineStart, c.scanned = end, end
		c.lines++
	}
}

// checkIncompleteHead applies the size limits before a head is complete,
// so that a long line is rejected without waiting for the rest of it. A
// malformed request line is rejected as soon as it ends, not after the
// header timeout.
func (c *guardConn) checkIncompleteHead(unit []byte) *rejection {
	limits := &c.settings.limits
	if c.lines > 0 && !c.lineSeen {
		if _, _, verdict := checkFirstLine(unit, limits, c.settings.connectAllowed.Load()); verdict.rejection != nil {
			return verdict.rejection
		}
		c.lineSeen = true
	}
	lineBytes := len(unit) - c.lineStart - 1 // one byte may be the line's CR
	switch {
	case len(unit) > limits.maxHeadBytes:
		return &rejection{http.StatusRequestHeaderFieldsTooLarge, headTooLarge(limits)}
	case c.lines == 0 && lineBytes > limits.maxRequestLineBytes:
		return &rejection{http.StatusRequestURITooLong, fmt.Sprintf("request line exceeds %d bytes", limits.maxRequestLineBytes)}
	case c.lines > 0 && lineBytes > limits.maxFieldBytes:
		name, _, _ := bytes.Cut(unit[c.lineStart:], []byte{':'})
		return &rejection{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("header field %q exceeds %d bytes", truncate(name, 64), limits.maxFieldBytes)}
	case c.lines-1 > limits.maxFields:
		return &rejection{http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("more than %d header fields", limits.maxFields)}
	}
	return nil
}

func headTooLarge(limits *headLimits) string {
	return fmt.Sprintf("request head exceeds %d bytes", limits.maxHeadBytes)
}

func (c *guardConn) rejectHead(r *rejection) {
	c.rejection.Store(r)
	c.state = stateEnd
	c.restoreDeadline()
}

// endBody ends the current request's framing.
func (c *guardConn) endBody() {
	if c.last {
		c.state = stateEnd
		return
	}
	c.state = stateHead
}

// shortenDeadline bounds the time to receive the rest of an incomplete head
// by the header timeout. net/http sets that deadline only once a read
// returns bytes of the head, which here happens when the head is complete.
func (c *guardConn) shortenDeadline() {
	if c.headDeadlineSet {
		return
	}
	c.headDeadlineSet = true
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.headDeadline = unixNano(time.Now().Add(c.settings.headerTimeout))
}

func (c *guardConn) restoreDeadline() {
	if !c.headDeadlineSet {
		return
	}
	c.headDeadlineSet = false
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.headDeadline = 0
}

// cutReadDeadline is the deadline net/http sets to end a read at once
// (its aLongTimeAgo): a read that fails under it was cut short on purpose,
// whether the deadline reached the socket before the read started or during
// it.
var cutReadDeadline = unixNano(time.Unix(1, 0))

// unixNano returns t in Unix nanoseconds, 0 for the zero time (no
// deadline). Any other time before 1970 becomes 1, a deadline that has
// passed, and times past the year 2262 become the latest representable.
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(earliestDeadline):
		return 1
	case t.After(latestDeadline):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var earliestDeadline, latestDeadline = time.Unix(0, 1), time.Unix(0, math.MaxInt64)

// timeOfUnixNano is the inverse of unixNano.
func timeOfUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// readConn reads the socket under the current read deadline.
func (c *guardConn) readConn(p []byte) (int, error) {
	c.reading.Store(true)
	if c.readTarget() != c.applied.Load() {
		c.deadlineMu.Lock()
		c.applyDeadline()
		c.deadlineMu.Unlock()
	}
	n, err := c.Conn.Read(p)
	c.reading.Store(false)
	return n, err
}

// readTarget returns the earlier of net/http's deadline and the head's.
func (c *guardConn) readTarget() int64 {
	t := c.readDeadline.Load()
	if c.headDeadline != 0 && (t == 0 || c.headDeadline < t) {
		t = c.headDeadline
	}
	return t
}

// applyDeadline puts the read deadline on the socket, unless it is there
// already. deadlineMu must be held.
func (c *guardConn) applyDeadline() error {
	t := c.readTarget()
	if t == c.applied.Load() {
		return nil
	}
	c.applied.Store(t)
	c.cut.Store(t == cutReadDeadline)
	return c.Conn.SetReadDeadline(timeOfUnixNano(t))
}

// SetReadDeadline sets the deadline of the read in progress, or of the
// next one.
func (c *guardConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.Store(unixNano(t))
	if !c.reading.Load() {
		return nil
	}
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	return c.applyDeadline()
}

func (c *guardConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// writeSlackDivisor sets the slack of write deadlines: the write timeout
// divided by it. A write may time out that much early, which is well within
// the approximation of Call.extendWriteDeadline: it lets half of the
// timeout pass before it moves the deadline.
const writeSlackDivisor = 64

// SetWriteDeadline sets the deadline of the writes in progress, or of the
// next one.
func (c *guardConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(unixNano(t))
	if c.writing.Load() == 0 {
		return nil
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.applyWriteDeadline()
}

// writeDeadlineDue reports whether net/http's write deadline must replace
// the socket's, which it need not when it is later by at most the slack.
func (c *guardConn) writeDeadlineDue() bool {
	t, applied := c.writeDeadline.Load(), c.writeApplied.Load()
	if t == applied {
		return false
	}
	slack := int64(c.settings.writeTimeout / writeSlackDivisor)
	return applied == 0 || t == 0 || t < applied || t-applied > slack
}

// applyWriteDeadline puts net/http's write deadline on the socket when it
// is due. writeMu must be held.
func (c *guardConn) applyWriteDeadline() error {
	if !c.writeDeadlineDue() {
		return nil
	}
	t := c.writeDeadline.Load()
	c.writeApplied.Store(t)
	return c.Conn.SetWriteDeadline(timeOfUnixNano(t))
}

// beginWrite puts the write deadline on the socket before a write;
// endWrite follows the write.
func (c *guardConn) beginWrite() {
	c.writing.Add(1)
	if c.writeDeadlineDue() {
		c.writeMu.Lock()
		_ = c.applyWriteDeadline()
		c.writeMu.Unlock()
	}
}

func (c *guardConn) endWrite() {
	c.writing.Add(-1)
}

func (c *guardConn) Write(p []byte) (int, error) {
	c.beginWrite()
	defer c.endWrite()
	return c.Conn.Write(p)
}

// ReadFrom lets net/http copy a file with sendfile(2), or a socket with
// splice(2), as on a bare TCP connection: net/http looks for this method on
// the connection. It only writes, which the guard leaves unchecked.
func (c *guardConn) ReadFrom(r io.Reader) (int64, error) {
	c.beginWrite()
	defer c.endWrite()
	if from, ok := c.Conn.(io.ReaderFrom); ok {
		return from.ReadFrom(r)
	}
	// A Unix socket has no such method: a plain copy, which must not
	// come back here.
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite keeps net/http's own error responses unchanged: it half-closes
// TCP connections before closing them.
func (c *guardConn) CloseWrite() error {
	if closer, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return closer.CloseWrite()
	}
	return nil
}

// Close sends a pending rejection, then closes the connection. A second,
// concurrent Close (from Server.Close) closes at once.
func (c *guardConn) Close() error {
	if !c.closing.Swap(true) && c.rejectionDue.Load() {
		c.sendRejection(c.rejection.Load())
	}
	return c.Conn.Close()
}

func (c *guardConn) sendRejection(r *rejection) {
	if logf := c.settings.logf; logf != nil {
		logf("rejected a request from %s: %d %s: %s", c.RemoteAddr(), r.status, http.StatusText(r.status), r.reason)
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.settings.writeTimeout))
	if _, err := c.Conn.Write(r.response()); err != nil {
		return
	}
	_ = c.CloseWrite()
	_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
}
