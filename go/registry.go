package main

import "sync"

// registry maps handles to values so that C code holds integers, never Go
// pointers. A handle packs a slot index and a generation counter, so a stale
// handle (its slot freed and reused) is detected instead of reaching the new
// value. Zero is never a valid handle.
type registry[T any] struct {
	mu    sync.Mutex
	slots []registrySlot[T]
	free  []uint32
}

type registrySlot[T any] struct {
	generation uint32
	value      *T
}

// add stores value and returns its handle.
func (r *registry[T]) add(value *T) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()

	var index uint32
	if n := len(r.free); n > 0 {
		index = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		r.slots = append(r.slots, registrySlot[T]{})
		index = uint32(len(r.slots) - 1)
	}
	slot := &r.slots[index]
	slot.generation++
	if slot.generation == 0 {
		slot.generation = 1
	}
	slot.value = value
	return uint64(slot.generation)<<32 | uint64(index+1)
}

// get returns the value of handle, or nil when the handle is unknown or stale.
func (r *registry[T]) get(handle uint64) *T {
	index, generation := uint32(handle)-1, uint32(handle>>32)
	r.mu.Lock()
	defer r.mu.Unlock()

	if uint64(index) >= uint64(len(r.slots)) {
		return nil
	}
	slot := &r.slots[index]
	if slot.generation != generation || slot.value == nil {
		return nil
	}
	return slot.value
}

// remove deletes handle, so a later get of the same handle returns nil.
func (r *registry[T]) remove(handle uint64) {
	index, generation := uint32(handle)-1, uint32(handle>>32)
	r.mu.Lock()
	defer r.mu.Unlock()

	if uint64(index) >= uint64(len(r.slots)) {
		return
	}
	slot := &r.slots[index]
	if slot.generation != generation || slot.value == nil {
		return
	}
	slot.value = nil
	r.free = append(r.free, index)
}
