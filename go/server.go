package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config holds the settings of a Server. A zero duration or size selects the
// default named beside it; none of the defaults disables a protection.
type Config struct {
	// ReadHeaderTimeout bounds the time to read a request's header block.
	// It stops slowloris clients. Default 10 s.
	ReadHeaderTimeout time.Duration

	// ReadTimeout bounds each read of a request body: a client that sends
	// nothing for this long fails the read. Default 60 s.
	ReadTimeout time.Duration

	// WriteTimeout bounds each write of a response: a client that accepts
	// no data for this long fails the write. Default 60 s.
	WriteTimeout time.Duration

	// IdleTimeout is how long a keep-alive connection waits for its next
	// request. Default 75 s, longer than common load balancers' 60 s, so
	// that the balancer and not the server closes idle connections.
	IdleTimeout time.Duration

	// MaxHeaderBytes limits the request line plus header block. Default 64 KiB.
	MaxHeaderBytes int

	// MaxConcurrentCalls bounds how many handler callbacks run at once;
	// further requests wait as goroutines. Zero means no bound.
	MaxConcurrentCalls int

	// TLSCertFile and TLSKeyFile, both PEM files, turn on HTTPS, with
	// HTTP/2 negotiated through ALPN.
	TLSCertFile string
	TLSKeyFile  string

	// HTTP2Cleartext accepts HTTP/2 without TLS from clients that start
	// with the HTTP/2 preface (prior knowledge), besides HTTP/1.1.
	HTTP2Cleartext bool

	// MaxRequestLineBytes limits the request line; longer ones get 414.
	// Default 8190.
	MaxRequestLineBytes int

	// MaxHeaderFieldBytes limits one header field line (name, colon and
	// value); longer ones get 431. Default 8190.
	MaxHeaderFieldBytes int

	// MaxHeaderFields limits the number of header field lines; more get
	// 431. Default 100.
	MaxHeaderFields int
}

const (
	defaultReadHeaderTimeout = 10 * time.Second
	defaultReadTimeout       = 60 * time.Second
	defaultWriteTimeout      = 60 * time.Second
	defaultIdleTimeout       = 75 * time.Second
	defaultMaxHeaderBytes    = 64 << 10
)

func (c *Config) applyDefaults() {
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	c.applyLimitDefaults()
}

// Callback runs a handler outside Go. It receives the call's handle, the
// encoded request and an area for an inline response, both valid only
// until it returns. It reports how many bytes of an encoded response it
// put in that area, or 0 when it wrote the response through Call.Write.
type Callback interface {
	Call(call uint64, request []byte, response []byte) (CallResult, int)
}

// CallResult is the outcome a Callback reports when it returns.
type CallResult int

const (
	// CallOK means the handler completed; an unfinished response is finished.
	CallOK CallResult = iota
	// CallAbort means the handler failed after the response started, so the
	// connection is closed to tell the client that the response is incomplete.
	CallAbort
)

var (
	errNotStarted     = errors.New("server is not started")
	errAlreadyStarted = errors.New("server is already started")
	errStopped        = errors.New("server was stopped and cannot start again; create a new server")
	errClosed         = errors.New("server is closed")
)

