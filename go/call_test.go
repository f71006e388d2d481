package main

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"testing"
	"time"
)

// decodedRequest is a request read back from the encoding of gobind.h.
type decodedRequest struct {
	Method, Target, Path, RawPath, Query, Protocol string
	Scheme, Host, RemoteAddr, LocalAddr            string
	ContentLength                                  int64
	Params                                         [][2]string
	Header                                         [][2]string
}

var errTruncated = errors.New("encoded request is truncated")

// decodeRequest is the reader side of encodeRequest, as the C++ Request
// constructor implements it.
func decodeRequest(b []byte) (decodedRequest, error) {
	var d decodedRequest
	var ok bool
	for _, field := range []*string{&d.Method, &d.Target, &d.Path, &d.RawPath, &d.Query,
		&d.Protocol, &d.Scheme, &d.Host, &d.RemoteAddr, &d.LocalAddr} {
		if *field, b, ok = readString(b); !ok {
			return d, errTruncated
		}
	}
	if len(b) < 8 {
		return d, errTruncated
	}
	d.ContentLength = int64(binary.NativeEndian.Uint64(b))
	b = b[8:]
	for _, list := range []*[][2]string{&d.Params, &d.Header} {
		var count uint32
		if count, b, ok = readUint32(b); !ok {
			return d, errTruncated
		}
		for range count {
			var name, value string
			if name, b, ok = readString(b); !ok {
				return d, errTruncated
			}
			if value, b, ok = readString(b); !ok {
				return d, errTruncated
			}
			*list = append(*list, [2]string{name, value})
		}
	}
	if len(b) != 0 {
		return d, errors.New("encoded request has trailing bytes")
	}
	return d, nil
}

func sortedPairs(pairs [][2]string) [][2]string {
	sorted := append([][2]string(nil), pairs...)
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i][0] != sorted[j][0] {
			return sorted[i][0] < sorted[j][0]
		}
		return sorted[i][1] < sorted[j][1]
	})
	return sorted
}

func TestEncodeRequestRoundTrip(t *testing.T) {
	r := httptest.NewRequest("POST", "/items/a%2Fb/x?q=1&q=2", nil)
	r.Host = "example.test:8080"
	r.RemoteAddr = "192.0.2.7:41000"
	r.ContentLength = -1
	r.TransferEncoding = []string{"chunked"}
	r.Header = http.Header{
		"Accept":   {"text/plain", "text/html"},
		"X-Binary": {"\x00\xff\xe9"},
	}
	r.SetPathValue("id", "a/b")
	r.SetPathValue("rest", "x")
	got, err := decodeRequest(encodeRequest(nil, r, "127.0.0.1:9000", []string{"id", "rest"}))
	if err != nil {
		t.Fatalf("decodeRequest: %v", err)
	}
	want := decodedRequest{
		Method:        "POST",
		Target:        "/items/a%2Fb/x?q=1&q=2",
		Path:          "/items/a/b/x",
		RawPath:       "/items/a%2Fb/x",
		Query:         "q=1&q=2",
		Protocol:      "HTTP/1.1",
		Scheme:        "http",
		Host:          "example.test:8080",
		RemoteAddr:    "192.0.2.7:41000",
		LocalAddr:     "127.0.0.1:9000",
		ContentLength: -1,
		Params:        [][2]string{{"id", "a/b"}, {"rest", "x"}},
		Header: [][2]string{
			{"Accept", "text/html"},
			{"Accept", "text/plain"},
			{"Host", "example.test:8080"},
			{"Transfer-Encoding", "chunked"},
			{"X-Binary", "\x00\xff\xe9"},
		},
	}
	got.Header = sortedPairs(got.Header)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestEncodeRequestKeepsValueOrder(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header = http.Header{"X-Order": {"3", "1", "2"}}
	got, err := decodeRequest(encodeRequest(nil, r, "", nil))
	if err != nil {
		t.Fatalf("decodeRequest: %v", err)
	}
	var values []string
	for _, field := range got.Header {
		if field[0] == "X-Order" {
			values = append(values, field[1])
		}
	}
	if want := []string{"3", "1", "2"}; !reflect.DeepEqual(values, want) {
		t.Errorf("X-Order values = %q, want %q", values, want)
	}
}

func TestEncodeRequestAppends(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	prefix := []byte("keep")
	encoded := encodeRequest(append([]byte(nil), prefix...), r, "", nil)
	if got := string(encoded[:len(prefix)]); got != "keep" {
		t.Errorf("prefix = %q, want %q", got, "keep")
	}
	if _, err := decodeRequest(encoded[len(prefix):]); err != nil {
		t.Errorf("decodeRequest after prefix: %v", err)
	}
}

func encodeHeader(pairs ...string) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(len(pairs)/2))
	for _, s := range pairs {
		b = appendString(b, s)
	}
	return b
}

