package main

import (
	"sync"
	"unsafe"
)

// registry maps handles to values so that C code holds integers, never Go
// pointers. A handle packs a slot index and a generation counter, so a stale
// handle (its slot freed and reused) is detected instead of reaching the new
// value. Zero is never a valid handle.
//
// The slots are spread over shards with a lock each, chosen by the value's
// address. Requests on two processors then rarely share a lock, and a
// processor that reuses its pooled values keeps using the same shard, whose
// lock stays in its own cache.
type registry[T any] struct {
	shards [registryShards]registryShard[T]
}

const (
	registryShardBits = 4
	registryShards    = 1 << registryShardBits
)

// registryShard is one lock and the slots it guards.
type registryShard[T any] struct {
	mu    sync.Mutex
	slots []registrySlot[T]
	free  []uint32
	// The padding keeps two shards off the same pair of cache lines.
	_ [128 - unsafe.Sizeof(sync.Mutex{}) - 2*unsafe.Sizeof([]int{})]byte
}

type registrySlot[T any] struct {
	generation uint32
	value      *T
}

// add stores value and returns its handle.
func (r *registry[T]) add(value *T) uint64 {
	// Fibonacci hashing of the address picks the shard.
	hash := uint64(uintptr(unsafe.Pointer(value))) * 0x9e3779b97f4a7c15
	shardIndex := uint32(hash >> (64 - registryShardBits))
	shard := &r.shards[shardIndex]
	shard.mu.Lock()
	defer shard.mu.Unlock()

	var index uint32
	if n := len(shard.free); n > 0 {
		index = shard.free[n-1]
		shard.free = shard.free[:n-1]
	} else {
		shard.slots = append(shard.slots, registrySlot[T]{})
		index = uint32(len(shard.slots) - 1)
	}
	slot := &shard.slots[index]
	slot.generation++
	if slot.generation == 0 {
		slot.generation = 1
	}
	slot.value = value
	return uint64(slot.generation)<<32 | uint64(index<<registryShardBits|shardIndex) + 1
}

// lookup splits handle into its shard, slot index and generation.
func (r *registry[T]) lookup(handle uint64) (shard *registryShard[T], index uint32, generation uint32) {
	packed := uint32(handle) - 1
	return &r.shards[packed&(registryShards-1)], packed >> registryShardBits, uint32(handle >> 32)
}

// get returns the value of handle, or nil when the handle is unknown or stale.
func (r *registry[T]) get(handle uint64) *T {
	shard, index, generation := r.lookup(handle)
	shard.mu.Lock()
	defer shard.mu.Unlock()

	if index >= uint32(len(shard.slots)) {
		return nil
	}
	slot := &shard.slots[index]
	if slot.generation != generation || slot.value == nil {
		return nil
	}
	return slot.value
}

// remove deletes handle, so a later get of the same handle returns nil.
func (r *registry[T]) remove(handle uint64) {
	shard, index, generation := r.lookup(handle)
	shard.mu.Lock()
	defer shard.mu.Unlock()

	if index >= uint32(len(shard.slots)) {
		return
	}
	slot := &shard.slots[index]
	if slot.generation != generation || slot.value == nil {
		return
	}
	slot.value = nil
	shard.free = append(shard.free, index)
}

// len returns the number of values stored.
func (r *registry[T]) len() int {
	n := 0
	for i := range r.shards {
		shard := &r.shards[i]
		shard.mu.Lock()
		n += len(shard.slots) - len(shard.free)
		shard.mu.Unlock()
	}
	return n
}
