package main

import "bytes"

// Chunked framing of request bodies, followed byte for byte so that the
// connection checks know where each chunked body ends.

// Maximum sizes in chunked framing. They are below net/http's own limits
// (4096-byte chunk lines, 4096-byte trailer sections, 500 trailer fields,
// 16 KiB of chunk overhead), so that every chunked body accepted here is
// also accepted by net/http and both agree where the body ends.
const (
	maxChunkLineBytes     = 1024
	maxChunkSizeDigits    = 15
	maxTrailerBytes       = 4000
	maxTrailerFields      = 100
	maxChunkOverheadBytes = 8 << 10
)

// parseChunkLine parses a chunk-size line without its CRLF: hex digits,
// then optionally ";" and chunk extensions, which net/http ignores.
func parseChunkLine(line []byte) (uint64, bool) {
	digits := line
	if semicolon := bytes.IndexByte(line, ';'); semicolon >= 0 {
		digits = line[:semicolon]
		for _, c := range line[semicolon+1:] {
			if !isFieldValueByte(c) {
				return 0, false
			}
		}
	}
	if len(digits) == 0 || len(digits) > maxChunkSizeDigits {
		return 0, false
	}
	var size uint64
	for _, c := range digits {
		var digit byte
		switch {
		case isDigit(c):
			digit = c - '0'
		case 'a' <= c && c <= 'f':
			digit = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			digit = c - 'A' + 10
		default:
			return 0, false
		}
		size = size<<4 | uint64(digit)
	}
	return size, true
}

// checkTrailerField checks one trailer field line without its CRLF.
func checkTrailerField(line []byte) bool {
	if line[0] == ' ' || line[0] == '\t' {
		return false
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok || !isToken(name) {
		return false
	}
	for _, c := range value {
		if !isFieldValueByte(c) {
			return false
		}
	}
	return true
}

// failBody stops the stream inside a body: the body reader gets
// errChunkedFraming and no later request is parsed.
func (c *guardConn) failBody() int {
	c.bodyErr = errChunkedFraming
	c.state = stateEnd
	return 0
}

func (c *guardConn) vetChunkLine(unit []byte) int {
	end := bytes.IndexByte(unit, '\n')
	if end < 0 {
		if len(unit) > maxChunkLineBytes {
			return c.failBody()
		}
		return 0
	}
	line, _, ok := cutLine(unit[:end+1])
	if !ok || len(line) > maxChunkLineBytes {
		return c.failBody()
	}
	size, ok := parseChunkLine(line)
	if !ok {
		return c.failBody()
	}
	// The same overhead accounting as net/http's chunked reader, with a
	// lower bound, so that this check fails first.
	c.overhead += int64(len(line)) + 2 - 16 - 2*int64(size)
	c.overhead = max(c.overhead, 0)
	if c.overhead > maxChunkOverheadBytes {
		return c.failBody()
	}
	if size == 0 {
		c.state = stateTrailer
	} else {
		c.state = stateChunkData
		c.remaining = size
	}
	return end + 1
}

func (c *guardConn) vetChunkEnd(unit []byte) int {
	if unit[0] != '\r' || len(unit) > 1 && unit[1] != '\n' {
		return c.failBody()
	}
	if len(unit) < 2 {
		return 0
	}
	c.state = stateChunkLine
	return 2
}

func (c *guardConn) vetTrailerLine(unit []byte) int {
	end := bytes.IndexByte(unit, '\n')
	if end < 0 {
		if c.trailerBytes+len(unit) > maxTrailerBytes {
			return c.failBody()
		}
		return 0
	}
	c.trailerBytes += end + 1
	line, _, ok := cutLine(unit[:end+1])
	if !ok || c.trailerBytes > maxTrailerBytes {
		return c.failBody()
	}
	if len(line) == 0 {
		c.endBody()
		return end + 1
	}
	c.trailerFields++
	if c.trailerFields > maxTrailerFields || !checkTrailerField(line) {
		return c.failBody()
	}
	return end + 1
}
