package manage

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

// RecordExposure writes a key.exposed audit event against key id: the key
// was seen in a request's URL (where is "query" or "path"), so it may sit
// in access logs, proxies and browser histories, and its owner should
// rotate it. The key itself is left unchanged.
func (s *Service) RecordExposure(ctx context.Context, id, where, method, ip string) error {
	// Writing the key back unchanged commits the event in the store's one
	// audited write path.
	_, err := s.Store.UpdateKey(ctx, id, func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		return []*keygate.AuditEvent{s.event(ActorSystem, keygate.ActionKeyExposed, keygate.TargetKey, k.ID, map[string]string{
			"start": k.Start, "where": where, "method": method, "client_ip": ip,
			"advice": "the key was sent in a URL and refused; URLs end up in logs: rotate the key",
		})}, nil
	})
	return err
}

// Exposures audits keys found in request URLs (see keyauth.Options.Exposed)
// without slowing the refused request: each report is written in the
// background, at most once per key per Interval, with at most a few writes
// in flight; reports beyond that are dropped (the request is refused all
// the same).
type Exposures struct {
	Service *Service
	// Lookup finds the key a presented key belongs to; engine.Engine.Find
	// is one.
	Lookup func(presented string) (*keygate.VerifiedKey, bool)
	// ClientIP returns the client address of a request, for the event.
	ClientIP func(r *http.Request) string
	// Interval is how often one key's exposure is audited at most; zero
	// means one minute.
	Interval time.Duration
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	last  map[string]time.Time
	slots chan struct{}
	wg    sync.WaitGroup
}

const maxExposureWrites = 4

// Report records that presented (a key, or anything sent in a key query
// parameter) was found in r's URL at where. It never blocks on the store.
func (x *Exposures) Report(r *http.Request, presented, where string) {
	if presented == "" || x.Lookup == nil {
		return
	}
	k, ok := x.Lookup(presented)
	if !ok {
		if _, err := apikey.Parse(presented); err == nil {
			x.log().Warn("a key was sent in a URL and refused; it is not an API key of this server", "start", apikey.Start(presented), "where", where)
		}
		return
	}
	now := time.Now()
	if x.Now != nil {
		now = x.Now()
	}
	interval := x.Interval
	if interval <= 0 {
		interval = time.Minute
	}
	x.mu.Lock()
	if x.last == nil {
		x.last = map[string]time.Time{}
		x.slots = make(chan struct{}, maxExposureWrites)
	}
	if t, ok := x.last[k.ID]; ok && now.Sub(t) < interval {
		x.mu.Unlock()
		return
	}
	for id, t := range x.last { // keep the map small
		if now.Sub(t) >= interval {
			delete(x.last, id)
		}
	}
	select {
	case x.slots <- struct{}{}:
	default:
		x.mu.Unlock()
		x.log().Warn("key exposure not audited: too many audit writes in flight", "key_id", k.ID)
		return
	}
	x.last[k.ID] = now
	x.mu.Unlock()
	ip := ""
	if x.ClientIP != nil {
		ip = x.ClientIP(r)
	}
	method := r.Method
	x.wg.Add(1)
	go func() {
		defer func() { <-x.slots; x.wg.Done() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := x.Service.RecordExposure(ctx, k.ID, where, method, ip); err != nil {
			x.log().Error("key exposure not audited", "key_id", k.ID, "err", err)
			return
		}
		x.log().Warn("a key was sent in a URL and refused; audited as key.exposed", "key_id", k.ID, "start", apikey.Start(presented), "where", where)
	}()
}

// Wait blocks until every audit write started so far has finished.
func (x *Exposures) Wait() { x.wg.Wait() }

func (x *Exposures) log() *slog.Logger {
	if x.Logger != nil {
		return x.Logger
	}
	return slog.New(slog.DiscardHandler)
}
