package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testLimits = headLimits{maxHeadBytes: 4096, maxRequestLineBytes: 100, maxFieldBytes: 100, maxFields: 5}

func TestCheckHead(t *testing.T) {
	tests := []struct {
		name    string
		head    string
		connect bool
		status  int // 0: accepted
		framing framing
		length  int64
	}{
		{name: "get", head: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "http10", head: "GET / HTTP/1.0\r\n\r\n"},
		{name: "content length", head: "POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", framing: framingLength, length: 12},
		{name: "content length spaces", head: "POST / HTTP/1.1\r\nContent-Length:  5 \t\r\n\r\n", framing: framingLength, length: 5},
		{name: "chunked", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", framing: framingChunked},
		{name: "chunked upper case", head: "POST / HTTP/1.1\r\ntransfer-encoding: CHUNKED\r\n\r\n", framing: framingChunked},
		{name: "absolute form", head: "GET http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n"},
		{name: "options asterisk", head: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"},
		{name: "connect registered", head: "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n", connect: true},
		{name: "connect ipv6", head: "CONNECT [::1]:443 HTTP/1.1\r\n\r\n", connect: true},
		{name: "http11 minor", head: "GET / HTTP/1.2\r\n\r\n"},
		{name: "obs-text value", head: "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n"},

		{name: "length and chunked", head: "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "chunked and length", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n", status: 400},
		{name: "http10 chunked", head: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "http10 identity", head: "POST / HTTP/1.0\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\n", status: 400},
		{name: "chunked twice", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400},
		{name: "chunked two fields", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "chunked not final", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400},
		{name: "gzip chunked", head: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501},
		{name: "unknown coding", head: "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", status: 400},
		{name: "empty coding", head: "POST / HTTP/1.1\r\nTransfer-Encoding: ,chunked\r\n\r\n", status: 400},
		{name: "two lengths", head: "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", status: 400},
		{name: "length list", head: "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", status: 400},
		{name: "length plus sign", head: "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", status: 400},
		{name: "length negative", head: "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", status: 400},
		{name: "length empty", head: "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", status: 400},
		{name: "length huge", head: "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400},
		{name: "space before colon", head: "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", status: 400},
		{name: "obs fold", head: "POST / HTTP/1.1\r\nX: a\r\n Transfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "bare LF field", head: "POST / HTTP/1.1\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
		{name: "bare LF request line", head: "GET / HTTP/1.1\n\r\n", status: 400},
		{name: "bare CR value", head: "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", status: 400},
		{name: "CR before CRLF", head: "GET / HTTP/1.1\r\r\n\r\n", status: 400},
		{name: "CR ending field", head: "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", status: 400},
		{name: "NUL value", head: "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", status: 400},
		{name: "no colon", head: "GET / HTTP/1.1\r\nX\r\n\r\n", status: 400},
		{name: "empty name", head: "GET / HTTP/1.1\r\n: a\r\n\r\n", status: 400},
		{name: "empty request line", head: "\n", status: 400},
		{name: "double space", head: "GET  / HTTP/1.1\r\n\r\n", status: 400},
		{name: "no version", head: "GET /\r\n\r\n", status: 400},
		{name: "bad version", head: "GET / HTTX/1.1\r\n\r\n", status: 400},
		{name: "http2 version", head: "GET / HTTP/2.0\r\n\r\n", status: 505},
		{name: "bad method", head: "G(T / HTTP/1.1\r\n\r\n", status: 400},
		{name: "target control byte", head: "GET /\x01 HTTP/1.1\r\n\r\n", status: 400},
		{name: "delete asterisk", head: "DELETE * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
		{name: "get asterisk", head: "GET * HTTP/1.1\r\n\r\n", status: 400},
		{name: "get authority", head: "GET a.test:80 HTTP/1.1\r\n\r\n", status: 400},
		{name: "relative target", head: "GET a/b HTTP/1.1\r\n\r\n", status: 400},
		{name: "query only", head: "GET ?a HTTP/1.1\r\n\r\n", status: 400},
		{name: "connect unregistered", head: "CONNECT a.test:443 HTTP/1.1\r\n\r\n", status: 501},
		{name: "connect path", head: "CONNECT /a HTTP/1.1\r\n\r\n", connect: true, status: 400},
		{name: "connect userinfo", head: "CONNECT u@a.test:443 HTTP/1.1\r\n\r\n", connect: true, status: 400},
		{name: "connect no port", head: "CONNECT a.test HTTP/1.1\r\n\r\n", connect: true, status: 400},
		{name: "long request line", head: "GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\n\r\n", status: 414},
		{name: "long field", head: "GET / HTTP/1.1\r\nCookie: " + strings.Repeat("a", 100) + "\r\n\r\n", status: 431},
		{name: "many fields", head: "GET / HTTP/1.1\r\n" + strings.Repeat("X: a\r\n", 6) + "\r\n", status: 431},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			verdict := checkHead([]byte(test.head), &testLimits, test.connect)
			status := 0
			if verdict.rejection != nil {
				status = verdict.rejection.status
			}
			if status != test.status {
				t.Fatalf("status = %d (%v), want %d", status, verdict.rejection, test.status)
			}
			if verdict.framing != test.framing {
				t.Errorf("framing = %d, want %d", verdict.framing, test.framing)
			}
			if verdict.length != test.length {
				t.Errorf("length = %d, want %d", verdict.length, test.length)
			}
		})
	}
}

func TestCheckRequestLineReason(t *testing.T) {
	const malformed = "malformed request line: expected method, target and version separated by single spaces"
	tests := []struct {
		line, reason string
	}{
		{"GET /o k HTTP/1.1", malformed},
		{"GET  /ok HTTP/1.1", malformed},
		{"GET /ok  HTTP/1.1", malformed},
		{"GET /ok", malformed},
		{"GET /ok HTTP/1.1 ", malformed},
		{"GET /ok HTTQ/1.1", "invalid HTTP version"},
		{"G@T /ok HTTP/1.1", "invalid method"},
	}
	for _, tt := range tests {
		_, verdict := checkRequestLine([]byte(tt.line), false)
		if verdict.rejection == nil {
			t.Errorf("%q accepted", tt.line)
			continue
		}
		if verdict.rejection.reason != tt.reason {
			t.Errorf("%q: reason %q, want %q", tt.line, verdict.rejection.reason, tt.reason)
		}
	}
}

func TestParseChunkLine(t *testing.T) {
	tests := []struct {
		line string
		size uint64
		ok   bool
	}{
		{"0", 0, true},
		{"1a", 26, true},
		{"FF;name=value", 255, true},
		{"10;a;b=\"c d\"", 16, true},
		{"", 0, false},
		{";a", 0, false},
		{"5 ", 0, false},
		{"-5", 0, false},
		{"0x5", 0, false},
		{"5;a\x00", 0, false},
		{strings.Repeat("f", 16), 0, false},
	}
	for _, test := range tests {
		size, ok := parseChunkLine([]byte(test.line))
		if ok != test.ok || size != test.size {
			t.Errorf("parseChunkLine(%q) = %d, %v; want %d, %v", test.line, size, ok, test.size, test.ok)
		}
	}
}

// guardedServer serves handler through guard connections on a loopback
// port and returns the address and the paths the handler received.
func guardedServer(t *testing.T, connect bool, handler http.HandlerFunc) (string, func() []string) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	config := Config{ReadHeaderTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}
	config.applyDefaults()
	settings := newGuardSettings(&config)
	settings.limits = testLimits
	settings.connectAllowed.Store(connect)
	var mu sync.Mutex
	var seen []string
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.RequestURI)
			mu.Unlock()
			handler(w, r)
		}),
		ConnState: trackGuard,
	}
	go server.Serve(settings.guard(listener))
	t.Cleanup(func() { server.Close() })
	return listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func echoBody(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Write(body)
}

