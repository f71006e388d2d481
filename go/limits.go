package main

import (
	"net"
	"net/http"
	"strings"
)

// Default request head limits, in the range nginx and gunicorn use: nginx
// rejects a request line or field line longer than its 8 KiB
// large_client_header_buffers, gunicorn a field line over 8190 bytes
// (limit_request_field_size) or more than 100 fields (limit_request_fields).
const (
	defaultMaxRequestLineBytes = 8190
	defaultMaxHeaderFieldBytes = 8190
	defaultMaxHeaderFields     = 100
)

func (c *Config) applyLimitDefaults() {
	if c.MaxRequestLineBytes <= 0 {
		c.MaxRequestLineBytes = defaultMaxRequestLineBytes
	}
	if c.MaxHeaderFieldBytes <= 0 {
		c.MaxHeaderFieldBytes = defaultMaxHeaderFieldBytes
	}
	if c.MaxHeaderFields <= 0 {
		c.MaxHeaderFields = defaultMaxHeaderFields
	}
}

// newGuardSettings returns the connection checks of a server with config,
// whose defaults are already applied.
func newGuardSettings(config *Config) *guardSettings {
	return &guardSettings{
		limits: headLimits{
			maxHeadBytes:        config.MaxHeaderBytes,
			maxRequestLineBytes: config.MaxRequestLineBytes,
			maxFieldBytes:       config.MaxHeaderFieldBytes,
			maxFields:           config.MaxHeaderFields,
		},
		headerTimeout:  config.ReadHeaderTimeout,
		writeTimeout:   config.WriteTimeout,
		http2Cleartext: config.HTTP2Cleartext,
	}
}

// guard wraps listener so that its connections are checked.
func (g *guardSettings) guard(listener net.Listener) net.Listener {
	return &guardListener{Listener: listener, settings: g}
}

// registerPattern notes a pattern that names the CONNECT method: only then
// may CONNECT requests reach a handler.
func (g *guardSettings) registerPattern(pattern string) {
	method, _, found := strings.Cut(strings.TrimLeft(pattern, " \t"), " ")
	if found && method == http.MethodConnect {
		g.connectAllowed.Store(true)
	}
}

// trackGuard passes net/http's connection state to the connection's checks.
func trackGuard(conn net.Conn, state http.ConnState) {
	if guarded, ok := conn.(*guardConn); ok {
		guarded.setState(state)
	}
}
