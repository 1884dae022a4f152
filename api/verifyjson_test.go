package api

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate"
)

// stdVerifyRequest decodes b as decode does for every other endpoint.
func stdVerifyRequest(b []byte) (VerifyRequest, error) {
	var req VerifyRequest
	r := httptest.NewRequest("POST", "/v1/keys/verify", bytes.NewReader(b))
	err := decode(httptest.NewRecorder(), r, &req, false)
	return req, err
}

func FuzzParseVerifyRequest(f *testing.F) {
	for _, s := range []string{
		`{"key":"kg_live_abc"}`,
		`{"key":"kg_live_abc","scopes":["weather:read","a:*"],"ip":"203.0.113.9","method":"GET","route":"/weather/{city}"}`,
		` { "key" : "k" , "scopes" : [ ] } `,
		`{"key":"a","key":null}`,
		`{"scopes":null}`,
		`{"scopes":["a"],"scopes":["b","c"]}`,
		`{}`,
		`{"Key":"k"}`,
		`{"key":"k\u0041"}`,
		`{"key":"é"}`,
		`{"key":1}`,
		`{"key":"k"} {}`,
		`{"key":"k",}`,
		`{"other":"x"}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast VerifyRequest
		if !parseVerifyRequest(b, &fast) {
			return // decode answers these
		}
		std, err := stdVerifyRequest(b)
		if err != nil {
			t.Fatalf("fast path took %q, which decode refuses: %v", b, err)
		}
		if d := cmp.Diff(std, fast); d != "" {
			t.Fatalf("fast path read %q differently (-decode +fast):\n%s", b, d)
		}
	})
}

func TestParseVerifyRequestTakesTheUsualBodies(t *testing.T) {
	// The fast path must serve what clients send, or it is no path at all.
	for _, s := range []string{
		`{"key":"kg_live_abc"}`,
		`{"key":"kg_live_abc","scopes":["weather:read"],"ip":"2001:db8::1","method":"GET","route":"/weather"}`,
		"{\n  \"key\": \"kg_live_abc\",\n  \"scopes\": []\n}\n",
	} {
		var req VerifyRequest
		if !parseVerifyRequest([]byte(s), &req) {
			t.Errorf("%q went the slow way", s)
		}
		if req.Key != "kg_live_abc" {
			t.Errorf("%q: got key %q", s, req.Key)
		}
	}
}

func TestDecodeVerifyErrorsAreDecodes(t *testing.T) {
	for _, s := range []string{`{"key":1}`, `{"nope":"x"}`, `{"key":"k"} {}`, `{"key":`, ``, strings.Repeat(" ", MaxBodyBytes+1)} {
		_, want := stdVerifyRequest([]byte(s))
		var req VerifyRequest
		r := httptest.NewRequest("POST", "/v1/keys/verify", strings.NewReader(s))
		got := decodeVerify(httptest.NewRecorder(), r, &req)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%.40q: got %v, want %v", s, got, want)
		}
	}
	var req VerifyRequest
	r := httptest.NewRequest("POST", "/v1/keys/verify", strings.NewReader(`{"key":"k"}`))
	r.Header.Set("Content-Type", "text/plain")
	if err := decodeVerify(httptest.NewRecorder(), r, &req); keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("text/plain body: got %v, want EINVALID", err)
	}
}

// encoded is what writeJSON writes for v.
func encoded(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func checkAnswer(t *testing.T, a *verifyAnswer) {
	t.Helper()
	want := encoded(t, a.response())
	rec := httptest.NewRecorder()
	if err := writeVerifyAnswer(rec, a); err != nil {
		t.Fatal(err)
	}
	if got := rec.Body.String(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
}

func TestVerifyAnswerIsWhatEncodingJSONWrites(t *testing.T) {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 600, time.UTC)
	full := verifyAnswer{
		VerifyResponse: VerifyResponse{
			Valid: true, Code: keygate.OutcomeValid, KeyID: "key_1", AccountID: "acc_1", Name: "prod", Env: keygate.EnvLive,
			Tier: "pro", Scopes: []string{"a:read", "b:*"}, Meta: json.RawMessage(`{"team":"x","n":[1,2]}`), ExpiresAt: &exp,
		},
		limits: true, quota: QuotaView{Limit: 100000, Remaining: 99999, Reset: 3600}, rate: RateView{Limit: 200, Remaining: 199, Reset: 1, Window: 2, RatePerSecond: 100},
	}
	cases := map[string]verifyAnswer{
		"full":    full,
		"refused": {VerifyResponse: VerifyResponse{Code: keygate.OutcomeNotFound, Detail: "The API key is not known."}},
		"retry":   {VerifyResponse: VerifyResponse{Code: keygate.OutcomeRateLimited, RetryAfter: 2, MissingScope: "x"}},
	}
	for _, name := range []string{"Ada <ops> & co", "Zoë", "tab\there", `quote"d`, "\u2028", "\xff"} {
		a := full
		a.Name = name
		cases["name "+name] = a
	}
	for _, meta := range []string{`{"a": 1}`, `{"html":"<b>"}`, `{"u":"é"}`, `{"e":"\"\\"}`, `[]`} {
		a := full
		a.Meta = json.RawMessage(meta)
		cases["meta "+meta] = a
	}
	for _, rate := range []float64{0, 0.5, 1.0 / 3, 1e-7, 1e21, 123456789.125} {
		a := full
		a.rate.RatePerSecond = rate
		cases["rate"] = a
		t.Run("rate", func(t *testing.T) { checkAnswer(t, &a) })
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) { checkAnswer(t, &a) })
	}
}

func FuzzVerifyAnswer(f *testing.F) {
	f.Add("prod", []byte(`{"a":1}`), 5.0, "kg:read")
	f.Add("<&>", []byte(`{"a": "<"}`), math.SmallestNonzeroFloat64, "é")
	f.Fuzz(func(t *testing.T, name string, meta []byte, rate float64, scope string) {
		if math.IsNaN(rate) || math.IsInf(rate, 0) || !json.Valid(meta) {
			t.Skip() // never in an answer: rates are finite, metadata valid JSON
		}
		a := verifyAnswer{
			VerifyResponse: VerifyResponse{Valid: true, Code: keygate.OutcomeValid, Name: name, Scopes: []string{scope}, Meta: meta},
			limits:         true, rate: RateView{RatePerSecond: rate},
		}
		checkAnswer(t, &a)
	})
}

func TestVerifyAnswerWriterKnowsEveryField(t *testing.T) {
	// A field added to the answer must be added to appendVerifyAnswer too.
	for typ, want := range map[reflect.Type]int{
		reflect.TypeFor[VerifyResponse](): verifyResponseFields,
		reflect.TypeFor[QuotaView]():      3,
		reflect.TypeFor[RateView]():       5,
	} {
		if got := typ.NumField(); got != want {
			t.Errorf("%s has %d fields; appendVerifyAnswer writes %d: update it and this test", typ, got, want)
		}
	}
}
