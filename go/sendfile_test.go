package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
)

func TestSendFile(t *testing.T) {
	content := make([]byte, 100_000)
	for i := range content {
		content[i] = byte(i)
	}
	tests := []struct {
		name   string
		skip   int64 // bytes read from the file before SendFile
		count  int64
		length int // Content-Length the handler declares; -1: none
		want   []byte
	}{
		{"whole file", 0, -1, len(content), content},
		{"from offset", 1000, -1, len(content) - 1000, content[1000:]},
		{"first bytes", 0, 5000, 5000, content[:5000]},
		{"chunked", 0, -1, -1, content},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			file, err := os.CreateTemp(t.TempDir(), "body")
			if err != nil {
				t.Fatal(err)
			}
			defer file.Close()
			if _, err := file.Write(content); err != nil {
				t.Fatal(err)
			}
			if _, err := file.Seek(test.skip, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			server := &Server{config: Config{WriteTimeout: defaultWriteTimeout}}
			handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if test.length >= 0 {
					w.Header().Set("Content-Length", strconv.Itoa(test.length))
				}
				call := &Call{server: server, writer: w, request: r}
				if _, err := call.SendFile(http.StatusOK, nil, int(file.Fd()), test.count); err != nil {
					t.Errorf("SendFile: %v", err)
				}
			})
			httpServer := httptest.NewServer(handler)
			defer httpServer.Close()

			response, err := http.Get(httpServer.URL)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(response.Body)
			response.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(test.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(test.want))
			}
		})
	}
}

func TestSendFileBadDescriptor(t *testing.T) {
	server := &Server{config: Config{WriteTimeout: defaultWriteTimeout}}
	recorder := httptest.NewRecorder()
	call := &Call{server: server, writer: recorder, request: httptest.NewRequest("GET", "/", nil)}
	_, err := call.SendFile(http.StatusOK, nil, -1, -1)
	if err == nil || err.Error() != "dup: bad file descriptor" {
		t.Errorf("got error %v, want dup: bad file descriptor", err)
	}
}
