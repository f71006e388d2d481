package main

import (
	"net/http"
	"reflect"
	"sync"
	"testing"
)

func TestAccessLogReportsRouterResponses(t *testing.T) {
	s, address := startServer(t, Config{}, map[string]Callback{
		"GET /items/{id}": callbackFunc(func(call uint64, _ []byte) CallResult {
			respond(t, call, http.StatusOK, "item")
			return CallOK
		}),
	})
	var mu sync.Mutex
	var entries []AccessEntry
	s.SetAccessLog(func(entry AccessEntry) {
		mu.Lock()
		defer mu.Unlock()
		entry.RemoteAddr = ""
		entry.Duration = 0
		entries = append(entries, entry)
	})

	for _, target := range []string{"/items/1", "/missing?x=1"} {
		if status, _, _ := get(t, "http://"+address+target); status == 0 {
			t.Fatalf("GET %s failed", target)
		}
	}
	request, _ := http.NewRequest(http.MethodDelete, "http://"+address+"/items/1", nil)
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	response.Body.Close()
	s.Release()

	want := []AccessEntry{
		{Method: "GET", Target: "/missing?x=1", Protocol: "HTTP/1.1", Status: 404, BodyBytes: 19},
		{Method: "DELETE", Target: "/items/1", Protocol: "HTTP/1.1", Status: 405, BodyBytes: 19},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("entries = %+v, want %+v", entries, want)
	}
}