// rawExchange sends raw on a new connection and returns everything the
// server sends until it closes the connection or a second passes.
func rawExchange(t *testing.T, address, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	received, _ := io.ReadAll(conn)
	return string(received)
}

// statusLines returns the status lines of the responses in received.
func statusLines(received string) []string {
	var lines []string
	reader := bufio.NewReader(strings.NewReader(received))
	for {
		response, err := http.ReadResponse(reader, nil)
		if err != nil {
			return lines
		}
		io.Copy(io.Discard, response.Body)
		lines = append(lines, response.Status)
	}
}

func TestGuardConn(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		statuses []string
		seen     []string
	}{
		{
			name:     "keep-alive pair",
			raw:      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			statuses: []string{"200 OK", "200 OK"},
			seen:     []string{"/a", "/b"},
		},
		{
			name:     "length body then request",
			raw:      "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			statuses: []string{"200 OK", "200 OK"},
			seen:     []string{"/a", "/b"},
		},
		{
			name:     "chunked body then request",
			raw:      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			statuses: []string{"200 OK", "200 OK"},
			seen:     []string{"/a", "/b"},
		},
		{
			name:     "leading empty lines",
			raw:      "\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			statuses: []string{"200 OK"},
			seen:     []string{"/a"},
		},
		{
			name:     "smuggled after length and chunked",
			raw:      "POST /submit HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n",
			statuses: []string{"400 Bad Request"},
		},
		{
			name:     "rejected after served",
			raw:      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nDELETE * HTTP/1.1\r\nHost: x\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n",
			statuses: []string{"200 OK", "400 Bad Request"},
			seen:     []string{"/a"},
		},
		{
			name:     "bad chunk line",
			raw:      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 ;x\r\nhello\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n",
			statuses: []string{"400 Bad Request"},
			seen:     []string{"/a"},
		},
		{
			name:     "chunk data overrun",
			raw:      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n",
			statuses: []string{"400 Bad Request"},
			seen:     []string{"/a"},
		},
		{
			name:     "bare LF request line, head incomplete",
			raw:      "\x00\x01\n",
			statuses: []string{"400 Bad Request"},
		},
		{
			name:     "unsupported version, head incomplete",
			raw:      "GET /hidden HTTP/2.0\r\nHost: x\r\n",
			statuses: []string{"505 HTTP Version Not Supported"},
		},
		{
			name:     "connect is last",
			raw:      "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n",
			statuses: []string{"200 OK"},
			seen:     []string{"a.test:443"},
		},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			address, seen := guardedServer(t, true, echoBody)
			statuses := statusLines(rawExchange(t, address, test.raw))
			if strings.Join(statuses, "|") != strings.Join(test.statuses, "|") {
				t.Errorf("statuses = %q, want %q", statuses, test.statuses)
			}
			if got := seen(); strings.Join(got, "|") != strings.Join(test.seen, "|") {
				t.Errorf("handler saw %q, want %q", got, test.seen)
			}
		})
	}
}

