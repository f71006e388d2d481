package main

import (
	"net/http"
	"runtime"
	"testing"
	"time"
)

// fakeProcs stands in for runtime.GOMAXPROCS and records every change.
type fakeProcs struct {
	n       int
	changes []int
}

func (f *fakeProcs) set(n int) int {
	old := f.n
	if n > 0 {
		f.n = n
		f.changes = append(f.changes, n)
	}
	return old
}

func newFakeProcessors(n int) (*processors, *fakeProcs) {
	f := &fakeProcs{n: n}
	return newProcessors(f.set, true), f
}

// callback records a callback that lasted d and ended at offset at from
// the processors' epoch.
func callback(p *processors, at, d time.Duration) {
	end := p.epoch.Add(at)
	p.callbackEnded(end.Add(-d), end)
}

func TestProcessorsBlockingCallbacks(t *testing.T) {
	p, f := newFakeProcessors(2)

	callback(p, time.Second, 50*time.Microsecond)
	if f.n != 2 || len(f.changes) != 0 {
		t.Fatalf("after a fast callback: GOMAXPROCS %d, changes %v; want 2 and none", f.n, f.changes)
	}

	callback(p, 2*time.Second, 10*time.Millisecond)
	if f.n != 3 {
		t.Fatalf("after a slow callback: GOMAXPROCS %d, want 3", f.n)
	}
	callback(p, 2*time.Second+time.Millisecond, 20*time.Millisecond)
	if len(f.changes) != 1 {
		t.Fatalf("a second slow callback changed GOMAXPROCS again: %v", f.changes)
	}

	// Fast callbacks within the quiet period keep the extra processor.
	callback(p, 2*time.Second+quietPeriod/2, 50*time.Microsecond)
	if f.n != 3 {
		t.Fatalf("a fast callback %v after a slow one: GOMAXPROCS %d, want 3", quietPeriod/2, f.n)
	}

	// The first fast callback after the quiet period gives it back.
	callback(p, 2*time.Second+time.Millisecond+quietPeriod, 50*time.Microsecond)
	if f.n != 2 {
		t.Fatalf("a fast callback %v after the last slow one: GOMAXPROCS %d, want 2", quietPeriod, f.n)
	}
	if want := []int{3, 2}; len(f.changes) != 2 {
		t.Fatalf("changes %v, want %v", f.changes, want)
	}
}

func TestProcessorsQueues(t *testing.T) {
	p, f := newFakeProcessors(1)
	p.queueOpened()
	if f.n != 2 {
		t.Fatalf("one processor and an open queue: GOMAXPROCS %d, want 2", f.n)
	}

	// A blocking callback does not add a second extra processor.
	callback(p, time.Second, 5*time.Millisecond)
	if f.n != 2 {
		t.Fatalf("an open queue and a slow callback: GOMAXPROCS %d, want 2", f.n)
	}
	callback(p, time.Second+quietPeriod, time.Microsecond)
	p.queueClosed()
	if f.n != 1 {
		t.Fatalf("queue closed, callbacks quiet: GOMAXPROCS %d, want 1", f.n)
	}

	// With more than one processor, a queue changes nothing.
	p, f = newFakeProcessors(2)
	p.queueOpened()
	p.queueClosed()
	if len(f.changes) != 0 {
		t.Fatalf("two processors: a queue changed GOMAXPROCS: %v", f.changes)
	}
}

func TestProcessorsLeaveAFixedValue(t *testing.T) {
	f := &fakeProcs{n: 1}
	p := newProcessors(f.set, false)
	callback(p, time.Second, time.Second)
	p.queueOpened()
	if len(f.changes) != 0 {
		t.Fatalf("GOMAXPROCS set by the user was changed: %v", f.changes)
	}
}

// TestSlowHandlerRaisesGOMAXPROCS runs a real server whose callback blocks
// for longer than slowCallback, and checks the process-wide setting.
func TestSlowHandlerRaisesGOMAXPROCS(t *testing.T) {
	if procs.base == 0 {
		t.Skip("GOMAXPROCS is set in the environment")
	}
	defer procs.update(func() { procs.blocking.Store(false) })

	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		time.Sleep(2 * slowCallback)
		respond(t, handle, http.StatusOK, "slept")
		return CallOK
	})
	_, address := startServer(t, Config{}, map[string]Callback{"GET /sleep": callback})
	if status, _, body := get(t, "http://"+address+"/sleep"); status != http.StatusOK || body != "slept" {
		t.Fatalf("GET /sleep: %d %q", status, body)
	}
	if got, want := runtime.GOMAXPROCS(0), procs.base+1; got != want {
		t.Fatalf("GOMAXPROCS after a slow callback: %d, want %d", got, want)
	}
}
