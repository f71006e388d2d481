package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"syscall"
)

// SendFile sends the response header (unless sent) and then the file open
// as descriptor fd, from its current offset: count bytes, or to the end of
// the file when count is negative. io.CopyN hands each piece to net/http,
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

	return c.copyFile(file, count)
}

// copyFile sends count bytes of file from its offset, or the rest of it when
// count is negative, in pieces, each under a write deadline moved forward
// when due, as in Write. net/http still sends each piece with sendfile(2),
// which takes one LimitedReader of a file (not two nested).
func (c *Call) copyFile(file *os.File, count int64) (int64, error) {
	var sent int64
	for count < 0 || sent < count {
		piece := int64(writePiece)
		if count >= 0 {
			piece = min(piece, count-sent)
		}
		c.extendWriteDeadline()
		n, err := io.CopyN(c.writer, file, piece)
		sent += n
		if c.bodyLimit >= 0 {
			c.bodyLimit = max(0, c.bodyLimit-n)
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, http.ErrBodyNotAllowed):
			return sent, nil
		case err != nil:
			c.writeFailed = true
			return sent, err
		}
	}
	return sent, nil
}