// Server is one net/http server whose handlers are Callbacks.
type Server struct {
	config Config
	mux    *http.ServeMux
	http   *http.Server
	logger *log.Logger

	// logOutput receives each line of the error log; nil means stderr.
	logOutput atomic.Pointer[func(string)]

	// accessLog receives the responses the engine makes itself; nil
	// means none are logged.
	accessLog atomic.Pointer[func(AccessEntry)]

	// fallback, when set, receives every request and replaces the mux, so
	// that the mux's path cleaning and redirects stay out of the way.
	fallback atomic.Pointer[http.Handler]

	// guard checks each connection's bytes before net/http parses them.
	guard *guardSettings

	// slots bounds concurrent callbacks; nil when unbounded. slotWaiters
	// counts the requests waiting for one.
	slots       chan struct{}
	slotWaiters atomic.Int32

	// calls counts callbacks in progress; the closedBit is set by
	// closeCallbacks, after which no new callback starts.
	calls atomic.Int64

	// stopping counts Shutdown and Close calls in progress. drained closes
	// when the first of them has finished, so Wait reports a stopped server
	// only after its in-flight requests ended.
	stopping  atomic.Int32
	drained   chan struct{}
	drainOnce sync.Once
	// closing is set before net/http closes every connection.
	closing atomic.Bool

	mu       sync.Mutex
	listener net.Listener
	started  bool
	done     chan struct{}
	serveErr error

	// localAddress is the local address of every connection when the
	// listener is bound to one IP address, and empty otherwise. Set once
	// by Start, before the first request.
	localAddress string

	active      atomic.Int64
	connections atomic.Int64

	// freshConns contains the connections that net/http has not read a
	// request from yet (see admitAccepted).
	freshMu    sync.Mutex
	freshConns map[net.Conn]struct{}
}

// freshGrace bounds how long Shutdown waits for the first request of the
// connections accepted just before it (see admitAccepted).
const freshGrace = 250 * time.Millisecond

const closedBit = int64(1) << 62

// NewServer validates config and returns a server that is not yet listening.
func NewServer(config Config) (*Server, error) {
	config.applyDefaults()
	if (config.TLSCertFile == "") != (config.TLSKeyFile == "") {
		return nil, errors.New("invalid TLS settings: a certificate file and a key file are needed together")
	}
	if config.MaxConcurrentCalls < 0 {
		return nil, fmt.Errorf("invalid max concurrent calls %d: must be 0 (no bound) or more", config.MaxConcurrentCalls)
	}
	s := &Server{
		config:     config,
		mux:        http.NewServeMux(),
		done:       make(chan struct{}),
		freshConns: map[net.Conn]struct{}{},
		drained:    make(chan struct{}),
		guard:      newGuardSettings(&config),
	}
	if config.MaxConcurrentCalls > 0 {
		s.slots = make(chan struct{}, config.MaxConcurrentCalls)
	}
	s.logger = log.New(lineWriter(s.writeLog), "", 0)
	s.guard.logf = s.logger.Printf
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.route),
		ReadHeaderTimeout: config.ReadHeaderTimeout,
		WriteTimeout:      config.WriteTimeout,
		IdleTimeout:       config.IdleTimeout,
		MaxHeaderBytes:    config.MaxHeaderBytes,
		ConnState:         s.trackConnection,
		ConnContext:       rememberLocalAddress,
		ErrorLog:          s.logger,
	}
	if config.HTTP2Cleartext {
		s.http.Protocols = new(http.Protocols)
		s.http.Protocols.SetHTTP1(true)
		s.http.Protocols.SetHTTP2(true)
		s.http.Protocols.SetUnencryptedHTTP2(true)
	}
	if config.TLSCertFile != "" {
		certificate, err := tls.LoadX509KeyPair(config.TLSCertFile, config.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading TLS certificate %q and key %q failed: %w", config.TLSCertFile, config.TLSKeyFile, err)
		}
		s.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{certificate}, MinVersion: tls.VersionTLS12}
	}
	return s, nil
}

// SetLogOutput sends the server's error log, including net/http's own, to
// write; nil restores standard error. It may be called while serving.
func (s *Server) SetLogOutput(write func(line string)) {
	if write == nil {
		s.logOutput.Store(nil)
		return
	}
	s.logOutput.Store(&write)
}

