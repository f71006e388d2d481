package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testEvent is a decoded event of a drained buffer.
type testEvent struct {
	kind   uint32
	status int32
	call   uint64
	data   []byte
	extra  []byte
}

func decodeEvents(t *testing.T, b []byte) []testEvent {
	t.Helper()
	var events []testEvent
	for len(b) > 0 {
		if len(b) < eventHeaderSize {
			t.Fatalf("truncated event header: %d bytes", len(b))
		}
		e := testEvent{
			kind:   binary.NativeEndian.Uint32(b),
			status: int32(binary.NativeEndian.Uint32(b[4:])),
			call:   binary.NativeEndian.Uint64(b[8:]),
		}
		dataLen := int(binary.NativeEndian.Uint32(b[16:]))
		extraLen := int(binary.NativeEndian.Uint32(b[20:]))
		b = b[eventHeaderSize:]
		e.data, e.extra, b = b[:dataLen], b[dataLen:dataLen+extraLen], b[dataLen+extraLen:]
		events = append(events, e)
	}
	return events
}

// queueServer is a server in queue mode whose event loop is the test.
type queueServer struct {
	t      *testing.T
	server *Server
	queue  *Queue
	url    string
	wakeR  int
	events []testEvent
}

func newQueueServer(t *testing.T) *queueServer {
	t.Helper()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	server, err := NewServer(Config{ReadTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(server, fds[1])
	address, err := server.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &queueServer{t: t, server: server, queue: q, url: "http://" + address, wakeR: fds[0]}
	t.Cleanup(func() {
		q.Close()
		server.Release()
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	})
	return s
}

// next waits for the wake-up pipe when no event is buffered, then returns
// the oldest event.
func (s *queueServer) next() testEvent {
	s.t.Helper()
	for len(s.events) == 0 {
		var wake [8]byte
		if _, err := syscall.Read(s.wakeR, wake[:]); err != nil {
			s.t.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		used, _ := s.queue.Drain(buf)
		s.events = append(s.events, decodeEvents(s.t, buf[:used])...)
	}
	e := s.events[0]
	s.events = s.events[1:]
	return e
}

// nextWithin is next, but fails the test when no event comes within
// timeout.
func (s *queueServer) nextWithin(timeout time.Duration) testEvent {
	s.t.Helper()
	if len(s.events) > 0 {
		return s.next()
	}
	deadline := time.Now().Add(timeout)
	for {
		var readable syscall.FdSet
		readable.Bits[s.wakeR/64] |= 1 << (uint(s.wakeR) % 64)
		wait := syscall.NsecToTimeval(time.Until(deadline).Nanoseconds())
		n, err := syscall.Select(s.wakeR+1, &readable, nil, nil, &wait)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			s.t.Fatal(err)
		case n == 0:
			s.t.Fatalf("no event within %v", timeout)
		}
		return s.next()
	}
}

func (s *queueServer) submit(call uint64, op asyncOp) {
	s.t.Helper()
	if err := asyncCalls.get(call).Submit(op); err != nil {
		s.t.Fatal(err)
	}
}

type clientResult struct {
	response *http.Response
	body     []byte
	err      error
}

func request(method, url string, body io.Reader) chan clientResult {
	results := make(chan clientResult, 1)
	go func() {
		req, _ := http.NewRequest(method, url, body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			results <- clientResult{err: err}
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		results <- clientResult{response: resp, body: data, err: err}
	}()
	return results
}

func finishOp(status int, body string) asyncOp {
	header := binary.NativeEndian.AppendUint32(nil, 1)
	header = appendString(header, "Content-Type")
	header = appendString(header, "text/plain")
	return asyncOp{kind: opWrite, status: status, header: header, body: []byte(body), flags: writeFinish}
}

func TestQueueRequestEvent(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		body         string
		wantComplete int32
		wantExtra    string
	}{
		{"get without body", "GET", "", 1, ""},
		{"post with small body", "POST", "hello", 1, "hello"},
		{"post with large body", "POST", strings.Repeat("x", prefetchLimit+1), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newQueueServer(t)
			results := request(tt.method, s.url+"/path?q=1", strings.NewReader(tt.body))
			e := s.next()
			if e.kind != eventRequest {
				t.Fatalf("kind = %d, want %d", e.kind, eventRequest)
			}
			if e.status != tt.wantComplete {
				t.Errorf("status = %d, want %d", e.status, tt.wantComplete)
			}
			if string(e.extra) != tt.wantExtra {
				t.Errorf("extra = %q, want %q", e.extra, tt.wantExtra)
			}
			if !bytes.Contains(e.data, []byte("/path?q=1")) {
				t.Errorf("encoded request %q lacks the target", e.data)
			}
			s.submit(e.call, finishOp(201, "done"))
			result := <-results
			if result.err != nil {
				t.Fatal(result.err)
			}
			if result.response.StatusCode != 201 || string(result.body) != "done" {
				t.Errorf("response = %d %q, want 201 \"done\"", result.response.StatusCode, result.body)
			}
		})
	}
}

func TestQueueBodyRead(t *testing.T) {
	s := newQueueServer(t)
	body := strings.Repeat("y", prefetchLimit*2)
	results := request("POST", s.url+"/", strings.NewReader(body))
	e := s.next()
	var got []byte
	for {
		if err := asyncCalls.get(e.call).StartRead(32 << 10); err != nil {
			t.Fatal(err)
		}
		chunk := s.next()
		if chunk.kind != eventBody {
			t.Fatalf("kind = %d, want %d", chunk.kind, eventBody)
		}
		got = append(got, chunk.data...)
		if chunk.status == 8 {
			break
		}
		if chunk.status != 0 {
			t.Fatalf("body status = %d (%s)", chunk.status, chunk.extra)
		}
	}
	if string(got) != body {
		t.Errorf("read %d bytes, want %d", len(got), len(body))
	}
	s.submit(e.call, finishOp(200, "ok"))
	if result := <-results; result.err != nil {
		t.Fatal(result.err)
	}
}

func TestQueueBodyEndsWithLastBytes(t *testing.T) {
	// A read that reaches the end of a chunked body reports the last bytes
	// and the end in one event.
	s := newQueueServer(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	request := "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	e := s.next()
	if err := asyncCalls.get(e.call).StartRead(1024); err != nil {
		t.Fatal(err)
	}
	if chunk := s.next(); chunk.kind != eventBody || chunk.status != 8 || string(chunk.data) != "hello" {
		t.Fatalf("event = kind %d, status %d, data %q; want kind %d, status 8, data \"hello\"",
			chunk.kind, chunk.status, chunk.data, eventBody)
	}
	s.submit(e.call, finishOp(200, "ok"))
}

func TestQueueSendFileRejectsFIFO(t *testing.T) {
	// Opening a FIFO waits for a writer, so sendFile rejects it before the open.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	s := newQueueServer(t)
	t.Cleanup(func() {
		// Releases an open that waits, so that a failed test ends.
		if writer, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			writer.Close()
		}
	})
	results := request("GET", s.url+"/", nil)
	e := s.next()
	s.submit(e.call, asyncOp{kind: opSendFile, status: 200, path: fifo})
	select {
	case result := <-results:
		if result.err != nil {
			t.Fatal(result.err)
		}
		if result.response.StatusCode != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", result.response.StatusCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no response within 10 s: the open of the FIFO blocks")
	}
}

