package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKeygate answers POST /v1/keys/verify: valid until revoked.
type fakeKeygate struct {
	calls   atomic.Int64
	revoked atomic.Bool
	down    atomic.Bool
	gate    chan struct{} // when set, answers wait for it
}

func (f *fakeKeygate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if f.down.Load() {
		http.Error(w, "down", 503)
		return
	}
	if r.URL.Path != "/v1/keys/verify" || r.Header.Get("Authorization") != "Bearer kgr_root" {
		http.Error(w, "bad request", 400)
		return
	}
	var req struct{ Key string }
	json.NewDecoder(r.Body).Decode(&req)
	ans := map[string]any{"valid": true, "code": "VALID", "key_id": "key_1", "account_id": "acc_1", "tier": "free"}
	if f.revoked.Load() {
		ans = map[string]any{"valid": false, "code": "REVOKED", "key_id": "key_1", "detail": "The API key has been revoked."}
	}
	json.NewEncoder(w).Encode(ans)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestCacheAndRevocationLag(t *testing.T) {
	f := &fakeKeygate{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	v := New(Options{URL: srv.URL, RootKey: "kgr_root", Now: c.now})
	ctx := context.Background()
	check := func(want bool) {
		t.Helper()
		id, err := v.Verify(ctx, "kg_live_x")
		if err != nil || id.Valid != want {
			t.Fatalf("got %+v, %v; want valid %v", id, err, want)
		}
	}
	check(true)
	check(true)
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("calls within the TTL: got %d, want 1", n)
	}
	f.revoked.Store(true)
	c.advance(999 * time.Millisecond)
	check(true) // within the documented lag
	c.advance(time.Millisecond)
	check(false) // past the TTL: the revocation is seen
	c.advance(500 * time.Millisecond)
	check(false)
	if n := f.calls.Load(); n != 2 {
		t.Fatalf("calls: got %d, want 2 (a negative answer is reused within 1 s)", n)
	}
	c.advance(500 * time.Millisecond)
	check(false)
	if n := f.calls.Load(); n != 3 {
		t.Fatalf("calls: got %d, want 3 (a negative answer is not reused past 1 s)", n)
	}
}

func TestBreakerServesStaleForABoundedTime(t *testing.T) {
	f := &fakeKeygate{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	v := New(Options{URL: srv.URL, RootKey: "kgr_root", Now: c.now, StaleFor: 10 * time.Second})
	ctx := context.Background()
	if id, err := v.Verify(ctx, "kg_live_x"); err != nil || !id.Valid {
		t.Fatalf("got %+v, %v", id, err)
	}
	f.down.Store(true)
	c.advance(5 * time.Second)
	if id, err := v.Verify(ctx, "kg_live_x"); err != nil || !id.Valid {
		t.Fatalf("keygate down, within StaleFor: got %+v, %v; want the cached answer", id, err)
	}
	if _, err := v.Verify(ctx, "kg_live_other"); err == nil {
		t.Fatal("keygate down, unknown key: got no error")
	}
	c.advance(5 * time.Second)
	if _, err := v.Verify(ctx, "kg_live_x"); err == nil {
		t.Fatal("keygate down past StaleFor: got no error")
	}
}

func TestSingleflight(t *testing.T) {
	f := &fakeKeygate{gate: make(chan struct{})}
	srv := httptest.NewServer(f)
	defer srv.Close()
	v := New(Options{URL: srv.URL, RootKey: "kgr_root"})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); v.Verify(context.Background(), "kg_live_x") }()
	}
	for f.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the others join the call in flight
	close(f.gate)
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("calls for 20 concurrent checks of one key: got %d, want 1", n)
	}
}

func Example() {
	keygate := httptest.NewServer(&fakeKeygate{}) // stands in for keygate serve
	defer keygate.Close()

	v := New(Options{URL: keygate.URL, RootKey: "kgr_root", Scopes: []string{"weather:read"}, Route: "/weather"})
	api := v.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := FromContext(r.Context())
		fmt.Fprintf(w, "hello %s (tier %s)", id.AccountID, id.Tier)
	}))
	srv := httptest.NewServer(api)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/weather", nil)
	req.Header.Set("X-API-Key", "kg_live_example")
	resp, _ := http.DefaultClient.Do(req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))

	resp, _ = http.Get(srv.URL + "/weather")
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// 200 hello acc_1 (tier free)
	// 401
}
