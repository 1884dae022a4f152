package keygate

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// LatencyBuckets is the number of buckets of a LatencyHistogram. Bucket 0
// holds latencies up to 1µs; bucket i holds those in (2^((i-1)/2) µs,
// 2^(i/2) µs], so each bucket is √2 times as wide as the one before; the
// last one holds everything above 2^((LatencyBuckets-2)/2) µs (134 s).
// The buckets are fixed, so histograms from any hours, days and instances
// merge by adding their counts; a percentile read from one is off by at
// most the width of its bucket (±19%), and by much less in practice since
// it is interpolated within the bucket.
const LatencyBuckets = 56

// LatencyHistogram counts latencies in the fixed buckets of LatencyBuckets.
// It is dense up to its last non-zero bucket: a shorter histogram has
// zeros in the buckets it lacks.
type LatencyHistogram []int64

// LatencyBucket returns the bucket that holds latency d.
func LatencyBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	i := int(math.Ceil(2 * math.Log2(us)))
	return min(max(i, 1), LatencyBuckets-1)
}

// latencyBound returns the upper bound of bucket i, in microseconds.
func latencyBound(i int) float64 { return math.Exp2(float64(i) / 2) }

// Observe counts one latency of d.
func (h *LatencyHistogram) Observe(d time.Duration) { h.AddBucket(LatencyBucket(d), 1) }

// AddBucket adds n to bucket i, growing h as needed.
func (h *LatencyHistogram) AddBucket(i int, n int64) {
	if i < 0 || i >= LatencyBuckets || n == 0 {
		return
	}
	for len(*h) <= i {
		*h = append(*h, 0)
	}
	(*h)[i] += n
}

// Merge adds o's counts to h.
func (h *LatencyHistogram) Merge(o LatencyHistogram) {
	for i, n := range o {
		h.AddBucket(i, n)
	}
}

// Count returns the number of latencies counted.
func (h LatencyHistogram) Count() int64 {
	var n int64
	for _, c := range h {
		n += c
	}
	return n
}

// Trim drops h's trailing empty buckets.
func (h LatencyHistogram) Trim() LatencyHistogram {
	for len(h) > 0 && h[len(h)-1] == 0 {
		h = h[:len(h)-1]
	}
	return h
}

// Quantile returns the latency below which a share q (0 < q ≤ 1) of the
// counted latencies fall, interpolated within its bucket (linearly in
// the first, geometrically in the others; the last, unbounded bucket
// answers its lower bound). An empty histogram answers 0.
func (h LatencyHistogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	rank = min(max(rank, 1), total)
	var below int64
	for i, n := range h {
		if n == 0 || below+n < rank {
			below += n
			continue
		}
		f := float64(rank-below) / float64(n)
		var us float64
		switch {
		case i == 0:
			us = f * latencyBound(0)
		case i == LatencyBuckets-1:
			us = latencyBound(i - 1)
		default:
			lo := latencyBound(i - 1)
			us = lo * math.Pow(latencyBound(i)/lo, f)
		}
		return time.Duration(math.Round(us)) * time.Microsecond
	}
	return 0 // unreachable: rank ≤ total
}

// LatencyPercentiles are the median, 95th and 99th percentile latencies of
// a usage bucket or group, in milliseconds (to the microsecond).
type LatencyPercentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Percentiles returns h's percentiles, or nil when h counts nothing
// (usage recorded before latencies were kept).
func (h LatencyHistogram) Percentiles() *LatencyPercentiles {
	if h.Count() == 0 {
		return nil
	}
	ms := func(q float64) float64 { return float64(h.Quantile(q)/time.Microsecond) / 1000 }
	return &LatencyPercentiles{P50: ms(0.50), P95: ms(0.95), P99: ms(0.99)}
}

// AppendBinary appends h's compact encoding to b: the index of its first
// non-zero bucket, then the counts from there to its last non-zero
// bucket, all as unsigned varints. An empty histogram encodes to nothing.
func (h LatencyHistogram) AppendBinary(b []byte) []byte {
	h = h.Trim()
	first := 0
	for first < len(h) && h[first] == 0 {
		first++
	}
	if first == len(h) {
		return b
	}
	b = binary.AppendUvarint(b, uint64(first))
	for _, n := range h[first:] {
		b = binary.AppendUvarint(b, uint64(max(n, 0)))
	}
	return b
}

// ParseLatencyHistogram decodes what AppendBinary encoded.
func ParseLatencyHistogram(b []byte) (LatencyHistogram, error) {
	if len(b) == 0 {
		return nil, nil
	}
	first, n := binary.Uvarint(b)
	if n <= 0 || first >= LatencyBuckets {
		return nil, errors.New("keygate: bad latency histogram")
	}
	b = b[n:]
	h := make(LatencyHistogram, first, LatencyBuckets)
	for len(b) > 0 {
		c, n := binary.Uvarint(b)
		if n <= 0 || len(h) == LatencyBuckets || c > math.MaxInt64 {
			return nil, errors.New("keygate: bad latency histogram")
		}
		h = append(h, int64(c))
		b = b[n:]
	}
	return h, nil
}
