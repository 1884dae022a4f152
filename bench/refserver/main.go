// Command refserver is the reference of docs/BENCHMARKS.md: the least a
// key-checking HTTP service can do. For POST /v1/keys/verify it decodes
// {"key": …}, hashes the key with SHA-256, looks the hash up in a map and
// answers a small JSON object. keygate's verify API is measured against it
// in the same run, on the same machine, with the same keys.
//
//	refserver -addr 127.0.0.1:18090 -keys import.jsonl
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
)

type record struct {
	Hash      string `json:"hash"`
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
}

type answer struct {
	Valid     bool   `json:"valid"`
	Code      string `json:"code"`
	Name      string `json:"name,omitempty"`
	AccountID string `json:"account_id,omitempty"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18090", "`HOST:PORT` to listen on")
	file := flag.String("keys", "", "JSONL `FILE` of keys as keygate import takes them (hash, account_id, name)")
	flag.Parse()
	keys, err := load(*file)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("POST /v1/keys/verify", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Key string `json:"key"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		a := answer{Code: "NOT_FOUND"}
		if rec, ok := keys[sha256.Sum256([]byte(req.Key))]; ok {
			a = answer{Valid: true, Code: "VALID", Name: rec.Name, AccountID: rec.AccountID}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(a)
	})
	log.Printf("refserver: %d keys, listening on %s", len(keys), *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}

func load(path string) (map[[32]byte]record, error) {
	keys := map[[32]byte]record{}
	if path == "" {
		return keys, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		var h [32]byte
		if n, err := hex.Decode(h[:], []byte(rec.Hash)); err != nil || n != 32 {
			return nil, fmt.Errorf("%s:%d: hash is not 64 hex digits", path, line)
		}
		keys[h] = rec
	}
	return keys, sc.Err()
}