func TestQueueStreamedWrites(t *testing.T) {
	s := newQueueServer(t)
	results := request("GET", s.url+"/", nil)
	e := s.next()
	s.submit(e.call, asyncOp{kind: opWrite, status: 200, body: []byte("one,"), flags: writeFlush})
	if written := s.next(); written.kind != eventWritten || written.status != 0 {
		t.Fatalf("event = kind %d status %d, want a successful write", written.kind, written.status)
	}
	s.submit(e.call, asyncOp{kind: opWrite, body: []byte("two"), flags: writeFinish})
	result := <-results
	if result.err != nil {
		t.Fatal(result.err)
	}
	if string(result.body) != "one,two" {
		t.Errorf("body = %q, want %q", result.body, "one,two")
	}
}

func TestQueueAbortClosesConnection(t *testing.T) {
	s := newQueueServer(t)
	results := request("GET", s.url+"/", nil)
	e := s.next()
	s.submit(e.call, asyncOp{kind: opWrite, status: 200, body: []byte("partial"), flags: writeFlush})
	s.next()
	s.submit(e.call, asyncOp{kind: opAbort})
	if result := <-results; result.err == nil {
		t.Error("client read a complete response, want an error")
	}
	// Operations still queued will not run: the event loop hears that the
	// response is over, which releases a send waiting for its written event.
	if event := s.nextWithin(10 * time.Second); event.kind != eventDisconnect || event.call != e.call {
		t.Errorf("event = kind %d call %d, want a disconnect of call %d", event.kind, event.call, e.call)
	}
}

func TestQueueDisconnectEvent(t *testing.T) {
	s := newQueueServer(t)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	go client.Get(s.url + "/")
	e := s.next()
	if got := s.next(); got.kind != eventDisconnect || got.call != e.call {
		t.Fatalf("event = kind %d call %d, want a disconnect of call %d", got.kind, got.call, e.call)
	}
	s.submit(e.call, asyncOp{kind: opAbort})
}