func TestGuardConnTrickledHead(t *testing.T) {
	address, seen := guardedServer(t, false, echoBody)
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" {
		io.WriteString(conn, string(c))
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	received, _ := io.ReadAll(conn)
	if got := statusLines(string(received)); len(got) != 1 || got[0] != "200 OK" {
		t.Errorf("statuses = %q, want [200 OK]", got)
	}
	if got := seen(); len(got) != 1 || got[0] != "/slow" {
		t.Errorf("handler saw %q, want [/slow]", got)
	}
}

// BenchmarkVetHead measures the checks that each request of a keep-alive
// hello-world load adds: one head like wrk's, checked in place.
func BenchmarkVetHead(b *testing.B) {
	config := Config{}
	config.applyDefaults()
	conn := &guardConn{settings: newGuardSettings(&config)}
	head := []byte("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n")
	data := make([]byte, len(head))
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		copy(data, head)
		if out, _ := conn.vet(data); out != len(head) {
			b.Fatalf("vet accepted %d bytes, want %d", out, len(head))
		}
	}
}

// BenchmarkCheckHead measures the full check of the same head, which every
// head that scanHead does not accept goes through.
func BenchmarkCheckHead(b *testing.B) {
	config := Config{}
	config.applyDefaults()
	settings := newGuardSettings(&config)
	head := []byte("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n")
	b.SetBytes(int64(len(head)))
	for b.Loop() {
		conn := guardConn{settings: settings}
		end := conn.findHeadEnd(head)
		if verdict := checkHead(head[:end], &settings.limits, false); verdict.rejection != nil {
			b.Fatal(verdict.rejection.reason)
		}
	}
}

