package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// This file checks request heads and chunked body framing as raw bytes,
// before net/http parses them. net/http hides some of the evidence: it drops
// Content-Length when Transfer-Encoding is present, ignores
// Transfer-Encoding on HTTP/1.0, and accepts bare LF line endings and
// obsolete line folding. The checks here reject every head whose framing a
// front proxy could read differently (RFC 9112 sections 2.2, 3, 5 and 6).

// headLimits are the size limits of a request head.
type headLimits struct {
	maxHeadBytes        int // request line plus header section, CRLFs included
	maxRequestLineBytes int // request line without its CRLF
	maxFieldBytes       int // one header field line without its CRLF
	maxFields           int // header field lines in one head
}

// framing is the method that delimits the body of an accepted request.
type framing int

const (
	framingNone    framing = iota // no body
	framingLength                 // Content-Length bytes
	framingChunked                // chunked transfer coding
)

// headVerdict is the outcome of checkHead.
type headVerdict struct {
	rejection *rejection // nil when the request is accepted
	framing   framing
	length    int64 // body length for framingLength
	// last is set when no request may follow on the connection, because
	// the bytes after the request cannot be framed as HTTP (CONNECT).
	last bool
}

// rejection is an error response that replaces a request. The connection
// closes after it.
type rejection struct {
	status int
	reason string
}

func reject(status int, format string, args ...any) headVerdict {
	return headVerdict{rejection: &rejection{status: status, reason: fmt.Sprintf(format, args...)}}
}

// response returns the rejection as a complete HTTP/1.1 response.
func (r *rejection) response() []byte {
	body := fmt.Sprintf("%d %s: %s\n", r.status, http.StatusText(r.status), r.reason)
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Connection: close\r\nContent-Length: %d\r\n\r\n%s",
		r.status, http.StatusText(r.status), len(body), body)
}

// checkHead checks one complete request head: the request line, the header
// field lines and the empty line that ends them, leading empty lines
// already removed. connectAllowed is true when CONNECT requests may reach a
// handler.
func checkHead(head []byte, limits *headLimits, connectAllowed bool) headVerdict {
	request, rest, verdict := checkFirstLine(head, limits, connectAllowed)
	if verdict.rejection != nil {
		return verdict
	}

	fields, verdict := checkFields(rest, limits)
	if verdict.rejection != nil {
		return verdict
	}
	return frameRequest(request, &fields)
}

// checkFirstLine checks the request line at the start of head, whose field
// lines may not have arrived yet, and returns the bytes after that line.
func checkFirstLine(head []byte, limits *headLimits, connectAllowed bool) (requestLine, []byte, headVerdict) {
	line, rest, ok := cutLine(head)
	if !ok {
		return requestLine{}, nil, reject(http.StatusBadRequest, "request line must end with CRLF")
	}
	if len(line) > limits.maxRequestLineBytes {
		return requestLine{}, nil, reject(http.StatusRequestURITooLong, "request line exceeds %d bytes", limits.maxRequestLineBytes)
	}
	request, verdict := checkRequestLine(line, connectAllowed)
	return request, rest, verdict
}

// frameRequest returns the verdict on an accepted request line and field
// section: the body framing, and whether the connection ends after it.
func frameRequest(request requestLine, fields *framingFields) headVerdict {
	verdict := chooseFraming(request, fields)
	verdict.last = verdict.rejection == nil && request.connect
	return verdict
}

// scanHead is checkHead's fast path: it reads a complete, ordinary head at
// the start of b in one pass and returns its length and checkHead's verdict.
// For anything else, such as an incomplete head, a limit reached or a line
// that checkHead rejects, ok is false and the caller runs checkHead.
func scanHead(b []byte, limits *headLimits, connectAllowed bool) (n int, verdict headVerdict, ok bool) {
	lineEnd := bytes.IndexByte(b, '\r')
	if lineEnd < 0 || lineEnd+1 >= len(b) || b[lineEnd+1] != '\n' || lineEnd > limits.maxRequestLineBytes {
		return 0, headVerdict{}, false
	}
	// An accepted request line contains no CR or LF, so it ends at the first CR.
	request, verdict := checkRequestLine(b[:lineEnd], connectAllowed)
	if verdict.rejection != nil {
		return 0, headVerdict{}, false
	}

	var fields framingFields
	count := 0
	i := lineEnd + 2
	for {
		if i >= limits.maxHeadBytes || i+1 >= len(b) {
			return 0, headVerdict{}, false
		}
		if b[i] == '\r' && b[i+1] == '\n' {
			i += 2
			break
		}

		start := i
		for i < len(b) && tokenBytes[b[i]] {
			i++
		}
		if i == start || i == len(b) || b[i] != ':' {
			return 0, headVerdict{}, false
		}
		colon := i
		for i++; i < len(b) && fieldValueBytes[b[i]]; i++ {
		}
		if i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
			return 0, headVerdict{}, false
		}

		count++
		if count > limits.maxFields || i-start > limits.maxFieldBytes {
			return 0, headVerdict{}, false
		}
		fields.note(b[start:colon], b[colon+1:i])
		i += 2
	}

	if i > limits.maxHeadBytes {
		return 0, headVerdict{}, false
	}
	verdict = frameRequest(request, &fields)
	if verdict.rejection != nil {
		return 0, headVerdict{}, false
	}
	return i, verdict, true
}

