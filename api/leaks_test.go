package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keygate/keygate"
	"github.com/keygate/keygate/api"
	"github.com/keygate/keygate/leak"
)

// ghSigner signs reports as GitHub does, with its own P-256 key.
type ghSigner struct {
	id   string
	priv *ecdsa.PrivateKey
}

func newGHSigner(t *testing.T, id string) *ghSigner {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &ghSigner{id: id, priv: priv}
}

func (s *ghSigner) sign(t *testing.T, body string) map[string]string {
	sum := sha256.Sum256([]byte(body))
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{api.HeaderGitHubKeyID: s.id, api.HeaderGitHubSignature: base64.StdEncoding.EncodeToString(sig)}
}

// keysServer serves the signers' public keys as GitHub's
// /meta/public_keys/secret_scanning does.
func keysServer(t *testing.T, signers ...*ghSigner) *httptest.Server {
	type pk struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	}
	var list struct {
		PublicKeys []pk `json:"public_keys"`
	}
	for _, s := range signers {
		der, err := x509.MarshalPKIXPublicKey(&s.priv.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		list.PublicKeys = append(list.PublicKeys, pk{s.id, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true})
	}
	body, _ := json.Marshal(list)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

type match struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source,omitempty"`
}

func report(ms ...match) string {
	b, _ := json.Marshal(ms)
	return string(b)
}

