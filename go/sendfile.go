package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"
)

// SendFile sends the response header (unless sent) and then the file open
// as descriptor fd, from its current offset: count bytes, or to the end of
// the file when count is negative. io.Copy hands the copy to net/http,
// which uses sendfile(2) when the response has a Content-Length and the
// connection is a plain TCP socket. The caller keeps fd: SendFile copies
// from a duplicate and closes that. The shared file offset moves past the
// bytes sent.
func (c *Call) SendFile(status int, header []byte, fd int, count int64) (int64, error) {
	if c.finished {
		return 0, errFinished
	}
	if !c.headerSent {
		if err := c.sendHeader(status, header, 0, false, false); err != nil {
			return 0, err
		}
	}
	duplicate, err := syscall.Dup(fd)
	if err != nil {
		return 0, os.NewSyscallError("dup", err)
	}
	file := os.NewFile(uintptr(duplicate), "wsgi.file_wrapper")
	defer file.Close()

	var source io.Reader = file
	if count >= 0 {
		source = &io.LimitedReader{R: file, N: count}
	}
	// One deadline for the whole copy, since sendfile is a single call.
	// NOTE: a file that takes longer than WriteTimeout to reach the client
	// is cut off there.
	if c.server.config.WriteTimeout > 0 {
		c.writeDeadline = time.Now().Add(c.server.config.WriteTimeout)
		_ = http.NewResponseController(c.writer).SetWriteDeadline(c.writeDeadline)
	}
	sent, err := io.Copy(c.writer, source)
	if err != nil && errors.Is(err, http.ErrBodyNotAllowed) {
		return sent, nil
	}
	return sent, err
}