// requestLine holds the parts of a request line that decide framing.
type requestLine struct {
	connect bool // CONNECT: the connection ends after the request
	http10  bool // HTTP/1.0: no Transfer-Encoding allowed
}

func checkRequestLine(line []byte, connectAllowed bool) (requestLine, headVerdict) {
	method, rest, ok1 := bytes.Cut(line, []byte{' '})
	target, version, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || bytes.IndexByte(version, ' ') >= 0 {
		return requestLine{}, reject(http.StatusBadRequest, "malformed request line: expected method, target and version separated by single spaces")
	}
	if !isToken(method) {
		return requestLine{}, reject(http.StatusBadRequest, "invalid method")
	}
	if len(version) != 8 || string(version[:5]) != "HTTP/" || !isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		return requestLine{}, reject(http.StatusBadRequest, "invalid HTTP version")
	}
	if version[5] != '1' {
		return requestLine{}, reject(http.StatusHTTPVersionNotSupported, "only HTTP/1.x is served on this connection")
	}
	request := requestLine{connect: string(method) == http.MethodConnect, http10: version[7] == '0'}
	return request, checkTarget(method, target, connectAllowed)
}

// checkTarget checks that the request-target has the form its method
// allows (RFC 9112 section 3.2): authority-form only for CONNECT,
// asterisk-form only for OPTIONS, origin-form or absolute-form otherwise.
func checkTarget(method, target []byte, connectAllowed bool) headVerdict {
	if len(target) == 0 {
		return reject(http.StatusBadRequest, "empty request target")
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return reject(http.StatusBadRequest, "invalid byte 0x%02x in request target", c)
		}
	}
	switch {
	case string(method) == http.MethodConnect:
		if !connectAllowed {
			return reject(http.StatusNotImplemented, "CONNECT is not supported by this server")
		}
		if !isAuthorityForm(target) {
			return reject(http.StatusBadRequest, "CONNECT target must be host:port")
		}
	case len(target) == 1 && target[0] == '*':
		if string(method) != http.MethodOptions {
			return reject(http.StatusBadRequest, "asterisk-form target is allowed only with OPTIONS")
		}
	case target[0] == '/':
	case isAbsoluteForm(target):
	default:
		return reject(http.StatusBadRequest, "request target must be a path starting with / or an absolute URI")
	}
	return headVerdict{}
}

