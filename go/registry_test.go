package main

import (
	"sync"
	"testing"
)

func TestRegistryAddGet(t *testing.T) {
	var r registry[string]
	values := []string{"a", "b", "c"}
	handles := make([]uint64, len(values))
	for i := range values {
		handles[i] = r.add(&values[i])
	}
	for i, handle := range handles {
		if handle == 0 {
			t.Fatalf("add(%q) = 0, want a nonzero handle", values[i])
		}
		got := r.get(handle)
		if got != &values[i] {
			t.Errorf("get(%#x) = %v, want pointer to %q", handle, got, values[i])
		}
	}
}

func TestRegistryRemove(t *testing.T) {
	var r registry[int]
	value := 1
	handle := r.add(&value)
	r.remove(handle)
	if got := r.get(handle); got != nil {
		t.Errorf("get after remove = %v, want nil", *got)
	}
	// A second remove of the same handle is a no-op.
	r.remove(handle)
	shard, _, _ := r.lookup(handle)
	if got := len(shard.free); got != 1 {
		t.Errorf("free slots after double remove = %d, want 1", got)
	}
	if got := r.len(); got != 0 {
		t.Errorf("len after double remove = %d, want 0", got)
	}
}

func TestRegistryLen(t *testing.T) {
	var r registry[int]
	values := make([]int, 100)
	handles := make([]uint64, len(values))
	for i := range values {
		handles[i] = r.add(&values[i])
	}
	if got := r.len(); got != 100 {
		t.Fatalf("len after 100 adds = %d, want 100", got)
	}
	used := map[*registryShard[int]]bool{}
	for _, handle := range handles[:40] {
		shard, _, _ := r.lookup(handle)
		used[shard] = true
		r.remove(handle)
	}
	if got := r.len(); got != 60 {
		t.Errorf("len after 40 removes = %d, want 60", got)
	}
	if len(used) < 2 {
		t.Errorf("40 values went to %d shards, want them spread over several", len(used))
	}
}

// Run with -race: handles of concurrent goroutines never reach each other's values.
func TestRegistryConcurrent(t *testing.T) {
	var r registry[int]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			values := make([]int, 64)
			for round := range 200 {
				handles := make([]uint64, len(values))
				for i := range values {
					values[i] = g*1000 + i
					handles[i] = r.add(&values[i])
				}
				for i, handle := range handles {
					if got := r.get(handle); got != &values[i] {
						t.Errorf("round %d: get of value %d returned another value", round, values[i])
						return
					}
					r.remove(handle)
				}
			}
		}()
	}
	wg.Wait()
	if got := r.len(); got != 0 {
		t.Errorf("len after every remove = %d, want 0", got)
	}
}

func TestRegistryStaleHandle(t *testing.T) {
	var r registry[int]
	// The same value lands in the same shard, so its slot is reused.
	value := 1
	stale := r.add(&value)
	r.remove(stale)
	fresh := r.add(&value)

	if uint32(fresh) != uint32(stale) {
		t.Fatalf("slot of fresh handle = %d, want reused slot %d", uint32(fresh), uint32(stale))
	}
	if fresh == stale {
		t.Fatalf("fresh handle %#x equals stale handle", fresh)
	}
	if got := r.get(stale); got != nil {
		t.Errorf("get(stale) = %d, want nil", *got)
	}
	if got := r.get(fresh); got != &value {
		t.Errorf("get(fresh) = %v, want the value", got)
	}
	// Removing through the stale handle must not free the new value.
	r.remove(stale)
	if got := r.get(fresh); got != &value {
		t.Errorf("get(fresh) after remove(stale) = %v, want the value", got)
	}
}

func TestRegistryInvalidHandles(t *testing.T) {
	var r registry[int]
	value := 7
	valid := r.add(&value)
	tests := []struct {
		name   string
		handle uint64
	}{
		{"zero", 0},
		{"generation only", valid &^ 0xffffffff},
		{"other shard", valid + 1},
		{"index past end", valid + registryShards},
		{"wrong generation", valid + 1<<32},
		{"all bits", ^uint64(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.get(tt.handle); got != nil {
				t.Errorf("get(%#x) = %d, want nil", tt.handle, *got)
			}
			r.remove(tt.handle)
			if got := r.get(valid); got != &value {
				t.Errorf("get(valid) after remove(%#x) = %v, want the value", tt.handle, got)
			}
		})
	}
}

func TestRegistryGenerationSkipsZero(t *testing.T) {
	var r registry[int]
	value := 3
	handle := r.add(&value)
	shard, index, _ := r.lookup(handle)
	r.remove(handle)
	shard.slots[index].generation = ^uint32(0)
	handle = r.add(&value)
	if got := uint32(handle >> 32); got != 1 {
		t.Errorf("generation after wraparound = %d, want 1", got)
	}
	if handle == 0 {
		t.Errorf("handle after wraparound = 0, want nonzero")
	}
}
