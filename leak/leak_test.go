package leak_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate/leak"
)

// GitHub's documented sample (docs.github.com, "Secret scanning partner
// program", signature validation sample): this body, signed by the key
// with this identifier, whose public key is in testdata.
const (
	sampleKeyID     = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
	sampleBody      = `[{"token":"some_token","type":"some_type","url":"some_url"}]`
	sampleSignature = "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc="
)

func TestGitHubSampleVerifies(t *testing.T) {
	kr, err := leak.NewKeyringFromFile(filepath.Join("testdata", "github_sample_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := kr.Verify(ctx, []byte(sampleBody), sampleKeyID, sampleSignature); err != nil {
		t.Fatalf("GitHub's signed sample: got %v, want it to verify", err)
	}
	tampered := []byte(`[{"token":"some_tokem","type":"some_type","url":"some_url"}]`)
	if err := kr.Verify(ctx, tampered, sampleKeyID, sampleSignature); !errors.Is(err, leak.ErrBadSignature) {
		t.Errorf("tampered body: got %v, want ErrBadSignature", err)
	}
	if err := kr.Verify(ctx, []byte(sampleBody), "f9525bf080f75b3506ca1ead061add62b8633a346606dc5fe544e29231c6ee0d", sampleSignature); !errors.Is(err, leak.ErrUnknownKey) {
		t.Errorf("other identifier: got %v, want ErrUnknownKey", err)
	}
	for _, tt := range []struct{ id, sig string }{{"", sampleSignature}, {sampleKeyID, ""}, {" ", " "}} {
		if err := kr.Verify(ctx, []byte(sampleBody), tt.id, tt.sig); !errors.Is(err, leak.ErrNoSignature) {
			t.Errorf("id %q sig %q: got %v, want ErrNoSignature", tt.id, tt.sig, err)
		}
	}
	if err := kr.Verify(ctx, []byte(sampleBody), sampleKeyID, "not base64!"); !errors.Is(err, leak.ErrBadSignature) {
		t.Errorf("junk signature: got %v, want ErrBadSignature", err)
	}
	ms, err := leak.ParseReport([]byte(sampleBody))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]leak.Match{{Token: "some_token", Type: "some_type", URL: "some_url"}}, ms); diff != "" {
		t.Errorf("sample report (-want +got):\n%s", diff)
	}
}

// Signer is a P-256 key that signs reports the way GitHub does, and
// serves its public key the way GitHub does.
type Signer struct {
	ID   string
	Priv *ecdsa.PrivateKey
}

// NewSigner returns a signer with a fresh key.
func NewSigner(t testing.TB, id string) *Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Signer{ID: id, Priv: priv}
}

// Sign returns the base64 DER signature of body.
func (s *Signer) Sign(t testing.TB, body []byte) string {
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.Priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// KeyList returns the JSON GitHub serves for these signers.
func KeyList(t testing.TB, signers ...*Signer) []byte {
	type pk struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	var list struct {
		PublicKeys []pk `json:"public_keys"`
	}
	for _, s := range signers {
		der, err := x509.MarshalPKIXPublicKey(&s.Priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		list.PublicKeys = append(list.PublicKeys, pk{s.ID, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true})
	}
	b, _ := json.Marshal(list)
	return b
}

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestKeyringFetchesAndRefreshes(t *testing.T) {
	old, next := NewSigner(t, "old"), NewSigner(t, "next")
	var fetches atomic.Int32
	var serving atomic.Value
	serving.Store(KeyList(t, old))
	fail := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Write(serving.Load().([]byte))
	}))
	defer srv.Close()
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	kr := leak.NewKeyring(leak.KeyringOptions{URL: srv.URL, Now: c.Now})
	ctx := context.Background()
	body := []byte(`[{"token":"x","type":"t","url":"u"}]`)

	if err := kr.Verify(ctx, body, old.ID, old.Sign(t, body)); err != nil {
		t.Fatalf("first report: %v", err)
	}
	if err := kr.Verify(ctx, body, old.ID, old.Sign(t, body)); err != nil {
		t.Fatalf("second report: %v", err)
	}
	if got := fetches.Load(); got != 1 {
		t.Errorf("fetches after two reports: got %d, want 1 (cached)", got)
	}

	// GitHub rotates: a report names a key the cache lacks; within a
	// minute of the last fetch it is not fetched again.
	serving.Store(KeyList(t, old, next))
	if err := kr.Verify(ctx, body, next.ID, next.Sign(t, body)); !errors.Is(err, leak.ErrUnknownKey) {
		t.Errorf("new key within the refresh interval: got %v, want ErrUnknownKey", err)
	}
	c.t = c.t.Add(leak.DefaultMinRefresh)
	if err := kr.Verify(ctx, body, next.ID, next.Sign(t, body)); err != nil {
		t.Errorf("new key after the refresh interval: got %v, want it fetched and verified", err)
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches: got %d, want 2", got)
	}

	// A made-up identifier costs at most one fetch per interval.
	for range 5 {
		if err := kr.Verify(ctx, body, "made-up", next.Sign(t, body)); !errors.Is(err, leak.ErrUnknownKey) {
			t.Errorf("made-up identifier: got %v, want ErrUnknownKey", err)
		}
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetches after made-up identifiers: got %d, want 2", got)
	}

	// The URL fails: a stale list is still used for the keys it holds, and
	// an unknown key is a FetchError (retry) rather than a refusal.
	fail.Store(true)
	c.t = c.t.Add(leak.DefaultMaxAge)
	if err := kr.Verify(ctx, body, old.ID, old.Sign(t, body)); err != nil {
		t.Errorf("stale list, URL down: got %v, want the cached key to verify", err)
	}
	c.t = c.t.Add(leak.DefaultMinRefresh)
	var fe *leak.FetchError
	if err := kr.Verify(ctx, body, "another", old.Sign(t, body)); !errors.As(err, &fe) {
		t.Errorf("unknown key, URL down: got %v, want a *FetchError", err)
	}
}

func TestKeyringFetchTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	kr := leak.NewKeyring(leak.KeyringOptions{URL: srv.URL, Client: &http.Client{Timeout: 50 * time.Millisecond}})
	var fe *leak.FetchError
	if err := kr.Verify(context.Background(), []byte("[]"), "k", "MEUCIQ=="); !errors.As(err, &fe) {
		t.Errorf("hanging key URL: got %v, want a *FetchError", err)
	}
}

func TestKeyringFromFile(t *testing.T) {
	s := NewSigner(t, "file-key")
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, KeyList(t, s), 0o600); err != nil {
		t.Fatal(err)
	}
	kr, err := leak.NewKeyringFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"token":"kg_live_x","type":"keygate_api_key","url":"https://example.com"}]`)
	if err := kr.Verify(context.Background(), body, s.ID, s.Sign(t, body)); err != nil {
		t.Errorf("signed by the file's key: %v", err)
	}
	other := NewSigner(t, "file-key") // same identifier, another key
	if err := kr.Verify(context.Background(), body, s.ID, other.Sign(t, body)); !errors.Is(err, leak.ErrBadSignature) {
		t.Errorf("signed by another key under the same identifier: got %v, want ErrBadSignature", err)
	}
}

func TestParseKeysRefuses(t *testing.T) {
	rsaPEM := "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf\n9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END PUBLIC KEY-----\n"
	for name, in := range map[string]string{
		"not json":   `nope`,
		"no keys":    `{"public_keys":[]}`,
		"no id":      `{"public_keys":[{"key":"x"}]}`,
		"not pem":    `{"public_keys":[{"key_identifier":"a","key":"MFkw"}]}`,
		"rsa key":    `{"public_keys":[{"key_identifier":"a","key":` + jsonString(rsaPEM) + `}]}`,
		"wrong type": `{"public_keys":"x"}`,
	} {
		if _, err := leak.ParseKeys([]byte(in)); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestParseReport(t *testing.T) {
	good := `[{"token":" kg_live_a ","type":"keygate_api_key","url":"https://github.com/o/r/blob/x/f","source":"content","extra":1},{"token":"b"}]`
	ms, err := leak.ParseReport([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []leak.Match{{Token: "kg_live_a", Type: "keygate_api_key", URL: "https://github.com/o/r/blob/x/f", Source: "content"}, {Token: "b"}}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{``, `{}`, `[]`, `[1]`, `[{"token":""}]`, `[{"token":5}]`, `[{"token":"a"}] [1]`, `[{"token":"a"}`, `[{"token":"a"}]x`, `null`} {
		_, err := leak.ParseReport([]byte(bad))
		var re *leak.ReportError
		if !errors.As(err, &re) {
			t.Errorf("%q: got %v, want a *ReportError", bad, err)
		}
	}
	many := []byte("[")
	for i := range leak.MaxMatches + 1 {
		if i > 0 {
			many = append(many, ',')
		}
		many = append(many, `{"token":"t"}`...)
	}
	many = append(many, ']')
	if _, err := leak.ParseReport(many); err == nil {
		t.Errorf("%d matches: got no error, want one", leak.MaxMatches+1)
	}
}

func TestKeyPattern(t *testing.T) {
	for tok, want := range map[string]bool{
		"kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz":  true,
		"kgr_test_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz": true,
		"kg_prod_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz":  false,
		"kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQ":   false,
		"xkg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz": false,
	} {
		if got := leak.LooksLikeKey(tok); got != want {
			t.Errorf("LooksLikeKey(%q): got %v, want %v", tok, got, want)
		}
	}
}

func TestFeedback(t *testing.T) {
	got := leak.NewFeedback(leak.Match{Token: "some_token", Type: "some_type"}, true)
	sum := sha256.Sum256([]byte("some_token"))
	want := leak.Feedback{TokenHash: base16(sum[:]), TokenType: "some_type", Label: leak.TruePositive}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := leak.NewFeedback(leak.Match{Token: "x"}, false).Label; got != leak.FalsePositive {
		t.Errorf("label: got %q, want %q", got, leak.FalsePositive)
	}
}

func base16(b []byte) string {
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(out)
}

// FuzzParseReport checks that ParseReport never panics, and that what it
// accepts holds at most MaxMatches non-empty, bounded matches.
func FuzzParseReport(f *testing.F) {
	f.Add([]byte(sampleBody))
	f.Add([]byte(`[{"token":"kg_live_a","type":"t","url":"u","source":"content"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"token":null}]`))
	f.Add([]byte(`[{"token":"a"},{"token":"b","extra":{"x":[1,2]}}]`))
	f.Add([]byte("[{\"token\":\"\\u0000\"}]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := leak.ParseReport(body)
		if err != nil {
			var re *leak.ReportError
			if !errors.As(err, &re) {
				t.Fatalf("got error %T %v, want a *ReportError", err, err)
			}
			return
		}
		if len(ms) == 0 || len(ms) > leak.MaxMatches {
			t.Fatalf("got %d matches", len(ms))
		}
		for _, m := range ms {
			if m.Token == "" || len(m.URL) > leak.MaxFieldLen || len(m.Type) > leak.MaxFieldLen || len(m.Source) > leak.MaxFieldLen {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}