func (s *Server) writeLog(line string) {
	// Shutdown closes the connections that are still silent, TLS
	// handshakes included: that is no error to report.
	if s.stopping.Load() > 0 && strings.Contains(line, "TLS handshake error") && strings.Contains(line, net.ErrClosed.Error()) {
		return
	}
	if write := s.logOutput.Load(); write != nil {
		// Counted as a callback, as in logAccess: connection goroutines,
		// which Release does not wait for, log too, and the function
		// belongs to the embedder, which frees it after Release. A line
		// that comes later goes to standard error.
		if s.calls.Add(1)&closedBit == 0 {
			defer s.calls.Add(-1)
			(*write)(line)
			return
		}
		s.calls.Add(-1)
	}
	fmt.Fprintf(os.Stderr, "%s gobind: %s\n", time.Now().Format(time.DateTime), line)
}

type lineWriter func(line string)

func (w lineWriter) Write(p []byte) (int, error) {
	w(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Handle registers callback for a net/http ServeMux pattern such as
// "GET /items/{id}". An invalid pattern or one that conflicts with a
// registered pattern is an error.
func (s *Server) Handle(pattern string, callback Callback) (err error) {
	if err := checkPattern(pattern); err != nil {
		return err
	}
	handler := &callbackHandler{server: s, callback: callback, params: wildcardNames(pattern)}
	defer func() {
		// ServeMux reports invalid and conflicting patterns by panicking.
		// Its message names the Go source lines that registered them,
		// which are gobind's own, not the caller's.
		if r := recover(); r != nil {
			message := registeredAt.ReplaceAllString(fmt.Sprint(r), "")
			err = fmt.Errorf("invalid pattern %q: %s", pattern, message)
		}
	}()
	s.mux.Handle(pattern, handler)
	s.guard.registerPattern(pattern)
	return nil
}

// registeredAt matches the source location in a ServeMux conflict message.
var registeredAt = regexp.MustCompile(` \(registered at [^)]*\)`)

// checkPattern rejects what ServeMux would accept but never match: control
// characters, and blanks inside the host part of "[METHOD ][HOST]/[PATH]".
func checkPattern(pattern string) error {
	if pattern == "" {
		return errors.New("invalid pattern: empty")
	}
	for i := 0; i < len(pattern); i++ {
		if c := pattern[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("invalid pattern %q: control character %#02x at byte %d", pattern, c, i)
		}
	}
	rest := pattern
	if i := strings.IndexAny(rest, " \t"); i >= 0 {
		rest = strings.TrimLeft(rest[i+1:], " \t")
	}
	host, _, _ := strings.Cut(rest, "/")
	if strings.ContainsAny(host, " \t") {
		return fmt.Errorf("invalid pattern %q: blank in the host %q; the form is \"[METHOD ][HOST]/[PATH]\"", pattern, host)
	}
	return nil
}

// HandleAll makes callback receive every request, replacing the mux. Paths
// reach it exactly as the client sent them: no cleaning, no redirects.
func (s *Server) HandleAll(callback Callback) {
	var handler http.Handler = &callbackHandler{server: s, callback: callback}
	s.fallback.Store(&handler)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 && r.ProtoMajor == 1 {
		// net/http's HTTP/1 server clears the read deadline after the
		// header. Before a response that leaves the body unread, such as
		// the router's 404 or a 503 while closing, it reads up to 256 KiB
		// of that body. Without this deadline, a client that announced a
		// body and sends none would keep that response and its connection
		// waiting forever. Handlers set their own deadline for each read.
		// HTTP/2 needs none: it does no such read, and a deadline there
		// would end the stream's body for good.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.config.ReadTimeout))
	}
	if handler := s.fallback.Load(); handler != nil {
		(*handler).ServeHTTP(w, r)
		return
	}
	if s.accessLog.Load() != nil {
		// Only a request that matches no pattern goes through the recorder,
		// which logs the router's 404 or 405.
		if _, pattern := s.mux.Handler(r); pattern == "" {
			s.serveRouted(w, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Start binds address and serves in the background. The address is
// "host:port" (port 0 picks a free port, IPv6 hosts in brackets),
// "unix:/path/to/socket", or "fd:N" for a listening socket inherited as
// descriptor N (see listenDescriptor). Start returns the address actually
// bound.
func (s *Server) Start(address string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.started {
		select {
		case <-s.done:
			return "", errStopped
		default:
		}
		return "", errAlreadyStarted
	}
	if s.calls.Load()&closedBit != 0 {
		return "", errClosed
	}
	if s.stopping.Load() > 0 {
		// net/http's Serve would return at once.
		return "", errStopped
	}
	listener, err := listen(address)
	if err != nil {
		return "", err
	}
	if s.config.TLSCertFile == "" {
		// NOTE: over TLS the raw bytes are encrypted, so the head checks of
		// the guard do not run there; net/http's own parsing applies.
		listener = s.guard.guard(listener)
	}
	s.listener = listener
	s.localAddress = fixedLocalAddress(listener.Addr())
	s.started = true
	go func() {
		var err error
		if s.config.TLSCertFile != "" {
			err = s.http.ServeTLS(listener, "", "")
		} else {
			err = s.http.Serve(listener)
		}
		// Shutdown closes the listener itself before it stops net/http.
		if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) && s.stopping.Load() > 0 {
			err = nil
		}
		s.mu.Lock()
		s.serveErr = err
		s.mu.Unlock()
		close(s.done)
	}()
	return boundAddress(listener), nil
}

func listen(address string) (net.Listener, error) {
	if address == "" {
		return nil, errors.New("invalid address: empty; expected host:port, unix:/path or fd:N")
	}
	if i := strings.IndexFunc(address, func(r rune) bool { return r < ' ' || r == 0x7f }); i >= 0 {
		return nil, fmt.Errorf("invalid address %q: control character %#02x at byte %d", address, address[i], i)
	}
	if path, ok := strings.CutPrefix(address, "unix:"); ok {
		if path == "" {
			return nil, errors.New("invalid address \"unix:\": missing socket path")
		}
		if err := removeStaleSocket(path); err != nil {
			return nil, err
		}
		return net.Listen("unix", path)
	}
	if number, ok := strings.CutPrefix(address, "fd:"); ok {
		return listenDescriptor(number)
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: expected host:port, unix:/path or fd:N (%v)", address, err)
	}
	return net.Listen(tcpNetwork(host), address)
}

// tcpNetwork returns "tcp4" for the host 0.0.0.0 and "tcp" otherwise. With
// "tcp", Go listens on IPv6 too for 0.0.0.0, while users of other servers
// expect the IPv4 addresses they named.
func tcpNetwork(host string) string {
	if host == "0.0.0.0" {
		return "tcp4"
	}
	return "tcp"
}

// removeStaleSocket removes the file of a Unix socket that nothing listens
// on, as a server killed before it could remove its own leaves behind, so
// that binding path does not fail with "address already in use". A socket
// that accepts connections stays. A file that is not a socket stays too,
// and is an error.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	if info.Mode().Type() != os.ModeSocket {
		return &net.OpError{Op: "listen", Net: "unix", Addr: &net.UnixAddr{Name: path, Net: "unix"},
			Err: fmt.Errorf("%w and is not a socket", syscall.EEXIST)}
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		_ = os.Remove(path)
	}
	return nil
}

// listenDescriptor serves on a listening socket that this process
// inherited, such as one opened by a supervisor process (OpenListener) or
// by systemd. The listener works on a duplicate, and the descriptor itself
// is closed once that succeeded, so that a closed listener stops the
// socket's backlog from filling up in this process. A descriptor that is
// not a listening socket is an error and stays open.
func listenDescriptor(number string) (net.Listener, error) {
	fd, err := strconv.Atoi(number)
	if err != nil || fd < 0 {
		return nil, fmt.Errorf("invalid address %q: expected fd: and a descriptor number", "fd:"+number)
	}
	accepting, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN)
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	if accepting == 0 {
		return nil, fmt.Errorf("descriptor %d is a socket that does not listen", fd)
	}
	file := os.NewFile(uintptr(fd), "fd:"+number)
	listener, err := net.FileListener(file)
	if err != nil {
		return nil, fmt.Errorf("descriptor %d: %w", fd, err)
	}
	file.Close()
	return listener, nil
}

// OpenListener binds address as Start would, and returns a descriptor of
// the listening socket for other processes to serve with the address
// "fd:N", and the address bound. The descriptor is close-on-exec; a
// supervisor passes it to its workers explicitly. A Unix socket's file
// stays in place: its remover is the caller.
func OpenListener(address string) (int, string, error) {
	if strings.HasPrefix(address, "fd:") {
		return -1, "", fmt.Errorf("invalid address %q: a listener to open needs host:port or unix:/path", address)
	}
	listener, err := listen(address)
	if err != nil {
		return -1, "", err
	}
	bound := boundAddress(listener)
	if unix, ok := listener.(*net.UnixListener); ok {
		unix.SetUnlinkOnClose(false)
	}
	defer listener.Close()

	raw, err := listener.(syscall.Conn).SyscallConn()
	if err != nil {
		return -1, "", err
	}
	fd := -1
	var dupErr error
	// The duplicate is close-on-exec from the start, so no child process
	// that another thread starts meanwhile inherits it.
	err = raw.Control(func(socket uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, socket, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		fd = int(r)
	})
	if err == nil {
		err = dupErr
	}
	if err != nil {
		return -1, "", err
	}
	return fd, bound, nil
}

func boundAddress(listener net.Listener) string {
	if listener.Addr().Network() == "unix" {
		return "unix:" + listener.Addr().String()
	}
	return listener.Addr().String()
}

// Wait blocks until the server stops serving or timeout passes, and reports
// whether it stopped. A negative timeout waits without limit.
func (s *Server) Wait(timeout time.Duration) (bool, error) {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		return false, errNotStarted
	}
	var expired <-chan time.Time
	if timeout >= 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	// A stopped server reports so even with a zero timeout, which a select
	// would pick at random against the expired timer.
	for _, finished := range []chan struct{}{s.done, s.drained} {
		if finished == s.drained && s.stopping.Load() == 0 {
			break
		}
		select {
		case <-finished:
			continue
		default:
		}
		select {
		case <-finished:
		case <-expired:
			return false, nil
		}
	}
	return true, s.serveError()
}

func (s *Server) serveError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveErr
}

