package main

import (
	"net/http"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// fakeProcs replaces runtime.GOMAXPROCS in tests and records every change.
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

// fakeTimer records the function of the last time.AfterFunc call.
type fakeTimer struct {
	period time.Duration
	fire   func()
}

func (f *fakeTimer) afterFunc(d time.Duration, fn func()) *time.Timer {
	f.period, f.fire = d, fn
	return nil
}

func newFakeProcessors(n int) (*processors, *fakeProcs, *fakeTimer) {
	f, timer := &fakeProcs{n: n}, &fakeTimer{}
	return newProcessors(f.set, timer.afterFunc, ""), f, timer
}

// callback records a callback that lasted d and ended at offset at from
// the processors' epoch.
func callback(p *processors, at, d time.Duration) {
	end := p.epoch.Add(at)
	p.callbackEnded(end.Add(-d), end)
}

// slowBurst records burstSlowCallbacks callbacks of 5 ms, the last one
// ending at offset at from the processors' epoch.
func slowBurst(p *processors, at time.Duration) {
	for i := burstSlowCallbacks - 1; i >= 0; i-- {
		callback(p, at-time.Duration(i)*time.Millisecond, 5*time.Millisecond)
	}
}

func TestProcessorsLoneSlowCallbacks(t *testing.T) {
	p, f, _ := newFakeProcessors(1)
	for i := range 10 {
		callback(p, time.Duration(i)*burstWindow*11/10, 5*time.Millisecond)
	}
	if len(f.changes) != 0 {
		t.Fatalf("slow callbacks %v apart changed GOMAXPROCS: %v", burstWindow*11/10, f.changes)
	}
	slowBurst(p, 20*time.Second)
	if f.n != 2 {
		t.Fatalf("after a burst of slow callbacks: GOMAXPROCS %d, want 2", f.n)
	}
}

func TestProcessorsSlowCallbacks(t *testing.T) {
	p, f, timer := newFakeProcessors(2)

	callback(p, time.Second, 50*time.Microsecond)
	if f.n != 2 || len(f.changes) != 0 {
		t.Fatalf("after a fast callback: GOMAXPROCS %d, changes %v; want 2 and none", f.n, f.changes)
	}

	slowBurst(p, 2*time.Second)
	if f.n != 3 {
		t.Fatalf("after a burst of slow callbacks: GOMAXPROCS %d, want 3", f.n)
	}
	if timer.period != holdPeriod {
		t.Fatalf("hold timer set for %v, want %v", timer.period, holdPeriod)
	}
	callback(p, 2*time.Second+time.Millisecond, 20*time.Millisecond)
	if len(f.changes) != 1 {
		t.Fatalf("a second slow callback changed GOMAXPROCS again: %v", f.changes)
	}

	timer.fire()
	if f.n != 2 {
		t.Fatalf("after the hold: GOMAXPROCS %d, want 2", f.n)
	}

	// A slow callback that started during the hold may have been slow
	// only because it shared the CPU with the extra processor.
	ended := time.Duration(p.holdEnded.Load())
	slowBurst(p, ended+time.Millisecond)
	if f.n != 2 {
		t.Fatalf("slow callbacks that started during the hold: GOMAXPROCS %d, want 2", f.n)
	}
	slowBurst(p, ended+10*time.Millisecond)
	if f.n != 3 {
		t.Fatalf("slow callbacks that started after the hold: GOMAXPROCS %d, want 3", f.n)
	}
	if want := []int{3, 2, 3}; !reflect.DeepEqual(f.changes, want) {
		t.Fatalf("changes %v, want %v", f.changes, want)
	}
}

func TestProcessorsQueues(t *testing.T) {
	p, f, timer := newFakeProcessors(1)
	p.queueOpened()
	if f.n != 2 {
		t.Fatalf("one processor and an open queue: GOMAXPROCS %d, want 2", f.n)
	}

	// Slow callbacks do not add a second extra processor.
	slowBurst(p, time.Second)
	if f.n != 2 {
		t.Fatalf("an open queue and a slow callback: GOMAXPROCS %d, want 2", f.n)
	}
	timer.fire()
	p.queueClosed()
	if f.n != 1 {
		t.Fatalf("queue closed after the hold: GOMAXPROCS %d, want 1", f.n)
	}

	// With more than one processor, a queue changes nothing.
	p, f, _ = newFakeProcessors(2)
	p.queueOpened()
	p.queueClosed()
	if len(f.changes) != 0 {
		t.Fatalf("two processors: a queue changed GOMAXPROCS: %v", f.changes)
	}
}

func TestProcessorsEnvironmentSetting(t *testing.T) {
	for _, tc := range []struct {
		setting    string
		adjustable bool
	}{
		{"", true},
		{"1", false},
		{"4", false},
		{"0", true},
		{"-2", true},
		{"abc", true},
	} {
		f, timer := &fakeProcs{n: 1}, &fakeTimer{}
		p := newProcessors(f.set, timer.afterFunc, tc.setting)
		slowBurst(p, time.Second)
		p.queueOpened()
		if changed := len(f.changes) > 0; changed != tc.adjustable {
			t.Errorf("GOMAXPROCS=%q: changes %v, want changes: %v", tc.setting, f.changes, tc.adjustable)
		}
	}
}

// TestSlowHandlerRaisesGOMAXPROCS runs a real server whose callback blocks
// for longer than slowCallback, calls it burstSlowCallbacks times and
// checks the process-wide setting.
func TestSlowHandlerRaisesGOMAXPROCS(t *testing.T) {
	if procs.base == 0 {
		t.Skip("GOMAXPROCS is set in the environment")
	}
	defer procs.endHold()

	callback := callbackFunc(func(handle uint64, _ []byte) CallResult {
		time.Sleep(2 * slowCallback)
		respond(t, handle, http.StatusOK, "slept")
		return CallOK
	})
	_, address := startServer(t, Config{}, map[string]Callback{"GET /sleep": callback})
	for range burstSlowCallbacks {
		if status, _, body := get(t, "http://"+address+"/sleep"); status != http.StatusOK || body != "slept" {
			t.Fatalf("GET /sleep: %d %q", status, body)
		}
	}
	if got, want := runtime.GOMAXPROCS(0), procs.base+1; got != want {
		t.Fatalf("GOMAXPROCS after a slow callback: %d, want %d", got, want)
	}
}
