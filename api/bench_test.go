package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keygate/keygate/api"
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
	api *api.Server
	key string
}

func newBenchServer(b *testing.B) *benchServer {
	ts := newServer(b)
	var reg api.RegisterResponse
	ts.call(b, "POST", "/v1/register", nil, `{"name":"Bench","email":"bench@example.com"}`, &reg)
	// Limits out of the way: the benchmark measures the check, not refusals.
	ts.call(b, "PATCH", "/v1/keys/"+reg.Key.ID, ts.root(), `{"quota_per_day":1000000000000,"rate_per_second":1000000,"burst":10000000}`, nil)
	return &benchServer{Server: ts.Server, api: ts.api, key: reg.Key.Plaintext}
}
