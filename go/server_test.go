package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// callbackFunc adapts a function that responds through Call.Write to the
// Callback interface; it leaves the inline response area unused.
type callbackFunc func(call uint64, request []byte) CallResult

func (f callbackFunc) Call(call uint64, request []byte, _ []byte) (CallResult, int) {
	return f(call, request), 0
}

// respond writes a whole response through the call handle, as the C++
// ResponseWriter does.
func respond(t *testing.T, handle uint64, status int, body string, header ...string) {
	t.Helper()
	call := calls.get(handle)
	if call == nil {
		t.Errorf("calls.get(%#x) = nil inside the callback", handle)
		return
	}
	if err := call.Write(status, encodeHeader(header...), []byte(body), writeFinish); err != nil {
		t.Errorf("Write: %v", err)
	}
}

func startServer(t *testing.T, config Config, routes map[string]Callback) (*Server, string) {
	t.Helper()
	s, err := NewServer(config)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	for pattern, callback := range routes {
		if err := s.Handle(pattern, callback); err != nil {
			t.Fatalf("Handle(%q): %v", pattern, err)
		}
	}
	address, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Release)
	return s, address
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	response, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		t.Fatalf("reading body of %s: %v", url, err)
	}
	return response.StatusCode, response.Header, string(body)
}

func TestWildcardNames(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
	}{
		{"/", nil},
		{"GET /items/{id}", []string{"id"}},
		{"GET /items/{id}/{path...}", []string{"id", "path"}},
		{"example.com/{a}/{b}/{$}", []string{"a", "b"}},
		{"/{}", nil},
		{"/{unclosed", nil},
		{"POST /a/{x}/b/{y...}", []string{"x", "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			if got := wildcardNames(tt.pattern); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("wildcardNames(%q) = %q, want %q", tt.pattern, got, tt.want)
			}
		})
	}
}

func TestNewServerRejectsNegativeBound(t *testing.T) {
	_, err := NewServer(Config{MaxConcurrentCalls: -1})
	want := "invalid max concurrent calls -1: must be 0 (no bound) or more"
	if err == nil || err.Error() != want {
		t.Errorf("NewServer error = %v, want %q", err, want)
	}
}

func TestHandleInvalidPattern(t *testing.T) {
	noop := callbackFunc(func(uint64, []byte) CallResult { return CallOK })
	tests := []struct {
		pattern string
		want    string
	}{
		{"", "invalid pattern: empty"},
		{"GET /a/{", `invalid pattern "GET /a/{": parsing "GET /a/{": at offset 7: bad wildcard segment (must end with '}')`},
		{"/dup", `invalid pattern "/dup": pattern "/dup" conflicts with pattern "/dup":`},
		{"GET /a\r\nX: y", `invalid pattern "GET /a\r\nX: y": control character 0x0d at byte 6`},
		{"/\x00", `invalid pattern "/\x00": control character 0x00 at byte 1`},
		{"FOO BAR /a", `invalid pattern "FOO BAR /a": blank in the host "BAR "`},
	}
	s, err := NewServer(Config{})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := s.Handle("/dup", noop); err != nil {
		t.Fatalf("Handle(/dup): %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			err := s.Handle(tt.pattern, noop)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Handle(%q) error = %v, want prefix %q", tt.pattern, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "registered at") {
				t.Errorf("Handle(%q) error names gobind's source: %v", tt.pattern, err)
			}
		})
	}
}