func TestGitHubLeakReportRevokes(t *testing.T) {
	ts := newServer(t)
	gh := newGHSigner(t, "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c")
	ts.api.GitHubKeys = leak.NewKeyring(leak.KeyringOptions{URL: keysServer(t, gh).URL})

	acct := ts.account(t, "")
	leaked := ts.newKey(t, `{"account_id":"`+acct+`","name":"leaked"}`)
	bystander := ts.newKey(t, `{"account_id":"`+acct+`","name":"bystander"}`)
	var rk struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if resp := ts.call(t, "POST", "/v1/root-keys", ts.root(), `{"name":"ci","permissions":["verify"]}`, &rk); resp.StatusCode != 201 {
		t.Fatalf("create root key: %d", resp.StatusCode)
	}
	madeUp := "kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz" // well-formed, never issued
	url := "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt"
	body := report(
		match{leaked.Plaintext, "keygate_api_key", url, "content"},
		match{madeUp, "keygate_api_key", url, "content"},
		match{rk.Key, "keygate_root_key", url, "commit"},
		match{"not-a-key", "keygate_api_key", url, "content"},
	)

	// A tampered body, a missing signature and a signature by another key
	// are refused, and revoke nothing.
	tampered := strings.Replace(body, "content", "contenT", 1)
	intruder := newGHSigner(t, gh.id)
	for name, tc := range map[string]struct {
		hdr  map[string]string
		body string
	}{
		"tampered":     {gh.sign(t, body), tampered},
		"unsigned":     {nil, body},
		"no signature": {map[string]string{api.HeaderGitHubKeyID: gh.id}, body},
		"other key":    {intruder.sign(t, body), body},
		"unknown id":   {map[string]string{api.HeaderGitHubKeyID: "nope", api.HeaderGitHubSignature: gh.sign(t, body)[api.HeaderGitHubSignature]}, body},
	} {
		var p problemBody
		resp := ts.call(t, "POST", "/v1/leaks/github", tc.hdr, tc.body, &p)
		if resp.StatusCode != 401 || p.Code != keygate.EUNAUTHORIZED {
			t.Errorf("%s: got %d %s, want 401 %s", name, resp.StatusCode, p.Code, keygate.EUNAUTHORIZED)
		}
	}
	if code, _, _ := ts.weather(t, leaked.Plaintext); code != 200 {
		t.Fatalf("after refused reports the key answers %d, want 200 (nothing revoked)", code)
	}

	var fb []leak.Feedback
	resp := ts.call(t, "POST", "/v1/leaks/github", gh.sign(t, body), body, &fb)
	if resp.StatusCode != 200 {
		t.Fatalf("signed report: got %d, want 200", resp.StatusCode)
	}
	want := []leak.Feedback{
		{TokenHash: tokenHash(leaked.Plaintext), TokenType: "keygate_api_key", Label: leak.TruePositive},
		{TokenHash: tokenHash(madeUp), TokenType: "keygate_api_key", Label: leak.FalsePositive},
		{TokenHash: tokenHash(rk.Key), TokenType: "keygate_root_key", Label: leak.TruePositive},
		{TokenHash: tokenHash("not-a-key"), TokenType: "keygate_api_key", Label: leak.FalsePositive},
	}
	if diff := cmp.Diff(want, fb); diff != "" {
		t.Errorf("feedback (-want +got):\n%s", diff)
	}
	if code, problem, _ := ts.weather(t, leaked.Plaintext); code != 401 || problem != "REVOKED" {
		t.Errorf("leaked key: got %d %s, want 401 REVOKED", code, problem)
	}
	if code, _, _ := ts.weather(t, bystander.Plaintext); code != 200 {
		t.Errorf("unreported key: got %d, want 200", code)
	}
	var vr api.VerifyResponse
	if resp := ts.call(t, "POST", "/v1/keys/verify", map[string]string{"Authorization": "Bearer " + rk.Key}, `{"key":"`+bystander.Plaintext+`"}`, &vr); resp.StatusCode != 401 {
		t.Errorf("leaked root key: got %d, want 401", resp.StatusCode)
	}

	var k api.KeyView
	ts.call(t, "GET", "/v1/keys/"+leaked.ID, ts.root(), "", &k)
	if k.Status != keygate.StatusRevoked || k.RevokedBy != "leak:github" || !strings.Contains(k.RevokedReason, url) {
		t.Errorf("leaked key record: status %s, revoked_by %q, reason %q", k.Status, k.RevokedBy, k.RevokedReason)
	}
	var audit api.List[*keygate.AuditEvent]
	ts.call(t, "GET", "/v1/audit?action=key.leaked", ts.root(), "", &audit)
	if len(audit.Data) != 1 {
		t.Fatalf("key.leaked events: got %d, want 1", len(audit.Data))
	}
	var details map[string]any
	json.Unmarshal(audit.Data[0].Details, &details)
	if audit.Data[0].TargetID != leaked.ID || audit.Data[0].Actor != "leak:github" || details["url"] != url || details["source"] != "content" {
		t.Errorf("key.leaked event: %+v, details %v", audit.Data[0], details)
	}
	ts.call(t, "GET", "/v1/audit?action=root_key.leaked", ts.root(), "", &audit)
	if len(audit.Data) != 1 || audit.Data[0].TargetID != rk.ID {
		t.Errorf("root_key.leaked events: got %+v, want one for %s", audit.Data, rk.ID)
	}

	// The same report again: still true positives, nothing new revoked.
	fb = nil
	if resp := ts.call(t, "POST", "/v1/leaks/github", gh.sign(t, body), body, &fb); resp.StatusCode != 200 || fb[0].Label != leak.TruePositive || fb[2].Label != leak.TruePositive {
		t.Errorf("repeated report: got %d %+v", resp.StatusCode, fb)
	}
	if strings.Contains(ts.logs.String(), leaked.Plaintext) || strings.Contains(ts.logs.String(), rk.Key) {
		t.Error("the logs hold a reported key's plaintext")
	}
}

