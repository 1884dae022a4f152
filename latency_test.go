package keygate_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate"
)

func TestLatencyBucket(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0}, {time.Microsecond, 0}, {1001 * time.Nanosecond, 1}, {1414 * time.Nanosecond, 1}, {1415 * time.Nanosecond, 2},
		{2 * time.Microsecond, 2}, {time.Millisecond, 20}, {time.Second, 40}, {time.Hour, keygate.LatencyBuckets - 1},
	} {
		if got := keygate.LatencyBucket(tt.d); got != tt.want {
			t.Errorf("LatencyBucket(%s): got %d, want %d", tt.d, got, tt.want)
		}
	}
}

// A percentile read from the histogram is within one bucket (a factor
// of √2) of the exact one, and histograms merge by adding counts: the
// merge of two halves equals the histogram of the whole.
func TestLatencyHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var whole, a, b keygate.LatencyHistogram
	var exact []time.Duration
	for i := range 10_000 {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		exact = append(exact, d)
		whole.Observe(d)
		if i%2 == 0 {
			a.Observe(d)
		} else {
			b.Observe(d)
		}
	}
	a.Merge(b)
	if diff := cmp.Diff(whole, a); diff != "" {
		t.Errorf("merged halves (-whole +merged):\n%s", diff)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		want := exact[int(q*float64(len(exact)))-1]
		got := whole.Quantile(q)
		if ratio := float64(got) / float64(want); ratio < 1/1.42 || ratio > 1.42 {
			t.Errorf("Quantile(%v): got %s, exact %s", q, got, want)
		}
	}
	p := whole.Percentiles()
	if p == nil || !(p.P50 < p.P95 && p.P95 < p.P99) {
		t.Errorf("Percentiles: got %+v, want increasing", p)
	}
	if keygate.LatencyHistogram(nil).Percentiles() != nil || keygate.LatencyHistogram(nil).Quantile(0.5) != 0 {
		t.Error("an empty histogram has no percentiles")
	}
}

func TestLatencyHistogramEncoding(t *testing.T) {
	for _, h := range []keygate.LatencyHistogram{nil, {0, 0, 5}, {1}, {0, 0, 0, 7, 0, 300000, 0, 0}} {
		got, err := keygate.ParseLatencyHistogram(h.AppendBinary(nil))
		if err != nil {
			t.Fatalf("ParseLatencyHistogram(%v): %v", h, err)
		}
		if want := h.Trim(); !slices.Equal(got, want) {
			t.Errorf("round trip of %v: got %v, want %v", h, got, want)
		}
	}
	for _, bad := range [][]byte{{0x80}, {byte(keygate.LatencyBuckets)}, append([]byte{0}, make([]byte, keygate.LatencyBuckets+1)...)} {
		if _, err := keygate.ParseLatencyHistogram(bad); err == nil {
			t.Errorf("ParseLatencyHistogram(%v): got no error", bad)
		}
	}
}
