// Command genkeys writes N new keygate keys for the benchmark harness: an
// import file (JSONL of SHA-256 hashes, as `keygate import` takes it) and a
// file of the first few plaintext keys, which the load generator sends.
// The keys are in keygate's own format, so an unpeppered keygate verifies
// them exactly as keys it issued itself.
//
//	genkeys -n 1000000 -account acc_… -tier bench -import import.jsonl -plain keys.txt
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

func main() {
	n := flag.Int("n", 1000, "how many keys")
	account := flag.String("account", "", "account `ID` the keys belong to")
	tier := flag.String("tier", "", "tier `NAME` of the keys (empty: the account's)")
	importPath := flag.String("import", "import.jsonl", "import `FILE` to write")
	plainPath := flag.String("plain", "keys.txt", "`FILE` to write the sample plaintext keys to")
	sample := flag.Int("sample", 1000, "how many plaintext keys to write")
	flag.Parse()
	if *n < 1 || *account == "" {
		log.Fatal("genkeys: -n must be positive and -account set")
	}
	imp, err := os.Create(*importPath)
	if err != nil {
		log.Fatal(err)
	}
	plain, err := os.OpenFile(*plainPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	iw, pw := bufio.NewWriterSize(imp, 1<<20), bufio.NewWriter(plain)
	enc := json.NewEncoder(iw)
	for i := range *n {
		key, err := apikey.Generate(apikey.DefaultPrefix, keygate.EnvLive)
		if err != nil {
			log.Fatal(err)
		}
		row := map[string]string{"hash": apikey.SHA256Hex(key), "account_id": *account, "name": fmt.Sprintf("bench-%d", i)}
		if *tier != "" {
			row["tier"] = *tier
		}
		if err := enc.Encode(row); err != nil {
			log.Fatal(err)
		}
		if i < *sample {
			fmt.Fprintln(pw, key)
		}
	}
	for _, err := range []error{iw.Flush(), pw.Flush(), imp.Close(), plain.Close()} {
		if err != nil {
			log.Fatal(err)
		}
	}
}