func TestGuardConnPartialHeadDuringHandler(t *testing.T) {
	canceled := make(chan bool, 1)
	address, _ := guardedServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		// Outlast the header timeout while the next head is incomplete.
		time.Sleep(3 * time.Second)
		canceled <- r.Context().Err() != nil
	})
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n")
	if <-canceled {
		t.Error("request context was canceled by the partial next head")
	}
}

func TestGuardConnIncompleteHeadTimeout(t *testing.T) {
	address, seen := guardedServer(t, false, echoBody)
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has no idle timeout, so only the header timeout (2 s)
	// can end the wait for the rest of the second head.
	io.WriteString(conn, "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	received, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection not closed: %v", err)
	}
	if got := statusLines(string(received)); len(got) != 1 || got[0] != "200 OK" {
		t.Errorf("statuses = %q, want [200 OK]", got)
	}
	if got := seen(); len(got) != 1 || got[0] != "/a" {
		t.Errorf("handler saw %q, want [/a]", got)
	}
}

// A client that waits for each response before it sends the next request
// makes the guard allocate no buffer of its own: every read, net/http's
// one-byte background read included, lands in net/http's buffer.
func TestGuardConnSequentialRequestsAllocateNoBuffer(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	config := Config{}
	config.applyDefaults()
	closed := make(chan *guardConn, 1)
	server := &http.Server{
		Handler: http.HandlerFunc(echoBody),
		ConnState: func(conn net.Conn, state http.ConnState) {
			trackGuard(conn, state)
			if state == http.StateClosed {
				closed <- conn.(*guardConn)
			}
		},
	}
	go server.Serve(newGuardSettings(&config).guard(listener))
	t.Cleanup(func() { server.Close() })

	conn, err := net.Dial("tcp", listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(conn)
	for _, request := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		// net/http flushes a response before it ends its one-byte
		// background read. A request sent in between would land in that
		// read, and so in the guard's buffer.
		time.Sleep(100 * time.Millisecond)
		io.WriteString(conn, request)
		response, err := http.ReadResponse(reader, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, response.Body)
		if response.StatusCode != http.StatusOK {
			t.Fatalf("status %d for %q", response.StatusCode, request)
		}
	}
	conn.Close()
	select {
	case guard := <-closed:
		if cap(guard.buf) != 0 {
			t.Errorf("guard buffer capacity = %d, want 0", cap(guard.buf))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not close the connection")
	}
}

// readFromListener hands out connections that record whether net/http
// copied a response body through their ReadFrom, the method where
// sendfile(2) happens.
type readFromListener struct {
	net.Listener
	used *atomic.Bool
}

type readFromConn struct {
	*net.TCPConn
	used *atomic.Bool
}

func (l readFromListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return readFromConn{conn.(*net.TCPConn), l.used}, nil
}

func (c readFromConn) ReadFrom(r io.Reader) (int64, error) {
	c.used.Store(true)
	return c.TCPConn.ReadFrom(r)
}

func TestGuardConnSendsFilesThroughReadFrom(t *testing.T) {
	content := bytes.Repeat([]byte("0123456789abcdef"), 8<<10)
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	config := Config{}
	config.applyDefaults()
	server := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			file, err := os.Open(path)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer file.Close()
			w.Header().Set("Content-Length", strconv.Itoa(len(content)))
			io.Copy(w, file)
		}),
		ConnState: trackGuard,
	}
	var used atomic.Bool
	go server.Serve(newGuardSettings(&config).guard(readFromListener{listener, &used}))
	t.Cleanup(func() { server.Close() })

	response, err := http.Get("http://" + listener.Addr().String() + "/file")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(response.Body)
	response.Body.Close()
	if err != nil || !bytes.Equal(body, content) {
		t.Fatalf("received %d bytes (%v), want the file's %d", len(body), err, len(content))
	}
	if !used.Load() {
		t.Error("the file was not copied through the connection's ReadFrom, so sendfile(2) was not used")
	}
}

