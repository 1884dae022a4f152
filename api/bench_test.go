package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/engine"
)

// benchmarkHTTP sends parallel GETs over real TCP connections to url.
func benchmarkHTTP(b *testing.B, url string, hdr map[string]string, want int) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				b.Errorf("got %d, want %d", resp.StatusCode, want)
				return
			}
		}
	})
}

// BenchmarkHTTPBare is the baseline: a bare net/http handler answering the
// same JSON, over the same kind of connection.
func BenchmarkHTTPBare(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"city":"Berlin","forecast":"sunny","temperature_c":21}`+"\n")
	}))
	defer srv.Close()
	benchmarkHTTP(b, srv.URL+"/demo/weather", nil, 200)
}

// BenchmarkHTTPKeyed is a keyed request through keygate's full stack:
// routing, key check with rate limit and quota, RateLimit headers, usage
// recording, request log.
func BenchmarkHTTPKeyed(b *testing.B) {
	ts := newBenchServer(b)
	benchmarkHTTP(b, ts.URL+"/demo/weather", map[string]string{"X-API-Key": ts.key}, 200)
}

// BenchmarkHTTPKeyedNoUsage is BenchmarkHTTPKeyed without usage recording
// and metrics: the difference is what usage tracking costs a request,
// including its share of the writes to SQLite.
func BenchmarkHTTPKeyedNoUsage(b *testing.B) {
	ts := newBenchServer(b)
	bare := *ts.api
	bare.Usage, bare.Metrics = nil, nil
	srv := httptest.NewServer(bare.Handler())
	defer srv.Close()
	benchmarkHTTP(b, srv.URL+"/demo/weather", map[string]string{"X-API-Key": ts.key}, 200)
}

type benchServer struct {
	*httptest.Server
	api     *api.Server
	key     string
	rootKey string
	usage   *engine.UsageBuffer
}

func newBenchServer(b *testing.B) *benchServer {
	ts := newServer(b)
	var reg api.RegisterResponse
	ts.call(b, "POST", "/v1/register", nil, `{"name":"Bench","email":"bench@example.com"}`, &reg)
	// Limits out of the way: the benchmark measures the check, not refusals.
	ts.call(b, "PATCH", "/v1/keys/"+reg.Key.ID, ts.root(), `{"quota_per_day":1000000000000,"rate_per_second":1000000,"burst":10000000}`, nil)
	return &benchServer{Server: ts.Server, api: ts.api, key: reg.Key.Plaintext, rootKey: ts.rootKey, usage: ts.usage}
}

// BenchmarkVerifyHandler is one POST /v1/keys/verify through the API's
// handler as `keygate serve` runs it (usage recording, metrics, request
// log at warn), without a network: what keygate adds to the work net/http
// does for any handler. The request and writer are reused, so the
// allocations reported are the server's own. Usage events go to a store
// that discards them: what storing them costs SQLite is
// sqlite.BenchmarkRecordUsage, paid by the usage writer, not the request.
func BenchmarkVerifyHandler(b *testing.B) {
	ts := newBenchServer(b)
	srv := *ts.api
	srv.Now = nil
	srv.Logger = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	usage := engine.NewUsageBuffer(discardUsage{}, engine.UsageOptions{})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { usage.Run(ctx); close(done) }()
	defer func() { stop(); <-done }()
	srv.Usage = usage
	h := srv.Handler()
	body := []byte(`{"key":"` + ts.key + `","scopes":[],"method":"GET","route":"/weather"}`)
	rd := bytes.NewReader(body)
	req := httptest.NewRequest("POST", "/v1/keys/verify", nil)
	req.Header.Set("Authorization", "Bearer "+ts.rootKey)
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "198.51.100.7:40000"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("got %d, want 200", w.status)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(usage.Dropped()), "dropped")
}

// discardUsage is a usage store that keeps nothing.
type discardUsage struct{ keygate.UsageStore }

func (discardUsage) RecordUsage(context.Context, []keygate.UsageEvent) error { return nil }

// discardWriter is a reusable http.ResponseWriter that keeps the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
