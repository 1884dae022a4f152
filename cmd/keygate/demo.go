package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/gateway"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/route"
)

// demoRoutes are the weather API's route rules.
const demoRoutes = `routes:
  - name: weather
    method: GET
    path: /weather
    scopes: [weather:read]
  - name: alerts
    method: POST
    path: /alerts
    scopes: [weather:write]
  - name: status
    path: /status
    public: true
`

// weatherAPI is the demo's upstream: it knows nothing of keys and trusts
// the gateway's X-Keygate-* headers.
func weatherAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /weather", func(w http.ResponseWriter, r *http.Request) {
		city := r.URL.Query().Get("city")
		if city == "" {
			city = "Berlin"
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"city": city, "forecast": "sunny", "temperature_c": 21,
			"account_id": r.Header.Get(gateway.HeaderAccountID), "tier": r.Header.Get(gateway.HeaderTier),
		})
	})
	mux.HandleFunc("POST /alerts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"alert": "created", "by": r.Header.Get(gateway.HeaderKeyID)})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	return mux
}

// runDemo runs `keygate demo`: the weather API on a loopback port behind
// the gateway, on embedded SQLite, with a free and a pro key printed.
func (m *Main) runDemo(ctx context.Context, args []string) error {
	var cfg serveConfig
	fs := m.newFlagSet("demo")
	cfg.flags(fs)
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	if !flagsSet(fs)["db"] {
		cfg.DB = filepath.Join(os.TempDir(), fmt.Sprintf("keygate-demo-%d.db", time.Now().UnixNano()))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("start the weather API: %w", err)
	}
	up := &http.Server{Handler: weatherAPI(), ReadHeaderTimeout: 10 * time.Second}
	go up.Serve(ln)
	cfg.Upstream = "http://" + ln.Addr().String()
	c, err := route.Parse("demo routes", []byte(demoRoutes))
	if err != nil {
		return err
	}
	cfg.routes = c.Routes
	if err := cfg.validate(m.Stderr); err != nil {
		up.Close()
		return err
	}
	cfg.upstream, _ = url.Parse(cfg.Upstream)
	s, err := openServer(ctx, &cfg, m.Stdout)
	if err != nil {
		up.Close()
		return err
	}
	m.server = s
	s.onClose = func() { up.Close() }

	var pepper []byte
	if cfg.Pepper != "" {
		pepper = []byte(cfg.Pepper)
	}
	adm := &manage.Service{Store: s.store, Hasher: apikey.NewHasher(pepper), KeyPrefix: cfg.KeyPrefix}
	keys := map[string]string{}
	for _, d := range []struct {
		tier, email string
		scopes      []string
	}{
		{keygate.TierFree, "free@demo.example", []string{"weather:read"}},
		{keygate.TierPro, "pro@demo.example", []string{"weather:read", "weather:write"}},
	} {
		a := &keygate.Account{Name: "Demo " + d.tier, Email: d.email, Tier: d.tier}
		if err := adm.CreateAccount(ctx, manage.ActorSystem, a); err != nil {
			if a2, err2 := s.store.AccountByEmail(ctx, d.email); err2 == nil {
				a = a2
			} else {
				return fmt.Errorf("create the demo account: %w", err)
			}
		}
		k := &keygate.Key{AccountID: a.ID, Name: "demo", Env: keygate.EnvLive, Scopes: d.scopes}
		plain, err := adm.CreateKey(ctx, manage.ActorSystem, k)
		if err != nil {
			return fmt.Errorf("create the demo key: %w", err)
		}
		keys[d.tier] = plain
	}
	base := "http://" + cfg.Addr
	fmt.Fprintf(m.Stdout, `
keygate demo: the weather API (%s) is behind the gateway at %s.
Keys (shown once): free tier, weather:read  %s
                   pro tier, weather:read+write  %s

  curl -si %s/weather?city=Oslo -H "X-API-Key: %s"          # 200
  curl -si -X POST %s/alerts -H "X-API-Key: %s"             # 403 INSUFFICIENT_SCOPE
  curl -si -X POST %s/alerts -H "X-API-Key: %s"             # 201 (pro)
  curl -si %s/weather                                       # 401 MISSING_KEY
  curl -si "%s/weather?api_key=%s"                           # 400 KEY_IN_QUERY
  curl -si %s/status                                        # public

Stop with Ctrl-C.
`, cfg.Upstream, base, keys["free"], keys["pro"], base, keys["free"], base, keys["free"], base, keys["pro"], base, base, keys["free"], base)
	return nil
}
