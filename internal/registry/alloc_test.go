//go:build !race

package registry

import (
	"context"
	"testing"
)

// The race detector allocates on its own, so the allocation count is only
// checked in normal builds.

// TestValidateDoesNotAllocate keeps the happy path of the ingest check free
// of allocations.
func TestValidateDoesNotAllocate(t *testing.T) {
	kv := &memKV{}
	r, err := Open(context.Background(), kv, ModeOpen)
	if err != nil {
		t.Fatal(err)
	}
	registerAll(t, r)
	batch := benchBatch()
	for _, m := range batch { // first sight of each instance value is recorded
		if iss := r.Validate(m); iss != nil {
			t.Fatal(iss)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range batch {
			_ = r.Validate(m)
		}
	})
	if allocs != 0 {
		t.Fatalf("Validate allocates %v times per batch on the happy path", allocs)
	}
}