func TestStartInvalidAddress(t *testing.T) {
	tests := []struct {
		address string
		want    string
	}{
		{"", "invalid address: empty; expected host:port, unix:/path or fd:N"},
		{"unix:", `invalid address "unix:": missing socket path`},
		{"localhost", `invalid address "localhost": expected host:port, unix:/path or fd:N (address localhost: missing port in address)`},
		{"fd:", `invalid address "fd:": expected fd: and a descriptor number`},
		{"fd:x", `invalid address "fd:x": expected fd: and a descriptor number`},
		{"fd:-3", `invalid address "fd:-3": expected fd: and a descriptor number`},
		{"127.0.0.1\x00x:0", `invalid address "127.0.0.1\x00x:0": control character 0x00 at byte 9`},
		{"unix:/tmp/a\nb", `invalid address "unix:/tmp/a\nb": control character 0x0a at byte 11`},
	}
	for _, tt := range tests {
		t.Run(tt.address, func(t *testing.T) {
			s, err := NewServer(Config{})
			if err != nil {
				t.Fatalf("NewServer: %v", err)
			}
			_, err = s.Start(tt.address)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Start(%q) error = %v, want %q", tt.address, err, tt.want)
			}
		})
	}
}

func TestStartTwice(t *testing.T) {
	s, _ := startServer(t, Config{}, nil)
	if _, err := s.Start("127.0.0.1:0"); !errors.Is(err, errAlreadyStarted) {
		t.Errorf("second Start error = %v, want %v", err, errAlreadyStarted)
	}
}

func TestStartAfterCloseFails(t *testing.T) {
	s, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	s.Close()
	if _, err := s.Start("127.0.0.1:0"); !errors.Is(err, errStopped) {
		t.Errorf("Start after Close: %v, want %v", err, errStopped)
	}
}

func TestStartPortInUse(t *testing.T) {
	_, address := startServer(t, Config{}, nil)
	s, err := NewServer(Config{})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	_, err = s.Start(address)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Start(%s) on a bound port error = %v, want EADDRINUSE", address, err)
	}
}

// TestStartOnOpenedListener serves on a descriptor from OpenListener, as
// the workers of a supervisor do, and checks that Start takes it over.
func TestStartOnOpenedListener(t *testing.T) {
	fd, bound, err := OpenListener("127.0.0.1:0")
	if err != nil {
		t.Fatalf("OpenListener: %v", err)
	}
	if flags, err := fcntl(fd, syscall.F_GETFD); err != nil || flags&syscall.FD_CLOEXEC == 0 {
		t.Errorf("descriptor flags = %#x, %v; want FD_CLOEXEC", flags, err)
	}

	s, err := NewServer(Config{})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(s.Release)
	if err := s.Handle("GET /", callbackFunc(func(call uint64, _ []byte) CallResult {
		respond(t, call, 200, "served")
		return CallOK
	})); err != nil {
		t.Fatalf("Handle: %v", err)
	}

	address, err := s.Start(fmt.Sprintf("fd:%d", fd))
	if err != nil {
		t.Fatalf("Start(fd:%d): %v", fd, err)
	}
	if address != bound {
		t.Errorf("Start(fd:%d) = %q, want the address OpenListener bound, %q", fd, address, bound)
	}
	// Checked before any connection could reuse the number.
	if _, err := fcntl(fd, syscall.F_GETFD); !errors.Is(err, syscall.EBADF) {
		t.Errorf("descriptor %d after Start: %v, want EBADF (taken over and closed)", fd, err)
	}
	if _, _, body := get(t, "http://"+address+"/"); body != "served" {
		t.Errorf("body = %q, want %q", body, "served")
	}
}

func TestStartOnDescriptorThatCannotServe(t *testing.T) {
	var pipe [2]int
	if err := syscall.Pipe(pipe[:]); err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pipe[0])
	defer syscall.Close(pipe[1])
	idle, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(idle)

	tests := []struct {
		fd   int
		want string
	}{
		{pipe[0], fmt.Sprintf("descriptor %d: socket operation on non-socket", pipe[0])},
		{idle, fmt.Sprintf("descriptor %d is a socket that does not listen", idle)},
	}
	for _, tt := range tests {
		s, err := NewServer(Config{})
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		if _, err := s.Start(fmt.Sprintf("fd:%d", tt.fd)); err == nil || err.Error() != tt.want {
			t.Errorf("Start(fd:%d) error = %v, want %q", tt.fd, err, tt.want)
		}
		s.Release()
		if _, err := fcntl(tt.fd, syscall.F_GETFD); err != nil {
			t.Errorf("descriptor %d after a failed Start: %v, want it still open", tt.fd, err)
		}
	}
}