// isAbsoluteForm reports whether target starts with "scheme://".
func isAbsoluteForm(target []byte) bool {
	scheme, _, ok := bytes.Cut(target, []byte("://"))
	if !ok || len(scheme) == 0 || !isAlpha(scheme[0]) {
		return false
	}
	for _, c := range scheme {
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isAuthorityForm reports whether target is host:port, with no userinfo,
// path or query (RFC 9112 section 3.2.3).
func isAuthorityForm(target []byte) bool {
	colon := bytes.LastIndexByte(target, ':')
	if colon <= 0 || colon == len(target)-1 {
		return false
	}
	host, port := target[:colon], target[colon+1:]
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
	}
	if host[0] == '[' {
		return host[len(host)-1] == ']' && len(host) > 2
	}
	for _, c := range host {
		if !isAlpha(c) && !isDigit(c) && bytes.IndexByte([]byte("-._~%!$&'()*+,;="), c) < 0 {
			return false
		}
	}
	return true
}

// framingFields collects the header fields that decide body framing: the
// number of each and the value of the first.
type framingFields struct {
	contentLengths    int
	contentLength     []byte
	transferEncodings int
	transferEncoding  []byte
}

func checkFields(section []byte, limits *headLimits) (framingFields, headVerdict) {
	var fields framingFields
	count := 0
	for {
		line, rest, ok := cutLine(section)
		if !ok {
			return fields, reject(http.StatusBadRequest, "header field line must end with CRLF")
		}
		section = rest
		if len(line) == 0 {
			return fields, headVerdict{}
		}
		count++
		if count > limits.maxFields {
			return fields, reject(http.StatusRequestHeaderFieldsTooLarge, "more than %d header fields", limits.maxFields)
		}
		name, value, verdict := checkField(line, limits)
		if verdict.rejection != nil {
			return fields, verdict
		}
		fields.note(name, value)
	}
}

// note records a field if it is one that decides framing.
func (fields *framingFields) note(name, value []byte) {
	switch {
	case len(name) == len("Content-Length") && bytes.EqualFold(name, []byte("Content-Length")):
		fields.contentLengths++
		fields.contentLength = trimWhitespace(value)
	case len(name) == len("Transfer-Encoding") && bytes.EqualFold(name, []byte("Transfer-Encoding")):
		fields.transferEncodings++
		fields.transferEncoding = trimWhitespace(value)
	}
}

// checkField checks one field line and returns its name and its value.
func checkField(line []byte, limits *headLimits) ([]byte, []byte, headVerdict) {
	if line[0] == ' ' || line[0] == '\t' {
		return nil, nil, reject(http.StatusBadRequest, "obsolete line folding is not accepted")
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if len(line) > limits.maxFieldBytes {
		return nil, nil, reject(http.StatusRequestHeaderFieldsTooLarge, "header field %q exceeds %d bytes", truncate(name, 64), limits.maxFieldBytes)
	}
	if !ok {
		return nil, nil, reject(http.StatusBadRequest, "header field line has no colon")
	}
	if !isToken(name) {
		return nil, nil, reject(http.StatusBadRequest, "invalid header field name %q", truncate(name, 64))
	}
	for _, c := range value {
		if !isFieldValueByte(c) {
			return nil, nil, reject(http.StatusBadRequest, "invalid byte 0x%02x in header field %q", c, name)
		}
	}
	return name, value, headVerdict{}
}

// chooseFraming decides how the body is delimited and rejects every
// combination that a front proxy could frame differently (RFC 9112 section 6).
func chooseFraming(request requestLine, fields *framingFields) headVerdict {
	if fields.transferEncodings > 0 {
		if request.http10 {
			return reject(http.StatusBadRequest, "Transfer-Encoding is not allowed in an HTTP/1.0 request")
		}
		if fields.contentLengths > 0 {
			return reject(http.StatusBadRequest, "request has both Content-Length and Transfer-Encoding")
		}
		if fields.transferEncodings > 1 {
			return reject(http.StatusBadRequest, "request has more than one Transfer-Encoding field")
		}
		return checkTransferEncoding(fields.transferEncoding)
	}
	switch fields.contentLengths {
	case 0:
		return headVerdict{framing: framingNone}
	case 1:
		length, ok := parseContentLength(fields.contentLength)
		if !ok {
			return reject(http.StatusBadRequest, "invalid Content-Length")
		}
		return headVerdict{framing: framingLength, length: length}
	default:
		return reject(http.StatusBadRequest, "request has more than one Content-Length field")
	}
}

// checkTransferEncoding accepts exactly the chunked coding: net/http
// decodes no other, and chunked must be the final coding.
func checkTransferEncoding(value []byte) headVerdict {
	codings := bytes.Split(value, []byte{','})
	for i, coding := range codings {
		coding = trimWhitespace(coding)
		if len(coding) == 0 {
			return reject(http.StatusBadRequest, "empty transfer coding")
		}
		chunked := bytes.EqualFold(coding, []byte("chunked"))
		final := i == len(codings)-1
		if chunked != final {
			return reject(http.StatusBadRequest, "chunked must be the final transfer coding, applied once")
		}
	}
	if len(codings) > 1 {
		return reject(http.StatusNotImplemented, "transfer codings other than chunked are not supported")
	}
	return headVerdict{framing: framingChunked}
}

func parseContentLength(value []byte) (int64, bool) {
	if len(value) == 0 || len(value) > 18 {
		return 0, false
	}
	for _, c := range value {
		if !isDigit(c) {
			return 0, false
		}
	}
	length, err := strconv.ParseInt(string(value), 10, 64)
	return length, err == nil
}

// cutLine splits off the first line of b, which must end with CRLF. A CR
// inside the line is a control byte, which every caller's byte checks
// reject.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	end := bytes.IndexByte(b, '\n')
	if end < 1 || b[end-1] != '\r' {
		return nil, nil, false
	}
	return b[:end-1], b[end+1:], true
}

// trimWhitespace removes optional whitespace (spaces and tabs) around b.
func trimWhitespace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// tokenBytes marks the tchar bytes of RFC 9110 section 5.6.2.
var tokenBytes = func() (table [256]bool) {
	for c := '0'; c <= '9'; c++ {
		table[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		table[c] = true
		table[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		table[c] = true
	}
	return table
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenBytes[c] {
			return false
		}
	}
	return true
}

// isFieldValueByte reports whether c may appear in a field value: visible
// ASCII, space, tab and obs-text; no other control byte.
func isFieldValueByte(c byte) bool {
	return c >= ' ' && c != 0x7f || c == '\t'
}

// fieldValueBytes is isFieldValueByte as a table.
var fieldValueBytes = func() (table [256]bool) {
	for c := range table {
		table[c] = isFieldValueByte(byte(c))
	}
	return table
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
