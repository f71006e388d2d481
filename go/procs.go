package main

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Go runs goroutines on GOMAXPROCS processors, one per CPU the process may
// use. A goroutine that calls into C keeps its processor until the call
// returns or Go's monitor thread takes the processor back, after 20 µs at
// the soonest and often after milliseconds. A thread of C that called into
// Go and returned keeps one the same way, as the ASGI event loop does while
// it runs Python.
//
// On one CPU, a handler that blocks in its callback (a sleep, a database
// query) thus leaves the network waiting for the monitor. Measured on one
// CPU at 512 connections, a handler that sleeps 10 ms served 3k to 5k
// requests per second with the CPU mostly idle, and 14k to 19k with a
// second processor. The second processor costs a fast handler about 15%
// there, because two threads share the CPU, so it is added only:
//
//   - while callbacks block: from a callback of slowCallback or longer
//     until none for quietPeriod;
//   - while a queue is open in a process with one processor. ASGI on one
//     CPU served 14k requests per second with one processor and 23k with
//     two, and its fast handler did not slow down.
//
// A GOMAXPROCS environment variable is the user's choice and stays as set.

const (
	slowCallback = time.Millisecond
	quietPeriod  = 2 * time.Second
)

// processors adjusts GOMAXPROCS for blocking callbacks and open queues.
type processors struct {
	// set is runtime.GOMAXPROCS, replaced in tests.
	set func(int) int
	// base is GOMAXPROCS before any change, or 0 when it is fixed.
	base int
	// epoch is the origin of lastSlow, read from the monotonic clock.
	epoch time.Time

	// lastSlow is the end of the last slow callback, in nanoseconds
	// since epoch.
	lastSlow atomic.Int64
	// blocking is true from a slow callback until quietPeriod without one.
	blocking atomic.Bool

	mu     sync.Mutex // serializes changes of GOMAXPROCS
	queues int        // open queues
}

var procs = newProcessors(runtime.GOMAXPROCS, os.Getenv("GOMAXPROCS") == "")

func newProcessors(set func(int) int, adjustable bool) *processors {
	p := &processors{set: set, epoch: time.Now()}
	if adjustable {
		p.base = set(0)
	}
	return p
}

// callbackEnded records a callback that started at start and ended at end.
// The common case, a fast callback with no extra processor, reads one
// atomic value.
func (p *processors) callbackEnded(start, end time.Time) {
	if p.base == 0 {
		return
	}
	now := int64(end.Sub(p.epoch))
	if end.Sub(start) >= slowCallback {
		p.lastSlow.Store(now)
		if !p.blocking.Load() {
			p.update(func() { p.blocking.Store(true) })
		}
		return
	}
	if p.blocking.Load() && p.quietSince(now) {
		p.update(func() {
			// A slow callback may have ended since the test above.
			if p.quietSince(now) {
				p.blocking.Store(false)
			}
		})
	}
}

// quietSince reports whether no slow callback ended in the quietPeriod
// before now.
func (p *processors) quietSince(now int64) bool {
	return time.Duration(now-p.lastSlow.Load()) >= quietPeriod
}

// queueOpened and queueClosed count the open queues.
func (p *processors) queueOpened() {
	p.update(func() { p.queues++ })
}

func (p *processors) queueClosed() {
	p.update(func() { p.queues-- })
}

// update applies change to the state and sets GOMAXPROCS to match it.
func (p *processors) update(change func()) {
	if p.base == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	change()
	want := p.base
	if p.blocking.Load() || (p.queues > 0 && p.base == 1) {
		want++
	}
	if p.set(0) != want {
		p.set(want)
	}
}
