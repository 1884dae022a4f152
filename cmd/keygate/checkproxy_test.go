package main

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/keygate/keygate/internal/apicheck"
)

// checkedURL puts a reverse proxy in front of the keygate server at
// target and returns the proxy's URL, which the tests use as the server's
// (their own requests, and the CLI's KEYGATE_URL). The proxy checks every
// exchange on a path the API's document covers against api/openapi.json
// (apicheck.Covered), failing t on a mismatch; gateway traffic and the
// portal's pages pass through unchecked.
//
// Otherwise it is meant to be invisible: the server sees the Host and
// X-Forwarded-* headers the client sent, answers stream as they come,
// and when the server cannot be reached (not started yet, stopped,
// killed) the client's connection is cut without an answer, much as if
// it had dialled the server itself. tr (nil for a plain one) is how the
// proxy reaches the server, e.g. over TLS.
func checkedURL(t *testing.T, target string, tr *http.Transport) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	if tr == nil {
		tr = &http.Transport{}
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host
			for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) {
			panic(http.ErrAbortHandler) // the server cannot be reached: cut the connection
		},
	}
	ts := httptest.NewServer(apicheck.Covered(t, rp))
	t.Cleanup(func() {
		ts.Close()
		tr.CloseIdleConnections()
	})
	return ts.URL
}