func TestTCPNetwork(t *testing.T) {
	tests := []struct{ host, network string }{
		{"0.0.0.0", "tcp4"},
		{"127.0.0.1", "tcp"},
		{"::", "tcp"},
		{"::ffff:0.0.0.0", "tcp"},
		{"::1", "tcp"},
		{"::ffff:127.0.0.1", "tcp"},
		{"localhost", "tcp"},
		{"", "tcp"},
	}
	for _, tt := range tests {
		if got := tcpNetwork(tt.host); got != tt.network {
			t.Errorf("tcpNetwork(%q) = %q, want %q", tt.host, got, tt.network)
		}
	}
}

func TestListenRemovesStaleUnixSocket(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/gobind.sock"
	// The file of a server that is gone, as after SIGKILL.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	listener, err := listen("unix:" + path)
	if err != nil {
		t.Fatalf("listen over a stale socket file: %v", err)
	}
	defer listener.Close()

	// The file of a server that listens stays, and so does a plain file.
	if _, err := listen("unix:" + path); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("listen on a socket in use: %v, want EADDRINUSE", err)
	}
	plain := dir + "/plain"
	if err := os.WriteFile(plain, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = listen("unix:" + plain)
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("listen on a plain file: %v, want EEXIST", err)
	}
	if err != nil && !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("listen on a plain file: %q, want it to say the path is not a socket", err)
	}
	if data, err := os.ReadFile(plain); err != nil || string(data) != "data" {
		t.Errorf("plain file after listen: %q, %v; want it unchanged", data, err)
	}
}

func TestOpenListenerKeepsUnixSocketFile(t *testing.T) {
	path := t.TempDir() + "/gobind.sock"
	fd, bound, err := OpenListener("unix:" + path)
	if err != nil {
		t.Fatalf("OpenListener: %v", err)
	}
	if bound != "unix:"+path {
		t.Errorf("bound = %q, want %q", bound, "unix:"+path)
	}
	syscall.Close(fd)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("socket file after closing the descriptor: %v, want it kept", err)
	}
	if _, _, err := OpenListener("fd:3"); err == nil {
		t.Error("OpenListener(fd:3) succeeded, want an error")
	}
}

func fcntl(fd, command int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(command), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func TestServerCallback(t *testing.T) {
	var got decodedRequest
	callback := callbackFunc(func(handle uint64, request []byte) CallResult {
		var err error
		if got, err = decodeRequest(request); err != nil {
			t.Errorf("decodeRequest: %v", err)
		}
		respond(t, handle, http.StatusTeapot, "hello "+got.Params[0][1], "X-Test", "yes")
		return CallOK
	})
	_, address := startServer(t, Config{}, map[string]Callback{"GET /hello/{name}": callback})

	status, header, body := get(t, "http://"+address+"/hello/go?x=1")
	if status != http.StatusTeapot {
		t.Errorf("status = %d, want %d", status, http.StatusTeapot)
	}
	if body != "hello go" {
		t.Errorf("body = %q, want %q", body, "hello go")
	}
	if v := header.Get("X-Test"); v != "yes" {
		t.Errorf("X-Test = %q, want %q", v, "yes")
	}
	if v := header.Get("Content-Length"); v != "8" {
		t.Errorf("Content-Length = %q, want %q", v, "8")
	}
	if got.Method != "GET" || got.Target != "/hello/go?x=1" || got.Query != "x=1" || got.Host != address {
		t.Errorf("decoded request = %+v", got)
	}
	if got.LocalAddr != address {
		t.Errorf("LocalAddr = %q, want %q", got.LocalAddr, address)
	}
}

func TestServerCallbackAbort(t *testing.T) {
	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		call := calls.get(handle)
		if err := call.Write(0, encodeHeader("Content-Length", "100"), []byte("partial"), writeFlush); err != nil {
			t.Errorf("Write: %v", err)
		}
		return CallAbort
	})
	_, address := startServer(t, Config{}, map[string]Callback{"/": callback})
	response, err := http.Get("http://" + address + "/")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading body error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if string(body) != "partial" {
		t.Errorf("body = %q, want %q", body, "partial")
	}
}

