//go:build go1.27

package main

import "net/http"

// fullDuplex is true when enableFullDuplex enables it.
const fullDuplex = true

// enableFullDuplex lets a handler go on reading an HTTP/1 request body
// after it has begun its response, as HTTP/2 always allows. Without it,
// net/http's first write of the response reads and discards up to 256 KiB
// of the unread body, so that a handler that streams a response while it
// reads an upload loses the rest of the upload. The body left unread when
// the handler returns is still discarded, or the connection closed, before
// the next request.
//
// It needs Go 1.27's net/http, which closes the connection whenever that
// last discard fails. Go 1.26 reuses the connection after a discard that
// timed out, and decides from Request.Body, which handlers here replace.
func enableFullDuplex(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 || r.ProtoMajor != 1 {
		return
	}
	_ = http.NewResponseController(w).EnableFullDuplex()
}