func TestQueueDrainNeeded(t *testing.T) {
	q := &Queue{wakeFD: -1, closed: make(chan struct{})}
	q.pending = append(q.pending, queueEvent{kind: eventBody, call: 7, data: []byte("0123456789")})
	used, needed := q.Drain(make([]byte, 8))
	if used != 0 || needed != eventHeaderSize+10 {
		t.Fatalf("Drain = %d, %d; want 0, %d", used, needed, eventHeaderSize+10)
	}
	buf := make([]byte, needed)
	used, needed = q.Drain(buf)
	if used != eventHeaderSize+10 || needed != 0 {
		t.Fatalf("Drain = %d, %d; want %d, 0", used, needed, eventHeaderSize+10)
	}
	if events := decodeEvents(t, buf[:used]); events[0].call != 7 || string(events[0].data) != "0123456789" {
		t.Errorf("event = %+v", events[0])
	}
}

func TestQueueSubmitAfterFinish(t *testing.T) {
	s := newQueueServer(t)
	results := request("GET", s.url+"/", nil)
	e := s.next()
	call := asyncCalls.get(e.call)
	s.submit(e.call, finishOp(200, "ok"))
	<-results
	for asyncCalls.get(e.call) != nil {
		time.Sleep(time.Millisecond)
	}
	if err := call.Submit(asyncOp{kind: opAbort}); err != errFinished {
		t.Errorf("Submit after finish = %v, want %v", err, errFinished)
	}
}

// appendBatchOp encodes op as one operation of a batch (layout in gobind.h).
func appendBatchOp(batch []byte, call uint64, op asyncOp) []byte {
	batch = binary.NativeEndian.AppendUint64(batch, call)
	batch = binary.NativeEndian.AppendUint32(batch, 1) // GOBIND_OP_WRITE
	batch = binary.NativeEndian.AppendUint32(batch, uint32(op.status))
	batch = binary.NativeEndian.AppendUint32(batch, uint32(op.flags))
	batch = binary.NativeEndian.AppendUint32(batch, uint32(len(op.header)))
	batch = binary.NativeEndian.AppendUint32(batch, uint32(len(op.body)))
	batch = append(batch, op.header...)
	return append(batch, op.body...)
}

func TestQueueBatchBufferReused(t *testing.T) {
	s := newQueueServer(t)
	for round := range 3 {
		results := []chan clientResult{request("GET", s.url+"/", nil), request("GET", s.url+"/", nil)}
		var batch []byte
		want := map[string]bool{}
		for range results {
			call := s.next().call
			body := fmt.Sprintf("round %d, call %d", round, call)
			want[body] = true
			batch = appendBatchOp(batch, call, finishOp(200, body))
		}
		buffer := newBatchBuffer(batch)
		if err := submitBatch(buffer); err != nil {
			t.Fatal(err)
		}
		for _, result := range results {
			r := <-result
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !want[string(r.body)] {
				t.Errorf("round %d: body = %q, want one of %v", round, r.body, want)
			}
			delete(want, string(r.body))
		}
		// Each call releases its operation before its handler returns,
		// which is before its client has the whole response.
		if users := buffer.users.Load(); users != 0 {
			t.Errorf("round %d: buffer has %d users after both responses, want 0", round, users)
		}
	}
}

func TestQueueBodyLimit(t *testing.T) {
	s := newQueueServer(t)
	s.queue.SetMaxBodyBytes(10)

	// A declared length above the limit never reaches the event loop.
	result := <-request("POST", s.url+"/", strings.NewReader("0123456789a"))
	if result.err != nil {
		t.Fatal(result.err)
	}
	if result.response.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", result.response.StatusCode)
	}
	if got := string(result.body); got != "request body exceeds the limit of 10 bytes\n" {
		t.Errorf("body = %q", got)
	}

	// A chunked body passes the limit while the event loop reads it.
	reader, writer := io.Pipe()
	results := request("POST", s.url+"/", reader)
	go func() {
		writer.Write([]byte("0123456789"))
		writer.Write([]byte("a"))
		writer.Close()
	}()
	e := s.next()
	if e.kind != eventRequest {
		t.Fatalf("kind = %d, want %d", e.kind, eventRequest)
	}
	for {
		if err := asyncCalls.get(e.call).StartRead(32 << 10); err != nil {
			break // the rejection finished the call
		}
		if chunk := s.next(); chunk.kind != eventBody || chunk.status != 0 {
			break
		}
	}
	result = <-results
	if result.err != nil {
		t.Fatal(result.err)
	}
	if result.response.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: status = %d, want 413", result.response.StatusCode)
	}
}