// BenchmarkServerRoundTrip measures keep-alive round trips of a hello-world
// request over loopback, with and without the connection checks.
func BenchmarkServerRoundTrip(b *testing.B) {
	for _, guarded := range []bool{false, true} {
		name := "plain"
		if guarded {
			name = "guarded"
		}
		b.Run(name, func(b *testing.B) {
			listener, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte("Hello, world"))
			})}
			if guarded {
				config := Config{}
				config.applyDefaults()
				listener = newGuardSettings(&config).guard(listener)
				server.ConnState = trackGuard
			}
			go server.Serve(listener)
			defer server.Close()

			conn, err := net.Dial("tcp", listener.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			request := []byte("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n")
			reader := bufio.NewReader(conn)
			for b.Loop() {
				if _, err := conn.Write(request); err != nil {
					b.Fatal(err)
				}
				response, err := http.ReadResponse(reader, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, response.Body)
			}
		})
	}
}

// FuzzScanHead checks that the fast path agrees with checkHead: whatever
// scanHead accepts, findHeadEnd and checkHead accept with the same verdict.
func FuzzScanHead(f *testing.F) {
	for _, seed := range []string{
		"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /a HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
		"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: x\r\nX: a\tb \r\n\r\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\n X: folded\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	limits := &headLimits{maxHeadBytes: 256, maxRequestLineBytes: 64, maxFieldBytes: 48, maxFields: 6}
	f.Fuzz(func(t *testing.T, data []byte, connectAllowed bool) {
		n, verdict, ok := scanHead(data, limits, connectAllowed)
		if !ok {
			return
		}
		conn := &guardConn{}
		if end := conn.findHeadEnd(data); end != n {
			t.Fatalf("scanHead length %d, findHeadEnd %d", n, end)
		}
		if n > limits.maxHeadBytes {
			t.Fatalf("scanHead accepted %d bytes, over the limit", n)
		}
		want := checkHead(data[:n], limits, connectAllowed)
		if want.rejection != nil || want != verdict {
			t.Fatalf("scanHead verdict %+v, checkHead %+v (rejection %v)", verdict, want, want.rejection)
		}
	})
}

// deadlineCounter counts the read deadlines that reach a connection.
type deadlineCounter struct {
	net.Conn
	set, writeSet atomic.Int32
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.set.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineCounter) SetWriteDeadline(t time.Time) error {
	c.writeSet.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

func TestGuardConnHoldsDeadlinesUntilRead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	counter := &deadlineCounter{Conn: server}
	conn := &guardConn{Conn: counter}
	conn.transparent.Store(true)

	// Settings with no read in between reach the socket as one, at the read.
	conn.SetReadDeadline(time.Now().Add(time.Hour))
	conn.SetReadDeadline(time.Time{})
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if got := counter.set.Load(); got != 0 {
		t.Errorf("%d deadlines reached the socket before a read, want 0", got)
	}
	start := time.Now()
	_, err := conn.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read error = %v, want the deadline's", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("read timed out after %v, want about 50ms", elapsed)
	}
	if got := counter.set.Load(); got != 1 {
		t.Errorf("%d deadlines reached the socket, want 1", got)
	}

	// A deadline set during a read reaches it at once, as net/http's
	// past deadline that ends its background read.
	conn.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1))
		done <- err
	}()
	for !conn.reading.Load() {
		time.Sleep(time.Millisecond)
	}
	conn.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read error = %v, want the deadline's", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline set during a read did not end it")
	}
}