func TestCallHandleInvalidAfterReturn(t *testing.T) {
	var handle atomic.Uint64
	callback := callbackFunc(func(h uint64, _ []byte) CallResult {
		handle.Store(h)
		return CallOK
	})
	_, address := startServer(t, Config{}, map[string]Callback{"/": callback})
	if status, _, _ := get(t, "http://"+address+"/"); status != http.StatusOK {
		t.Errorf("status of empty response = %d, want 200", status)
	}
	if call := calls.get(handle.Load()); call != nil {
		t.Errorf("calls.get(%#x) after the callback returned = %v, want nil", handle.Load(), call)
	}
}

func TestShutdownWaitsForInFlightRequest(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		close(entered)
		<-release
		respond(t, handle, http.StatusOK, "done")
		finished.Store(true)
		return CallOK
	})
	s, address := startServer(t, Config{}, map[string]Callback{"/": callback})

	type result struct {
		status int
		body   string
		err    error
	}
	responses := make(chan result, 1)
	go func() {
		response, err := http.Get("http://" + address + "/")
		if err != nil {
			responses <- result{err: err}
			return
		}
		defer response.Body.Close()
		body, err := io.ReadAll(response.Body)
		responses <- result{response.StatusCode, string(body), err}
	}()
	<-entered

	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- s.Shutdown(10 * time.Second) }()
	waitUntilListenerClosed(t, address)
	close(release)

	if err := <-shutdownErr; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if !finished.Load() {
		t.Errorf("Shutdown returned before the in-flight handler finished")
	}
	got := <-responses
	if got.err != nil || got.status != http.StatusOK || got.body != "done" {
		t.Errorf("in-flight response = %+v, want 200 %q", got, "done")
	}
	if stopped, err := s.Wait(0); !stopped || err != nil {
		t.Errorf("Wait after Shutdown = %v, %v; want true, nil", stopped, err)
	}
}

// dialAccepted connects to s and waits until s has accepted the connection.
func dialAccepted(t *testing.T, s *Server, address string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for deadline := time.Now().Add(5 * time.Second); s.freshCount() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the connection was not accepted within 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	return conn
}

