// Command minproxy is the gateway benchmark's reference: a minimal Go
// reverse proxy (httputil.ReverseProxy, same transport settings as the
// gateway) that only checks that the SHA-256 of X-API-Key is in a set.
package main

import (
	"crypto/sha256"
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"

	"github.com/keygate/keygate/gateway"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18091", "listen address")
	upstream := flag.String("upstream", "http://127.0.0.1:18092", "upstream URL")
	key := flag.String("key", "", "the one accepted key")
	flag.Parse()
	u, err := url.Parse(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	want := sha256.Sum256([]byte(*key))
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded(); pr.Out.Header.Del("X-Api-Key") },
		Transport: gateway.NewTransport(0),
	}
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sha256.Sum256([]byte(r.Header.Get("X-API-Key"))) != want {
			http.Error(w, "unauthorized", 401)
			return
		}
		rp.ServeHTTP(w, r)
	})))
}