// Shutdown stops accepting connections and waits up to timeout for
// in-flight requests to finish. Connections still busy after timeout are
// closed and context.DeadlineExceeded is returned.
func (s *Server) Shutdown(timeout time.Duration) error {
	s.stopping.Add(1)
	defer s.markDrained()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.admitAccepted(ctx)
	err := s.http.Shutdown(ctx)
	if errors.Is(err, net.ErrClosed) {
		// The listener that admitAccepted closed, closed again when Serve
		// had not yet returned.
		err = nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		s.closing.Store(true)
		s.http.Close()
	}
	s.waitIfStarted()
	return err
}

// admitAccepted stops accepting and gives the connections accepted last
// up to freshGrace to deliver their first request, before Shutdown starts.
// net/http closes a connection without a response when it reads a request
// after Shutdown began. A request sent on a connection accepted a moment
// earlier would be lost, while other worker processes could have served
// it. The connections that stay silent are closed then: net/http would
// wait 5 s for them and close them all the same. Keep-alives end too, so
// each response from now on closes its connection.
func (s *Server) admitAccepted(ctx context.Context) {
	s.mu.Lock()
	listener := s.listener
	s.mu.Unlock()
	if listener == nil {
		return
	}
	listener.Close()
	s.http.SetKeepAlivesEnabled(false)
	// Serve registers each connection it accepted before it returns.
	select {
	case <-s.done:
	case <-ctx.Done():
		return
	}
	deadline := time.Now().Add(freshGrace)
	for s.freshCount() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	for conn := range s.freshConns {
		conn.Close()
	}
}