// TestShutdownServesRequestOfFreshConnection sends a request on a
// connection accepted before Shutdown, after Shutdown began. net/http alone
// closes such a connection without a response.
func TestShutdownServesRequestOfFreshConnection(t *testing.T) {
	s, address := startServer(t, Config{}, map[string]Callback{
		"GET /": callbackFunc(func(call uint64, _ []byte) CallResult {
			respond(t, call, 200, "served")
			return CallOK
		}),
	})
	conn := dialAccepted(t, s, address)

	stopped := make(chan error, 1)
	go func() { stopped <- s.Shutdown(10 * time.Second) }()
	time.Sleep(50 * time.Millisecond)
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	received, _ := io.ReadAll(conn)
	if !strings.HasPrefix(string(received), "HTTP/1.1 200 OK") || !strings.HasSuffix(string(received), "served") {
		t.Errorf("response = %q, want 200 with body %q", received, "served")
	}
	if !strings.Contains(string(received), "Connection: close") {
		t.Errorf("response = %q, want Connection: close during shutdown", received)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestShutdownClosesSilentConnection checks that a connection that sends
// no request does not hold Shutdown for the 5 s that net/http waits.
func TestShutdownClosesSilentConnection(t *testing.T) {
	s, address := startServer(t, Config{}, nil)
	conn := dialAccepted(t, s, address)

	started := time.Now()
	if err := s.Shutdown(10 * time.Second); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 2*time.Second {
		t.Errorf("Shutdown took %v with a silent connection, want about %v", elapsed, freshGrace)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from the silent connection = %d, %v; want it closed", n, err)
	}
}

// TestShutdownRepeatedlyReturnsNoError stops many servers right after
// their start, when Serve may not have reached Accept yet: the listener
// that Shutdown closes first must not come back as an error.
func TestShutdownRepeatedlyReturnsNoError(t *testing.T) {
	for range 100 {
		s, err := NewServer(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(5 * time.Second); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		s.Release()
	}
}

func TestShutdownTimeoutClosesConnections(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	callback := callbackFunc(func(uint64, []byte) CallResult {
		close(entered)
		<-release
		return CallOK
	})
	s, address := startServer(t, Config{}, map[string]Callback{"/": callback})
	clientErr := make(chan error, 1)
	go func() {
		response, err := http.Get("http://" + address + "/")
		if err == nil {
			_, err = io.ReadAll(response.Body)
			response.Body.Close()
		}
		clientErr <- err
	}()
	<-entered
	err := s.Shutdown(time.Millisecond)
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want %v", err, context.DeadlineExceeded)
	}
	if err := <-clientErr; err == nil {
		t.Errorf("client of a request cut off by Shutdown got no error")
	}
}

// waitUntilListenerClosed dials address until the listener is closed.
func waitUntilListenerClosed(t *testing.T, address string) {
	t.Helper()
	for range 1000 {
		conn, err := net.Dial("tcp", address)
		if err != nil {
			return
		}
		conn.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("listener %s still accepts connections after Shutdown", address)
}

func TestMaxConcurrentCallsBound(t *testing.T) {
	const bound, requests = 2, 8
	var current, peak atomic.Int64
	entered := make(chan struct{}, requests)
	release := make(chan struct{})
	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		now := current.Add(1)
		for {
			old := peak.Load()
			if now <= old || peak.CompareAndSwap(old, now) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		current.Add(-1)
		respond(t, handle, http.StatusOK, "ok")
		return CallOK
	})

	s, err := NewServer(Config{MaxConcurrentCalls: bound})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if err := s.Handle("/", callback); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	// Count requests whose first bytes arrived, so that the test releases
	// handlers only once every request is waiting inside the server.
	var reading atomic.Int64
	track := s.http.ConnState
	s.http.ConnState = func(conn net.Conn, state http.ConnState) {
		if state == http.StateActive {
			reading.Add(1)
		}
		track(conn, state)
	}
	address, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Release)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	statuses := make(chan int, requests)
	for range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			response, err := client.Get("http://" + address + "/")
			if err != nil {
				t.Errorf("GET: %v", err)
				return
			}
			io.Copy(io.Discard, response.Body)
			response.Body.Close()
			statuses <- response.StatusCode
		}()
	}
	for range bound {
		<-entered
	}
	for reading.Load() < requests {
		time.Sleep(time.Millisecond)
	}
	// Stats counts the requests in handlers and those waiting for a slot.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().ActiveRequests < requests && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := s.Stats().ActiveRequests; got != requests {
		t.Errorf("ActiveRequests with every request in the server = %d, want %d", got, requests)
	}
	if got := s.active.Load(); got != bound {
		t.Errorf("requests in handlers = %d, want %d", got, bound)
	}
	close(release)
	wg.Wait()
	close(statuses)

	count := 0
	for status := range statuses {
		count++
		if status != http.StatusOK {
			t.Errorf("status = %d, want 200", status)
		}
	}
	if count != requests {
		t.Errorf("answered requests = %d, want %d", count, requests)
	}
	if got := peak.Load(); got != bound {
		t.Errorf("peak concurrent callbacks = %d, want %d", got, bound)
	}
}

