package keygate_test

import (
	"testing"

	"github.com/keygate/keygate"
)

func TestRateWindow(t *testing.T) {
	tests := []struct {
		burst int64
		rate  float64
		want  int64
	}{
		{10, 5, 2},    // free
		{200, 100, 2}, // pro
		{5, 5, 1},
		{3, 2, 2},   // 1.5 s, rounded up: never claims more than the rate
		{1, 0.5, 2}, // slower than one a second
		{1, 1.0 / 3, 3},
		{1, 1000, 1}, // under a second: at least 1
		{0, 5, 1},
		{10, 0, 1},
	}
	for _, tt := range tests {
		got := keygate.LimitResult{RateLimit: tt.burst, RatePerSecond: tt.rate}.RateWindow()
		if got != tt.want {
			t.Errorf("burst %d at %v/s: got window %d, want %d", tt.burst, tt.rate, got, tt.want)
		}
	}
}
