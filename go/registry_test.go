package main

import "testing"

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
	if got := len(r.free); got != 1 {
		t.Errorf("free slots after double remove = %d, want 1", got)
	}
}

func TestRegistryStaleHandle(t *testing.T) {
	var r registry[int]
	first, second := 1, 2
	stale := r.add(&first)
	r.remove(stale)
	fresh := r.add(&second)

	if uint32(fresh) != uint32(stale) {
		t.Fatalf("slot of fresh handle = %d, want reused slot %d", uint32(fresh), uint32(stale))
	}
	if fresh == stale {
		t.Fatalf("fresh handle %#x equals stale handle", fresh)
	}
	if got := r.get(stale); got != nil {
		t.Errorf("get(stale) = %d, want nil", *got)
	}
	if got := r.get(fresh); got != &second {
		t.Errorf("get(fresh) = %v, want pointer to %d", got, second)
	}
	// Removing through the stale handle must not free the new value.
	r.remove(stale)
	if got := r.get(fresh); got != &second {
		t.Errorf("get(fresh) after remove(stale) = %v, want pointer to %d", got, second)
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
		{"index past end", valid + 1},
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
	r.slots = []registrySlot[int]{{generation: ^uint32(0)}}
	r.free = []uint32{0}
	handle := r.add(&value)
	if got := uint32(handle >> 32); got != 1 {
		t.Errorf("generation after wraparound = %d, want 1", got)
	}
	if handle == 0 {
		t.Errorf("handle after wraparound = 0, want nonzero")
	}
}