func (s *Server) freshCount() int {
	s.freshMu.Lock()
	defer s.freshMu.Unlock()
	return len(s.freshConns)
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.stopping.Add(1)
	defer s.markDrained()
	s.closing.Store(true)
	err := s.http.Close()
	s.waitIfStarted()
	return err
}

func (s *Server) markDrained() {
	s.drainOnce.Do(func() { close(s.drained) })
}

func (s *Server) waitIfStarted() {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started {
		<-s.done
	}
}

// Release closes the server and waits until no callback is running; after
// it returns, no callback of this server starts again.
func (s *Server) Release() {
	s.Close()
	s.calls.Or(closedBit)
	for s.calls.Load()&^closedBit != 0 {
		time.Sleep(time.Millisecond)
	}
}

// Stats is a snapshot of a server's load.
type Stats struct {
	ActiveRequests  int64
	OpenConnections int64
}

// Stats returns the current number of requests in handlers or waiting for
// a handler thread, and of open connections.
func (s *Server) Stats() Stats {
	active := s.active.Load() + int64(s.slotWaiters.Load())
	return Stats{ActiveRequests: active, OpenConnections: s.connections.Load()}
}

// localAddressKey is the context key of a connection's local address, as
// a string formatted once per connection instead of once per request.
type localAddressKey struct{}

