package main

import (
	"net/http"
	"time"
)

// AccessEntry describes a response that the engine made itself, without a
// callback: a 404 or 405 of the router, a 503 while the server shuts down,
// or a 400, 408 or 413 for a request body that queue mode could not read.
type AccessEntry struct {
	RemoteAddr string
	Method     string
	Target     string
	Protocol   string
	Status     int
	BodyBytes  int64
	Duration   time.Duration
}

// SetAccessLog sends an AccessEntry to write for each response the engine
// makes itself; nil stops them. Callbacks log their own responses. It may
// be called while serving.
func (s *Server) SetAccessLog(write func(entry AccessEntry)) {
	if write == nil {
		s.accessLog.Store(nil)
		return
	}
	s.accessLog.Store(&write)
}

// logAccess reports a response of the engine to the access log, if any.
func (s *Server) logAccess(r *http.Request, status int, bodyBytes int64, start time.Time) {
	write := s.accessLog.Load()
	if write == nil {
		return
	}
	// Counted as a callback, so that Release waits for it: the function
	// belongs to the embedder, which frees it after Release.
	if s.calls.Add(1)&closedBit != 0 {
		s.calls.Add(-1)
		return
	}
	defer s.calls.Add(-1)
	(*write)(AccessEntry{
		RemoteAddr: r.RemoteAddr,
		Method:     r.Method,
		Target:     r.RequestURI,
		Protocol:   r.Proto,
		Status:     status,
		BodyBytes:  bodyBytes,
		Duration:   time.Since(start),
	})
}

// respondError sends a plain-text error response and logs it as the
// engine's own.
func (s *Server) respondError(w http.ResponseWriter, r *http.Request, message string, status int, start time.Time) {
	// The write deadline that net/http set with the request header may
	// have passed while the body was read, as when a body read timed out.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.config.WriteTimeout))
	http.Error(w, message, status)
	// http.Error appends a newline to the message.
	s.logAccess(r, status, int64(len(message)+1), start)
}

// serveRouted lets the router serve a request that matches no pattern, so
// it responds with 404 or 405, and logs that response.
func (s *Server) serveRouted(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	recorder := &accessRecorder{ResponseWriter: w}
	s.mux.ServeHTTP(recorder, r)
	s.logAccess(r, recorder.status, recorder.bodyBytes, start)
}

// accessRecorder notes the status and body size of a response.
type accessRecorder struct {
	http.ResponseWriter
	status    int
	bodyBytes int64
}

func (w *accessRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *accessRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bodyBytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *accessRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
