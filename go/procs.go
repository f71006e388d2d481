package main

import (
	"os"
	"runtime"
	"strconv"
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
//   - for holdPeriod after burstSlowCallbacks callbacks of slowCallback or
//     longer ended within burstWindow. A lone slow callback is more often a
//     first request, a garbage collection or a thread that lost the CPU
//     than a handler that blocks. A Flask app with a fast route was 6%
//     slower when every lone slow callback added the processor. While two
//     threads share one CPU a fast callback can last a millisecond too, so
//     only callbacks that started after the last hold ended count;
//   - while a queue is open in a process with one processor. ASGI on one
//     CPU served 14k requests per second with one processor and 23k with
//     two, and its fast handler did not slow down.
//
// A GOMAXPROCS environment variable that Go accepts (a positive integer)
// is the user's choice and stays as set.

const (
	slowCallback       = time.Millisecond
	burstSlowCallbacks = 3
	burstWindow        = 100 * time.Millisecond
	holdPeriod         = 5 * time.Second
)

// processors adjusts GOMAXPROCS for blocking callbacks and open queues.
type processors struct {
	// set is runtime.GOMAXPROCS and afterFunc is time.AfterFunc, both
	// replaced in tests.
	set       func(int) int
	afterFunc func(time.Duration, func()) *time.Timer
	// base is GOMAXPROCS before any change, or 0 when it is fixed.
	base int
	// epoch is the origin of holdEnded, read from the monotonic clock.
	epoch time.Time

	// holding is true for holdPeriod after a burst of slow callbacks.
	holding atomic.Bool
	// holdEnded is the end of the last hold, in nanoseconds since epoch.
	holdEnded atomic.Int64

	mu     sync.Mutex // serializes changes of GOMAXPROCS and guards the fields below
	queues int        // open queues
	// burstStart is the end of the first slow callback of the current
	// burstWindow, in nanoseconds since epoch, and burstSlow counts the
	// slow callbacks in it.
	burstStart int64
	burstSlow  int
}

var procs = newProcessors(runtime.GOMAXPROCS, time.AfterFunc, os.Getenv("GOMAXPROCS"))

// newProcessors returns the adjuster of a process whose GOMAXPROCS
// environment variable is setting.
func newProcessors(set func(int) int, afterFunc func(time.Duration, func()) *time.Timer, setting string) *processors {
	p := &processors{set: set, afterFunc: afterFunc, epoch: time.Now()}
	if n, err := strconv.Atoi(setting); err != nil || n <= 0 {
		p.base = set(0)
	}
	return p
}

// callbackEnded records a callback that started at start and ended at end.
// For a fast callback it only compares durations.
func (p *processors) callbackEnded(start, end time.Time) {
	if p.base == 0 || end.Sub(start) < slowCallback || p.holding.Load() {
		return
	}
	if int64(start.Sub(p.epoch)) < p.holdEnded.Load() {
		// It ran, at least in part, with the extra processor.
		return
	}
	now := int64(end.Sub(p.epoch))
	p.update(func() {
		if p.holding.Load() {
			return
		}
		if time.Duration(now-p.burstStart) > burstWindow {
			p.burstStart, p.burstSlow = now, 0
		}
		p.burstSlow++
		if p.burstSlow >= burstSlowCallbacks {
			p.holding.Store(true)
			p.afterFunc(holdPeriod, p.endHold)
		}
	})
}

// endHold removes the extra processor that a burst of slow callbacks added.
func (p *processors) endHold() {
	p.update(func() {
		p.holding.Store(false)
		p.holdEnded.Store(int64(time.Since(p.epoch)))
	})
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
	if p.holding.Load() || (p.queues > 0 && p.base == 1) {
		want++
	}
	if p.set(0) != want {
		p.set(want)
	}
}
