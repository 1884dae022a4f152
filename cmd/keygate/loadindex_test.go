package main

import (
	"runtime/debug"
	"testing"
)

// The load's GC settings apply while it runs and are put back after,
// whatever the operator had set; a collector turned off stays off.
func TestLoadGCRestores(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(300 << 20))
	restore := loadGC()
	if got := debug.SetGCPercent(-1); got != loadGCPercent {
		t.Errorf("GC percent while loading: %d, want %d", got, loadGCPercent)
	}
	debug.SetGCPercent(loadGCPercent)
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("memory limit while loading: %d, want the operator's lower 300 MiB", got)
	}
	restore()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("GC percent after loading: %d, want 150 back", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("memory limit after loading: %d, want 300 MiB back", got)
	}

	debug.SetGCPercent(-1)
	restore = loadGC()
	if got := debug.SetGCPercent(-1); got != -1 {
		t.Errorf("GC percent while loading with GOGC=off: %d, want -1 (off)", got)
	}
	restore()
}
