package keyauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/keyauth"
)

// oneKey is a Verifier that knows one key; in a service it is the engine
// (engine.Engine), which checks keys from memory.
type oneKey string

func (k oneKey) Verify(_ context.Context, req keygate.VerifyRequest) keygate.Verification {
	switch req.Key {
	case "":
		return keygate.Verification{Outcome: keygate.OutcomeMissingKey}
	case string(k):
		return keygate.Verification{Outcome: keygate.OutcomeValid, Key: &keygate.VerifiedKey{ID: "key_1", AccountID: "acc_1"}}
	}
	return keygate.Verification{Outcome: keygate.OutcomeNotFound}
}

func ExampleNew() {
	mw := keyauth.New(oneKey("kg_live_example"), keyauth.Options{})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := keyauth.FromContext(r.Context())
		fmt.Fprintf(w, "hello %s", v.Key.AccountID)
	}))

	for _, key := range []string{"kg_live_example", "", "kg_live_other"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/weather", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	}
	// Output:
	// 200 text/plain; charset=utf-8
	// 401 application/problem+json
	// 401 application/problem+json
}
