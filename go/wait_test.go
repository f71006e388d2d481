package main

import (
	"testing"
	"time"
)

func TestWaitZeroTimeoutAfterShutdown(t *testing.T) {
	for i := 0; i < 50; i++ {
		server, err := NewServer(Config{})
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		if _, err := server.Start("127.0.0.1:0"); err != nil {
			t.Fatalf("Start: %v", err)
		}
		if err := server.Shutdown(time.Second); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		stopped, err := server.Wait(0)
		if err != nil {
			t.Fatalf("Wait(0): %v", err)
		}
		if !stopped {
			t.Fatalf("Wait(0) after Shutdown, round %d: got stopped=false, want true", i)
		}
	}
}
