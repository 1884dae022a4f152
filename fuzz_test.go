package keygate_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/keygate/keygate"
)

// FuzzScopes checks scope validation and matching on arbitrary input:
// NormalizeScopes never panics, what it accepts is valid, sorted and
// unique, and ScopeGrants holds its promises (a scope grants itself; "*"
// grants everything; a wildcard grants only longer scopes under it).
func FuzzScopes(f *testing.F) {
	for _, s := range [][2]string{
		{"weather:read", "weather:read"}, {"weather:*", "weather:read"}, {"*", "admin:write"},
		{"weather:*", "weather"}, {"a:b:c:*", "a:b:c:d:e"}, {"we@ther", "x"}, {"", ":"},
		{"weather::read", "weather:*:read"}, {strings.Repeat("a", 129), "a"}, {"w\x00x", "w"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, held, required string) {
		out, err := keygate.NormalizeScopes(strings.Split(held, ","))
		if err != nil {
			if keygate.ErrorCode(err) != keygate.EINVALID {
				t.Fatalf("NormalizeScopes(%q): error code %s, want EINVALID", held, keygate.ErrorCode(err))
			}
		} else {
			for i, s := range out {
				if !keygate.ValidScope(s) {
					t.Fatalf("NormalizeScopes(%q) returned invalid %q", held, s)
				}
				if i > 0 && out[i-1] >= s {
					t.Fatalf("NormalizeScopes(%q) = %q: not sorted and unique", held, out)
				}
			}
		}
		if !keygate.ScopeGrants(required, required) {
			t.Fatalf("%q does not grant itself", required)
		}
		if !keygate.ScopeGrants("*", required) {
			t.Fatalf("* does not grant %q", required)
		}
		if keygate.ValidScope(held) && strings.HasSuffix(held, ":*") && keygate.ScopeGrants(held, required) && held != required {
			if !strings.HasPrefix(required, strings.TrimSuffix(held, "*")) || len(required) <= len(held)-1 {
				t.Fatalf("%q grants %q, which is not under it", held, required)
			}
		}
		if miss, ok := keygate.MissingScope([]string{held}, []string{required}); ok != !keygate.ScopeGrants(held, required) || (ok && miss != required) {
			t.Fatalf("MissingScope(%q, %q) = %q, %v disagrees with ScopeGrants", held, required, miss, ok)
		}
	})
}

// FuzzCIDRs checks the parsing of ip_allow lists: no panic, a 400-kind
// error for what does not parse, and what parses is canonical (parsing
// it again gives it back) and contains the address it was given.
func FuzzCIDRs(f *testing.F) {
	for _, s := range []string{
		"203.0.113.0/24", "2001:db8::/32", "10.0.0.1", "::ffff:10.0.0.1", "10.0.0.1/33", "fe80::1%eth0",
		"1.2.3.4/24,5.6.7.8", " 192.0.2.1 ", "::/0", "0.0.0.0/0", "300.1.1.1", "1.2.3.4/-1", "", ",,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		out, err := keygate.NormalizeCIDRs(strings.Split(list, ","))
		if err != nil {
			if keygate.ErrorCode(err) != keygate.EINVALID {
				t.Fatalf("NormalizeCIDRs(%q): error code %s, want EINVALID", list, keygate.ErrorCode(err))
			}
			return
		}
		for _, s := range out {
			p, err := keygate.ParseCIDR(s)
			if err != nil || p.String() != s {
				t.Fatalf("NormalizeCIDRs(%q) gave %q, which parses to %v, %v", list, s, p, err)
			}
			if p != p.Masked() {
				t.Fatalf("%q is not masked", s)
			}
		}
		for _, part := range strings.Split(list, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil || a.Zone() != "" {
				continue
			}
			p, err := keygate.ParseCIDR(part)
			if err != nil || !p.Contains(a.Unmap()) {
				t.Fatalf("ParseCIDR(%q) = %v, %v: does not hold the address", part, p, err)
			}
		}
	})
}