// TestGitHubDocumentedSample sends GitHub's documented signed sample
// through the endpoint, with GitHub's documented public key from a
// --github-keys-file style file: the signature verifies and its token,
// not a keygate key, is a false positive.
func TestGitHubDocumentedSample(t *testing.T) {
	ts := newServer(t)
	kr, err := leak.NewKeyringFromFile(filepath.Join("testdata", "github_sample_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts.api.GitHubKeys = kr
	body := `[{"token":"some_token","type":"some_type","url":"some_url"}]`
	hdr := map[string]string{
		api.HeaderGitHubKeyID:     "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a",
		api.HeaderGitHubSignature: "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=",
	}
	var fb []leak.Feedback
	if resp := ts.call(t, "POST", "/v1/leaks/github", hdr, body, &fb); resp.StatusCode != 200 {
		t.Fatalf("GitHub's sample: got %d, want 200", resp.StatusCode)
	}
	want := []leak.Feedback{{TokenHash: tokenHash("some_token"), TokenType: "some_type", Label: leak.FalsePositive}}
	if diff := cmp.Diff(want, fb); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	var p problemBody
	if resp := ts.call(t, "POST", "/v1/leaks/github", hdr, strings.Replace(body, "some_url", "some_uri", 1), &p); resp.StatusCode != 401 {
		t.Errorf("tampered sample: got %d, want 401", resp.StatusCode)
	}
}

func TestLeakReportProblems(t *testing.T) {
	ts := newServer(t)
	var p problemBody
	if resp := ts.call(t, "POST", "/v1/leaks/github", nil, `[]`, &p); resp.StatusCode != 404 {
		t.Errorf("no keyring: got %d, want 404", resp.StatusCode)
	}
	gh := newGHSigner(t, "k1")
	ts.api.GitHubKeys = leak.NewKeyring(leak.KeyringOptions{URL: keysServer(t, gh).URL})
	for _, body := range []string{`{}`, `[]`, `[{"token":""}]`, `[{"token":1}]`, `nope`} {
		if resp := ts.call(t, "POST", "/v1/leaks/github", gh.sign(t, body), body, &p); resp.StatusCode != 400 {
			t.Errorf("signed %q: got %d, want 400", body, resp.StatusCode)
		}
	}
	big := "[" + strings.Repeat(`{"token":"x"},`, api.MaxLeakBytes/14) + `{"token":"x"}]`
	if resp := ts.call(t, "POST", "/v1/leaks/github", gh.sign(t, big), big, &p); resp.StatusCode != 413 {
		t.Errorf("oversized report: got %d, want 413", resp.StatusCode)
	}
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 502) }))
	defer down.Close()
	ts.api.GitHubKeys = leak.NewKeyring(leak.KeyringOptions{URL: down.URL})
	body := `[{"token":"x"}]`
	if resp := ts.call(t, "POST", "/v1/leaks/github", gh.sign(t, body), body, &p); resp.StatusCode != 503 {
		t.Errorf("key URL down: got %d, want 503 so GitHub retries", resp.StatusCode)
	}
}

func TestScannerLeakReport(t *testing.T) {
	ts := newServer(t)
	acct := ts.account(t, "")
	k := ts.newKey(t, `{"account_id":"`+acct+`"}`)
	body := report(match{Token: k.Plaintext, Type: "keygate", URL: "https://pastebin.example/x", Source: "paste"})
	var p problemBody
	if resp := ts.call(t, "POST", "/v1/leaks", nil, body, &p); resp.StatusCode != 401 {
		t.Errorf("no root key: got %d, want 401", resp.StatusCode)
	}
	var fb []leak.Feedback
	if resp := ts.call(t, "POST", "/v1/leaks", ts.root(), body, &fb); resp.StatusCode != 200 || len(fb) != 1 || fb[0].Label != leak.TruePositive {
		t.Fatalf("scanner report: got %d %+v", resp.StatusCode, fb)
	}
	var kv api.KeyView
	ts.call(t, "GET", "/v1/keys/"+k.ID, ts.root(), "", &kv)
	if kv.Status != keygate.StatusRevoked || !strings.HasPrefix(kv.RevokedBy, "root_key:") {
		t.Errorf("reported key: status %s revoked_by %q", kv.Status, kv.RevokedBy)
	}
}
