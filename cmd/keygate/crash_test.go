package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// postJSON sends body to url with the root key and decodes the answer
// into out, failing the test unless the status is want.
func postJSON(t *testing.T, url, rootKey, body string, want int, out any) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+rootKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d, want %d", url, resp.StatusCode, want)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	logScanner.Issued(string(data))
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
	}
}

// hammer sends requests with key from 8 clients until stop says so or
// the server stops answering, and returns how many were admitted.
func hammer(s *server, key string, stop func(admitted, refused int64) bool) (admitted int64) {
	var ok, quota atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop(ok.Load(), quota.Load()) {
				req, _ := http.NewRequest("GET", s.url+"/demo/weather", nil)
				req.Header.Set("X-API-Key", key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // killed
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					quota.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return ok.Load()
}

// SIGKILL under load never gives a key back quota it spent: quota is
// reserved (and stored) before the requests it covers are admitted, so
// across a crash and restart a 50/day key is admitted at most 50 times —
// with --flush-interval 1h, only the reservations can have saved the
// counts. And no key, account, tier or revocation written before the kill
// is lost.
func TestSIGKILLBounds(t *testing.T) {
	db := filepath.Join(t.TempDir(), "keygate.db")
	s := startServer(t, "--db", db, "--flush-interval", "1h", "--failure-limit", "-1")
	root := rootKeyRE.FindString(s.stdout.String())
	postJSON(t, s.url+"/v1/tiers", root, `{"name":"tiny","quota_per_day":50,"rate_per_second":10000,"burst":10000,"quota_scope":"key"}`, 201, nil)
	var acct, other struct{ ID string }
	postJSON(t, s.url+"/v1/accounts", root, `{"name":"Tiny","email":"tiny@example.com","tier":"tiny"}`, 201, &acct)
	postJSON(t, s.url+"/v1/accounts", root, `{"name":"Other","email":"other@example.com","tier":"pro"}`, 201, &other)
	type key struct {
		ID  string
		Key string `json:"key"`
	}
	var spent, busy key
	postJSON(t, s.url+"/v1/keys", root, `{"account_id":"`+acct.ID+`","name":"spent"}`, 201, &spent)
	postJSON(t, s.url+"/v1/keys", root, `{"account_id":"`+acct.ID+`","name":"busy"}`, 201, &busy)
	live := make([]key, 4)
	for i := range live {
		postJSON(t, s.url+"/v1/keys", root, fmt.Sprintf(`{"account_id":%q,"name":"live%d"}`, other.ID, i), 201, &live[i])
	}
	for _, k := range live[2:] {
		postJSON(t, s.url+"/v1/keys/"+k.ID+"/revoke", root, `{"reason":"test"}`, 200, nil)
	}

	// One key spends its whole quota; the other is under load when the
	// process is killed.
	spentBefore := hammer(s, spent.Key, func(ok, refused int64) bool { return refused > 0 })
	if spentBefore != 50 {
		t.Fatalf("the spent key was admitted %d times before its quota ran out, want 50", spentBefore)
	}
	var killed sync.Once
	kill := func() {
		killed.Do(func() {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		})
	}
	busyBefore := hammer(s, busy.Key, func(ok, _ int64) bool {
		if ok >= 25 {
			kill()
			return true
		}
		return false
	})
	kill()

	s2 := startServer(t, "--db", db, "--failure-limit", "-1")
	spentAfter := hammer(s2, spent.Key, func(ok, refused int64) bool { return refused >= 8 })
	busyAfter := hammer(s2, busy.Key, func(ok, refused int64) bool { return refused >= 8 })
	if spentAfter != 0 {
		t.Errorf("after SIGKILL the spent key was admitted %d more times, want 0", spentAfter)
	}
	if busyBefore+busyAfter > 50 {
		t.Errorf("the key under load at SIGKILL: %d admitted before, %d after; more than its quota of 50", busyBefore, busyAfter)
	}
	if busyBefore+busyAfter < 40 {
		t.Errorf("the key under load at SIGKILL: %d admitted before, %d after; the crash lost more than the requests in flight", busyBefore, busyAfter)
	}
	t.Logf("under load at SIGKILL: %d admitted before, %d after (quota 50)", busyBefore, busyAfter)

	// Nothing written before the kill is lost.
	var tier struct {
		QuotaPerDay int64 `json:"quota_per_day"`
	}
	getJSON(t, s2.url+"/v1/tiers/tiny", root, &tier)
	if tier.QuotaPerDay != 50 {
		t.Errorf("tier tiny after SIGKILL: %+v", tier)
	}
	var accts struct{ Data []struct{ ID string } }
	getJSON(t, s2.url+"/v1/accounts", root, &accts)
	if len(accts.Data) != 2 {
		t.Errorf("accounts after SIGKILL: %+v, want 2", accts.Data)
	}
	var keys struct {
		Data []struct {
			ID     string
			Status string
		}
	}
	getJSON(t, s2.url+"/v1/keys?limit=100", root, &keys)
	status := map[string]string{}
	for _, k := range keys.Data {
		status[k.ID] = k.Status
	}
	if len(status) != 6 {
		t.Errorf("keys after SIGKILL: %v, want 6", status)
	}
	for i, k := range live {
		want, code := "active", 200
		if i >= 2 {
			want, code = "revoked", 401
		}
		if status[k.ID] != want {
			t.Errorf("key %s after SIGKILL: status %q, want %q", k.ID, status[k.ID], want)
		}
		if got, outcome := weather(t, s2, k.Key); got != code {
			t.Errorf("key %s after SIGKILL: %d %s, want %d", k.ID, got, outcome, code)
		}
	}
}