func TestGuardConnDeadlineSetAsReadStarts(t *testing.T) {
	// The setter and the reader take no lock unless a deadline must reach
	// the socket, so a deadline set just as a read starts must still end it.
	for range 200 {
		client, server := net.Pipe()
		conn := &guardConn{Conn: server}
		conn.transparent.Store(true)
		started := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			close(started)
			_, err := conn.Read(make([]byte, 1))
			done <- err
		}()
		<-started
		conn.SetReadDeadline(time.Unix(1, 0))
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read error = %v, want the deadline's", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a deadline set as a read started did not end it")
		}
		client.Close()
	}
}

func TestUnixNanoDeadlines(t *testing.T) {
	cases := []struct {
		deadline time.Time
		want     int64
	}{
		{time.Time{}, 0},
		{time.Unix(0, 0), 1},
		{time.Unix(-5, 0), 1},
		{time.Unix(1, 0), 1_000_000_000},
		{time.Unix(1<<40, 0), math.MaxInt64},
	}
	for _, c := range cases {
		if got := unixNano(c.deadline); got != c.want {
			t.Errorf("unixNano(%v) = %d, want %d", c.deadline, got, c.want)
		}
	}
	if got := timeOfUnixNano(0); !got.IsZero() {
		t.Errorf("timeOfUnixNano(0) = %v, want the zero time", got)
	}
	if got := timeOfUnixNano(1_000_000_000); !got.Equal(time.Unix(1, 0)) {
		t.Errorf("timeOfUnixNano(1e9) = %v, want %v", got, time.Unix(1, 0))
	}
}

func TestGuardConnSkipsSlightlyLaterWriteDeadlines(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go io.Copy(io.Discard, client)
	counter := &deadlineCounter{Conn: server}
	conn := &guardConn{Conn: counter, settings: &guardSettings{writeTimeout: 64 * time.Second}}

	// One deadline per request, each a little later than the last, as
	// net/http sets them: the first reaches the socket at the write.
	base := time.Now().Add(time.Minute)
	for i := range 10 {
		conn.SetWriteDeadline(base.Add(time.Duration(i) * time.Millisecond))
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.writeSet.Load(); got != 1 {
		t.Errorf("%d write deadlines reached the socket, want 1", got)
	}

	// One more than the slack (1 s) later, an earlier one, and none: each
	// reaches the socket.
	for _, deadline := range []time.Time{base.Add(2 * time.Second), base, {}} {
		conn.SetWriteDeadline(deadline)
		if _, err := conn.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := counter.writeSet.Load(); got != 4 {
		t.Errorf("%d write deadlines reached the socket, want 4", got)
	}

	// A deadline in the past ends a write that is blocked.
	blocked, peer := net.Pipe()
	defer peer.Close()
	conn = &guardConn{Conn: blocked, settings: &guardSettings{writeTimeout: 64 * time.Second}}
	done := make(chan error, 1)
	go func() {
		_, err := conn.Write([]byte("x"))
		done <- err
	}()
	for conn.writing.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	conn.SetWriteDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write error = %v, want the deadline's", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a deadline set during a write did not end it")
	}
}

// net/http cuts its background read short with a past deadline when a
// handler returns. With pipelined requests that read can be in the next
// request's body, which must not count as that body timing out.
func TestGuardConnPipelinedBodies(t *testing.T) {
	address, _ := guardedServer(t, false, echoBody)
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const requests = 300
	body := strings.Repeat("z", 3000)
	request := "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + body
	go io.WriteString(conn, strings.Repeat(request, requests-1)+strings.Replace(request, "Host: x\r\n", "Host: x\r\nConnection: close\r\n", 1))
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	// A connection closed early may end in a reset: the responses that
	// arrived before it count.
	received, err := io.ReadAll(conn)
	statuses := statusLines(string(received))
	ok := 0
	for _, status := range statuses {
		if status == "200 OK" {
			ok++
		}
	}
	if ok != requests {
		t.Logf("received: %q", received[max(0, len(received)-400):])
		t.Errorf("%d of %d pipelined requests got 200 OK (read error %v); last statuses: %q",
			ok, requests, err, statuses[max(0, len(statuses)-3):])
	}
}
