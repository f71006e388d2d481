// Command gohello is the pure-Go baseline of the benchmarks: a net/http
// server with the same timeouts as gobind's defaults that serves every
// benchmark workload. It speaks HTTP/1.1 and, with prior knowledge, HTTP/2
// over cleartext (h2c).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

var (
	hello    = []byte("helloworld")
	body10KB = bytes.Repeat([]byte("x"), 10*1024)
	body1MB  = bytes.Repeat([]byte("x"), 1024*1024)
)

// user is the JSON document of the "GET /users/{id}" workload.
type user struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Email string   `json:"email"`
	Tags  []string `json:"tags"`
}

func main() {
	address := flag.String("address", "127.0.0.1:0", "listen address")
	flag.Parse()

	server := &http.Server{
		Handler:           newMux(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       75 * time.Second,
		MaxHeaderBytes:    64 << 10,
		Protocols:         new(http.Protocols),
	}
	server.Protocols.SetHTTP1(true)
	server.Protocols.SetUnencryptedHTTP2(true)

	listener, err := net.Listen("tcp", *address)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", listener.Addr())
	log.Fatal(server.Serve(listener))
}

func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, "text/plain", hello)
	})
	mux.HandleFunc("GET /10k", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, "application/octet-stream", body10KB)
	})
	mux.HandleFunc("GET /1m", func(w http.ResponseWriter, r *http.Request) {
		writeBytes(w, "application/octet-stream", body1MB)
	})
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		// Streamed back as it is read: no Content-Length, so chunked. Without
		// full duplex, HTTP/1 closes the body once the response starts.
		http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		writeBytes(w, "text/plain", hello)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		writeBytes(w, "text/plain", hello)
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			http.Error(w, "invalid user id", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(user{
			ID:    id,
			Name:  "user" + strconv.Itoa(id),
			Email: "user" + strconv.Itoa(id) + "@example.com",
			Tags:  []string{"bench", "json"},
		})
	})
	return mux
}

func writeBytes(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}