// fixedLocalAddress returns address as a string when every connection
// accepted on it has that local address: a TCP address with a specific IP.
func fixedLocalAddress(address net.Addr) string {
	tcp, ok := address.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		return ""
	}
	return tcp.String()
}

// connLocalAddress returns the local address of r's connection. Looking it
// up in the request's context costs a few cache misses per request, so a
// listener's fixed address is used when it has one.
func (s *Server) connLocalAddress(r *http.Request) string {
	if s.localAddress != "" {
		return s.localAddress
	}
	address, _ := r.Context().Value(localAddressKey{}).(string)
	return address
}

func rememberLocalAddress(ctx context.Context, conn net.Conn) context.Context {
	if guard, ok := conn.(*guardConn); ok {
		ctx = context.WithValue(ctx, guardKey{}, guard)
	}
	return context.WithValue(ctx, localAddressKey{}, conn.LocalAddr().String())
}

func (s *Server) trackConnection(conn net.Conn, state http.ConnState) {
	trackGuard(conn, state)
	switch state {
	case http.StateNew:
		s.connections.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.connections.Add(-1)
	}
	s.trackFresh(conn, state)
}

// trackFresh keeps freshConns. A guarded connection carries a flag, so
// that its requests take no lock; a TLS connection is looked up.
func (s *Server) trackFresh(conn net.Conn, state http.ConnState) {
	guarded, _ := conn.(*guardConn)
	if state == http.StateNew {
		if guarded != nil {
			guarded.fresh.Store(true)
		}
		s.freshMu.Lock()
		s.freshConns[conn] = struct{}{}
		s.freshMu.Unlock()
		return
	}
	if guarded != nil && (!guarded.fresh.Load() || !guarded.fresh.Swap(false)) {
		return
	}
	s.freshMu.Lock()
	delete(s.freshConns, conn)
	s.freshMu.Unlock()
}

// wildcardNames lists the names of a pattern's wildcards: "id" and "path"
// for "GET /items/{id}/{path...}". The end anchor {$} has no name.
func wildcardNames(pattern string) []string {
	var names []string
	for {
		open := strings.IndexByte(pattern, '{')
		if open < 0 {
			return names
		}
		end := strings.IndexByte(pattern[open:], '}')
		if end < 0 {
			return names
		}
		name := strings.TrimSuffix(pattern[open+1:open+end], "...")
		if name != "$" && name != "" {
			names = append(names, name)
		}
		pattern = pattern[open+end+1:]
	}
}
