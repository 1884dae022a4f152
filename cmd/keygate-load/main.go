// Command keygate-load sends a steady rate of keyed requests to a keygate
// server (or any HTTP endpoint) for a fixed time, and reports throughput,
// latency percentiles and the statuses it got. It is the load benchmark of
// docs/BENCHMARKS.md; it only ever targets the URL it is given, which
// should be on this machine.
//
//	keygate-load -url http://127.0.0.1:8080/demo/weather -key kg_live_… -rate 5000 -duration 60s
//
// With -verify it calls the verify API instead: POST {"key": …} to the URL
// with the root key of KEYGATE_ROOT_KEY, cycling through the keys of -keys.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type report struct {
	URL          string         `json:"url"`
	TargetRate   int            `json:"target_rate"`
	Duration     string         `json:"duration"`
	Sent         int64          `json:"sent"`
	Errors       int64          `json:"errors"`
	Missed       int64          `json:"missed"` // ticks skipped because every worker was busy
	AchievedRate float64        `json:"achieved_rate"`
	Statuses     map[int]int64  `json:"statuses"`
	LatencyMs    map[string]any `json:"latency_ms"`
}

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/demo/weather", "`URL` to request")
	key := flag.String("key", os.Getenv("KEYGATE_LOAD_KEY"), "API `KEY` sent as X-API-Key (env KEYGATE_LOAD_KEY)")
	rate := flag.Int("rate", 1000, "requests per second to send")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	workers := flag.Int("workers", 64, "concurrent connections")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	verify := flag.Bool("verify", false, "POST {\"key\": …} to the URL (the verify API) with the root key of KEYGATE_ROOT_KEY")
	keysFile := flag.String("keys", "", "`FILE` of keys, one a line, sent in turn instead of -key")
	flag.Parse()
	if *rate < 1 || *dur <= 0 || *workers < 1 {
		fmt.Fprintln(os.Stderr, "keygate-load: -rate, -duration and -workers must be positive")
		os.Exit(2)
	}
	keys := []string{*key}
	if *keysFile != "" {
		var err error
		if keys, err = readKeys(*keysFile); err != nil {
			fmt.Fprintln(os.Stderr, "keygate-load:", err)
			os.Exit(2)
		}
	}
	newRequest := func(i int64) *http.Request {
		k := keys[i%int64(len(keys))]
		if *verify {
			req, _ := http.NewRequest("POST", *url, strings.NewReader(`{"key":"`+k+`"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+os.Getenv("KEYGATE_ROOT_KEY"))
			return req
		}
		req, _ := http.NewRequest("GET", *url, nil)
		if k != "" {
			req.Header.Set("X-API-Key", k)
		}
		return req
	}
	r, err := run(*url, newRequest, *rate, *dur, *workers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygate-load:", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
		return
	}
	fmt.Printf("%s for %s at %d/s: sent %d (%.0f/s achieved), %d errors, %d ticks missed\n",
		r.URL, r.Duration, r.TargetRate, r.Sent, r.AchievedRate, r.Errors, r.Missed)
	fmt.Printf("statuses %v\nlatency ms: %v\n", r.Statuses, r.LatencyMs)
}

// readKeys reads one key a line, skipping blank lines.
func readKeys(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no key", path)
	}
	return keys, nil
}

func run(url string, newRequest func(int64) *http.Request, rate int, dur time.Duration, workers int) (*report, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	jobs := make(chan struct{}, workers)
	var sent, errs, missed atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int64{}
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range jobs {
				req := newRequest(sent.Add(1))
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat[w] = append(lat[w], time.Since(start))
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}

	// Pace in small slices of time, so that the rate holds without a timer
	// per request.
	const slice = 5 * time.Millisecond
	perSlice := float64(rate) * slice.Seconds()
	begin := time.Now()
	tick := time.NewTicker(slice)
	due := 0.0
	issued := int64(0)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			due = float64(now.Sub(begin)) / float64(slice) * perSlice
			for float64(issued) < due {
				select {
				case jobs <- struct{}{}:
				default:
					missed.Add(1)
				}
				issued++
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(begin)
	if sent.Load() == 0 {
		return nil, errors.New("no request was sent")
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Millisecond)
	}
	return &report{
		URL: url, TargetRate: rate, Duration: dur.String(), Sent: sent.Load(), Errors: errs.Load(), Missed: missed.Load(),
		AchievedRate: float64(sent.Load()) / elapsed.Seconds(), Statuses: statuses,
		LatencyMs: map[string]any{"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1)},
	}, nil
}