func TestDecodeHeader(t *testing.T) {
	full := encodeHeader("content-type", "text/plain", "X-Multi", "1", "x-multi", "2")
	tests := []struct {
		name    string
		block   []byte
		want    http.Header
		wantErr string
	}{
		{"empty block", nil, http.Header{}, ""},
		{"no fields", encodeHeader(), http.Header{}, ""},
		{"canonical names and multiple values", full,
			http.Header{"Content-Type": {"text/plain"}, "X-Multi": {"1", "2"}}, ""},
		{"common names in any spelling", encodeHeader("ETag", `"v1"`, "cache-control", "no-cache", "X-Content-Type-Options", "nosniff"),
			http.Header{"Etag": {`"v1"`}, "Cache-Control": {"no-cache"}, "X-Content-Type-Options": {"nosniff"}}, ""},
		{"short count", []byte{1, 0}, http.Header{}, "invalid response: header block is truncated"},
		{"missing value", encodeHeader("A", "b")[:4+4+1], http.Header{},
			"invalid response: header block is truncated"},
		{"length past end", full[:len(full)-1], http.Header{"Content-Type": {"text/plain"}, "X-Multi": {"1"}},
			"invalid response: header block is truncated"},
		{"count past end", append(binary.NativeEndian.AppendUint32(nil, 2), encodeHeader("A", "b")[4:]...),
			http.Header{"A": {"b"}}, "invalid response: header block is truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			err := decodeHeader(header, tt.block)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("error = %q, want %q", gotErr, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errInvalidResponse) {
				t.Errorf("error %v does not wrap errInvalidResponse", err)
			}
			if !reflect.DeepEqual(header, tt.want) {
				t.Errorf("header = %v, want %v", header, tt.want)
			}
		})
	}
}

func TestDecodeHeaderCopiesBytes(t *testing.T) {
	// The block lives in a buffer that the next request reuses.
	block := encodeHeader("X-Custom", "value one", "Content-Type", "text/plain")
	header := http.Header{}
	if err := decodeHeader(header, block); err != nil {
		t.Fatal(err)
	}
	for i := range block {
		block[i] = 'z'
	}
	want := http.Header{"X-Custom": {"value one"}, "Content-Type": {"text/plain"}}
	if !reflect.DeepEqual(header, want) {
		t.Errorf("header = %v after the block was overwritten, want %v", header, want)
	}
}

// readString reads a length-prefixed string, as the C++ layer decodes one.
func readString(b []byte) (string, []byte, bool) {
	data, rest, ok := readBytes(b)
	return string(data), rest, ok
}

// inlineCallback responds to every request with an inline 200 "ok".
type inlineCallback struct{}

func (inlineCallback) Call(_ uint64, _ []byte, response []byte) (CallResult, int) {
	encoded := binary.NativeEndian.AppendUint32(nil, http.StatusOK)
	encoded = append(encoded, encodeHeader()...)
	encoded = append(encoded, "ok"...)
	return CallOK, copy(response, encoded)
}

// stalledWriter is a ResponseWriter whose body writes wait until release
// is closed. writing is closed at the first one.
type stalledWriter struct {
	*httptest.ResponseRecorder
	writing, release chan struct{}
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	close(w.writing)
	<-w.release
	return w.ResponseRecorder.Write(p)
}

func TestSlotFreedBeforeResponseWrite(t *testing.T) {
	// With one slot, a second callback runs while the first request's
	// response is still being written.
	s, err := NewServer(Config{MaxConcurrentCalls: 1})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	h := &callbackHandler{server: s, callback: inlineCallback{}}
	stalled := &stalledWriter{httptest.NewRecorder(), make(chan struct{}), make(chan struct{})}
	first := make(chan struct{})
	go func() {
		defer close(first)
		h.ServeHTTP(stalled, httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	<-stalled.writing

	second := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(second, httptest.NewRequest(http.MethodGet, "/", nil))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the second request waited for the first response to be written")
	}
	close(stalled.release)
	<-first
	<-done
	if second.Code != http.StatusOK || second.Body.String() != "ok" {
		t.Errorf("second response = %d %q, want 200 \"ok\"", second.Code, second.Body.String())
	}
	if stalled.Code != http.StatusOK || stalled.Body.String() != "ok" {
		t.Errorf("first response = %d %q, want 200 \"ok\"", stalled.Code, stalled.Body.String())
	}
}

func TestConnLocalAddress(t *testing.T) {
	tests := []struct {
		listener string
		fixed    string
	}{
		{"127.0.0.1:8000", "127.0.0.1:8000"},
		{"[::1]:8000", "[::1]:8000"},
		{"0.0.0.0:8000", ""},
		{"[::]:8000", ""},
	}
	for _, tt := range tests {
		address, err := net.ResolveTCPAddr("tcp", tt.listener)
		if err != nil {
			t.Fatal(err)
		}
		if got := fixedLocalAddress(address); got != tt.fixed {
			t.Errorf("fixedLocalAddress(%s) = %q, want %q", tt.listener, got, tt.fixed)
		}
	}
	if got := fixedLocalAddress(&net.UnixAddr{Name: "/tmp/socket", Net: "unix"}); got != "" {
		t.Errorf("fixedLocalAddress(unix socket) = %q, want empty", got)
	}

	// Without a fixed address, the one that ConnContext stored is used.
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), localAddressKey{}, "10.0.0.5:8000"))
	if got := (&Server{}).connLocalAddress(r); got != "10.0.0.5:8000" {
		t.Errorf("connLocalAddress without a fixed address = %q, want the connection's", got)
	}
	if got := (&Server{localAddress: "127.0.0.1:8000"}).connLocalAddress(r); got != "127.0.0.1:8000" {
		t.Errorf("connLocalAddress with a fixed address = %q, want the fixed address", got)
	}
}
