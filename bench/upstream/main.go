// Command upstream is the gateway benchmark's upstream: a bare net/http
// server answering a small JSON body.
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18092", "listen address")
	flag.Parse()
	body := []byte(`{"city":"Berlin","forecast":"sunny","temperature_c":21}` + "\n")
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})))
}
