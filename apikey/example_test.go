package apikey_test

import (
	"fmt"

	"github.com/keygate/keygate/apikey"
)

func ExampleParse() {
	key := "kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg4USyQz"
	p, err := apikey.Parse(key)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Prefix, p.Env, len(p.Secret))
	fmt.Println(apikey.Start(key), apikey.Last4(key))

	// One mistyped character is caught without any store lookup.
	_, err = apikey.Parse("kg_live_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefh4USyQz")
	fmt.Println(err)
	// Output:
	// kg live 43
	// kg_live_0123 SyQz
	// apikey: checksum mismatch
}

func ExampleValidPrefix() {
	for _, p := range []string{"kg", "acme2", "Acme", "k", "my_co"} {
		fmt.Println(p, apikey.ValidPrefix(p))
	}
	// Output:
	// kg true
	// acme2 true
	// Acme false
	// k false
	// my_co false
}

func ExampleSHA256Hex() {
	// Keys imported from a system that stored plain SHA-256 hex are looked
	// up by this hash, whatever pepper the server uses.
	fmt.Println(apikey.SHA256Hex("abc"))
	// Output:
	// ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
}
