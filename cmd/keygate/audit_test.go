package main

import (
	"strings"
	"testing"
)

func TestCompactDetails(t *testing.T) {
	if got := compactDetails([]byte("{\n  \"a\": 1,\n  \"b\": \"x\\ty\"\n}"), 80); got != `{"a":1,"b":"x\ty"}` {
		t.Fatalf("got %q", got)
	}
	got := compactDetails([]byte(`{"long":"`+strings.Repeat("é", 100)+`"}`), 20)
	if len([]rune(got)) != 20 || !strings.HasSuffix(got, "…") {
		t.Fatalf("got %q", got)
	}
	if compactDetails(nil, 10) != "" || compactDetails([]byte("null"), 10) != "" {
		t.Fatal("empty details")
	}
}