func TestReleaseStopsCallbacks(t *testing.T) {
	var ran atomic.Int64
	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		ran.Add(1)
		return CallOK
	})
	s, address := startServer(t, Config{}, map[string]Callback{"/": callback})
	get(t, "http://"+address+"/")
	s.Release()
	if _, err := http.Get("http://" + address + "/"); err == nil {
		t.Errorf("GET after Release succeeded, want a connection error")
	}
	if _, err := s.Start("127.0.0.1:0"); !errors.Is(err, errStopped) {
		t.Errorf("Start after Release error = %v, want %v", err, errStopped)
	}
	if got := ran.Load(); got != 1 {
		t.Errorf("callbacks run = %d, want 1", got)
	}
}

func TestBodyDroppedForNoContent(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{http.StatusNoContent, "ignored", ""},
		{http.StatusNotModified, "ignored", ""},
		{http.StatusOK, "kept", "kept"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
				respond(t, handle, tt.status, tt.body)
				return CallOK
			})
			_, address := startServer(t, Config{}, map[string]Callback{"/": callback})
			status, _, body := get(t, "http://"+address+"/")
			if status != tt.status {
				t.Errorf("status = %d, want %d", status, tt.status)
			}
			if body != tt.want {
				t.Errorf("body = %q, want %q", body, tt.want)
			}
		})
	}
}

// exchangeUntilClose sends raw on a new connection and returns what the
// server sends before it closes the connection, failing the test when that
// takes longer than patience.
func exchangeUntilClose(t *testing.T, address, raw string, patience time.Duration) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(patience))
	response, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading response: %v (received %q)", err, response)
	}
	return response
}

func TestReadTimeoutStillResponds(t *testing.T) {
	readErr := make(chan error, 1)
	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		call := calls.get(handle)
		buffer := make([]byte, 100)
		var err error
		for err == nil {
			_, err = call.ReadBody(buffer)
		}
		readErr <- err
		respond(t, handle, http.StatusInternalServerError, "failed")
		return CallOK
	})
	_, address := startServer(t, Config{ReadTimeout: 100 * time.Millisecond}, map[string]Callback{"/": callback})

	// The client announces 100 body bytes, sends 3 and goes silent.
	response := exchangeUntilClose(t, address, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc", 30*time.Second)
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadBody error = %v, want %v", err, os.ErrDeadlineExceeded)
	}
	if !strings.HasPrefix(string(response), "HTTP/1.1 500 Internal Server Error\r\n") {
		t.Errorf("response = %q, want a 500", response)
	}
}

func TestUnsentBodyDoesNotHoldEngineResponse(t *testing.T) {
	// No pattern matches, so the router responds 404 without reading the
	// body that the client announces and never sends.
	_, address := startServer(t, Config{ReadTimeout: 200 * time.Millisecond}, map[string]Callback{"/known": callbackFunc(
		func(handle uint64, _ []byte) CallResult { return CallOK })})
	response := exchangeUntilClose(t, address, "POST /unknown HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n", 10*time.Second)
	if !strings.HasPrefix(string(response), "HTTP/1.1 404 Not Found\r\n") {
		t.Errorf("response = %q, want a 404", response)
	}
}

func TestHandleAllKeepsRawPath(t *testing.T) {
	paths := make(chan decodedRequest, 1)
	s, err := NewServer(Config{})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	s.HandleAll(callbackFunc(func(handle uint64, request []byte) CallResult {
		decoded, err := decodeRequest(request)
		if err != nil {
			t.Errorf("decodeRequest: %v", err)
		}
		paths <- decoded
		respond(t, handle, http.StatusOK, "ok")
		return CallOK
	}))
	address, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Release)

	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /a/../b//c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	response, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	if !strings.HasPrefix(string(response), "HTTP/1.1 200 OK\r\n") {
		t.Errorf("response = %q, want a 200", response)
	}
	got := <-paths
	if got.Target != "/a/../b//c" || got.Path != "/a/../b//c" {
		t.Errorf("target, path = %q, %q; want both %q", got.Target, got.Path, "/a/../b//c")
	}
	if len(got.Params) != 0 {
		t.Errorf("params = %q, want none", got.Params)
	}
}
