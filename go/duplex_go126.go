//go:build !go1.27

package main

import "net/http"

const fullDuplex = false

// enableFullDuplex does nothing before Go 1.27 (see duplex.go): net/http
// discards the unread body at the first write of the response.
func enableFullDuplex(http.ResponseWriter, *http.Request) {}
