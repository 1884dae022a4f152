package secretscan

import (
	"regexp"
	"strings"
	"testing"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
)

func TestCheck(t *testing.T) {
	key, err := apikey.Generate("kg", keygate.EnvLive)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := apikey.Generate("kgr", keygate.EnvLive)
	var s Scanner
	s.Issued(`{"key":"` + key + `"}`)
	noise := strings.Repeat("path=/x/kg_live_4fQx… ", 200) // many candidates before the key
	clean := "msg=request path=/v1/keys/" + apikey.Start(key) + "…"
	s.Log("clean", func() string { return noise + clean })
	s.Log("first start", func() string { return "First start: " + root + "\n" }, regexp.MustCompile(`First start: \S+`))
	if err := s.Check(); err != nil {
		t.Fatalf("clean logs: %v", err)
	}
	s.Log("leaky", func() string { return noise + "level=INFO key=" + key })
	err = s.Check()
	if err == nil || !strings.Contains(err.Error(), "leaky") || strings.Contains(err.Error(), key) {
		t.Fatalf("a leaked key: got %v, want an error naming the log, not the key", err)
	}
	if logs, issued := s.Counts(); logs != 3 || issued != 1 {
		t.Errorf("Counts: %d, %d", logs, issued)
	}
}
