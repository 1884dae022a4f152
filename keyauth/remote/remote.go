// Package remote is net/http middleware for Go services that ask a keygate
// server over HTTP (POST /v1/keys/verify) whether a request's key may pass.
//
// Answers are cached in process: a positive answer for TTL (default 1 s,
// which is also the worst-case revocation lag: a key revoked in keygate
// can pass here for up to TTL more), a negative one for at most 1 s.
// Concurrent checks of one key share one call (singleflight). When keygate
// cannot be reached, a circuit breaker serves the last positive answer for
// a key for up to StaleFor (default 30 s) instead of refusing everyone;
// past that, requests get 503.
package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keygate/keygate/keyauth"
)

// Options configure the middleware.
type Options struct {
	// URL is keygate's base URL, such as http://127.0.0.1:8080.
	URL string
	// RootKey is a root key with the verify permission.
	RootKey string
	// Scopes are required of every key on the guarded routes.
	Scopes []string
	// Route names the guarded routes in keygate's usage records.
	Route string
	// TTL is how long a positive answer is reused; zero means 1 s.
	TTL time.Duration
	// StaleFor is how long a positive answer may be served while keygate
	// is unreachable; zero means 30 s.
	StaleFor time.Duration
	// Client sends the verify calls; nil means a client with a 2 s timeout.
	Client *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Identity is keygate's answer for a request's key.
type Identity struct {
	Valid     bool     `json:"valid"`
	Code      string   `json:"code"`
	KeyID     string   `json:"key_id"`
	AccountID string   `json:"account_id"`
	Tier      string   `json:"tier"`
	Scopes    []string `json:"scopes"`
	Detail    string   `json:"detail"`
}

type ctxKey struct{}

// FromContext returns the identity of a request the middleware let through.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok
}

type entry struct {
	id      *Identity
	fetched time.Time
}

// Verifier checks keys against keygate with a cache. It is safe for
// concurrent use.
type Verifier struct {
	o     Options
	group singleflight.Group
	mu    sync.Mutex
	cache map[[32]byte]entry
}

// New returns a Verifier for o.
func New(o Options) *Verifier {
	if o.TTL <= 0 {
		o.TTL = time.Second
	}
	if o.StaleFor <= 0 {
		o.StaleFor = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 2 * time.Second}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Verifier{o: o, cache: map[[32]byte]entry{}}
}

// ErrUnavailable means keygate could not be asked and no usable cached
// answer was at hand.
var ErrUnavailable = errors.New("remote: keygate is unavailable")

// Verify returns keygate's answer for key, from the cache when fresh.
func (v *Verifier) Verify(ctx context.Context, key string) (*Identity, error) {
	sum := sha256.Sum256([]byte(key)) // the cache holds hashes, never keys
	now := v.o.Now()
	v.mu.Lock()
	e, ok := v.cache[sum]
	v.mu.Unlock()
	if ok && now.Sub(e.fetched) < v.ttl(e.id) {
		return e.id, nil
	}
	res, err, _ := v.group.Do(string(sum[:]), func() (any, error) { return v.ask(ctx, key) })
	if err != nil {
		if ok && e.id.Valid && now.Sub(e.fetched) < v.o.StaleFor {
			return e.id, nil // the breaker: serve the last positive answer
		}
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	id := res.(*Identity)
	v.mu.Lock()
	if len(v.cache) > 100_000 {
		clear(v.cache)
	}
	v.cache[sum] = entry{id: id, fetched: v.o.Now()}
	v.mu.Unlock()
	return id, nil
}

func (v *Verifier) ttl(id *Identity) time.Duration {
	if id.Valid {
		return v.o.TTL
	}
	return min(v.o.TTL, time.Second)
}

func (v *Verifier) ask(ctx context.Context, key string) (*Identity, error) {
	body, _ := json.Marshal(map[string]any{"key": key, "scopes": v.o.Scopes, "route": v.o.Route})
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", v.o.URL+"/v1/keys/verify", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+v.o.RootKey)
	resp, err := v.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("verify answered %d", resp.StatusCode)
	}
	var id Identity
	if err := json.NewDecoder(resp.Body).Decode(&id); err != nil {
		return nil, fmt.Errorf("decode the verify answer: %w", err)
	}
	return &id, nil
}

// Middleware returns the net/http middleware: requests whose key keygate
// accepts pass with their Identity in the context (FromContext); others
// get a problem+json answer with keygate's code and detail.
func (v *Verifier) Middleware() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := keyauth.KeyInURL(r.URL); ok {
				refuse(w, 400, "KEY_IN_QUERY", "Send the API key in the X-API-Key header, never in the URL.")
				return
			}
			key, _ := keyauth.HeaderKey(r)
			if key == "" {
				refuse(w, 401, "MISSING_KEY", "Send your API key in the X-API-Key header.")
				return
			}
			id, err := v.Verify(r.Context(), key)
			if err != nil {
				refuse(w, 503, "KEYGATE_UNAVAILABLE", "The key could not be checked; retry in a few seconds.")
				return
			}
			if !id.Valid {
				refuse(w, status(id.Code), id.Code, id.Detail)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
		})
	}
}

func status(code string) int {
	switch code {
	case "DISABLED", "IP_NOT_ALLOWED", "INSUFFICIENT_SCOPE":
		return 403
	case "RATE_LIMITED", "QUOTA_EXCEEDED", "TOO_MANY_FAILURES":
		return 429
	}
	return 401
}

func refuse(w http.ResponseWriter, st int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(st)
	json.NewEncoder(w).Encode(map[string]any{"type": "urn:keygate:problem:" + code, "title": code, "status": st, "detail": detail, "code": code})
}
