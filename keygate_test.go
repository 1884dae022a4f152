package keygate_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func TestScopeGrants(t *testing.T) {
	tests := []struct {
		held, required string
		want           bool
	}{
		{"weather:read", "weather:read", true},
		{"weather:read", "weather:write", false},
		{"weather:*", "weather:read", true},
		{"weather:*", "weather:forecast:read", true},
		{"weather:*", "weather", false},
		{"weather:*", "weatherman:read", false},
		{"*", "anything:at:all", true},
		{"weather", "weather:read", false},
	}
	for _, tt := range tests {
		if got := keygate.ScopeGrants(tt.held, tt.required); got != tt.want {
			t.Errorf("ScopeGrants(%q, %q): got %v, want %v", tt.held, tt.required, got, tt.want)
		}
	}
	if m, ok := keygate.MissingScope([]string{"a:*", "b:read"}, []string{"a:x", "b:read", "c:read"}); !ok || m != "c:read" {
		t.Errorf("MissingScope: got %q, %v; want c:read", m, ok)
	}
	if _, ok := keygate.MissingScope([]string{"*"}, []string{"x"}); ok {
		t.Error("MissingScope: '*' should grant everything")
	}
}

func TestNormalizeScopes(t *testing.T) {
	got, err := keygate.NormalizeScopes([]string{"b:read", " a:* ", "b:read", "*"})
	if err != nil || !slices.Equal(got, []string{"*", "a:*", "b:read"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, bad := range []string{"", "a b", "a::b", ":a", "a:", "a:*:b", "a*", "é:read", strings.Repeat("a", 129)} {
		if _, err := keygate.NormalizeScopes([]string{bad}); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("scope %q: got %v, want EINVALID", bad, err)
		}
	}
}

func TestNormalizeCIDRs(t *testing.T) {
	got, err := keygate.NormalizeCIDRs([]string{"203.0.113.7", "10.1.2.3/8", "2001:db8::1/32", "::ffff:192.0.2.1"})
	want := []string{"203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "10.0.0.0/33", "300.1.1.1", "2001:db8::/129", "example.com"} {
		if _, err := keygate.NormalizeCIDRs([]string{bad}); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("CIDR %q: got %v, want EINVALID", bad, err)
		}
	}
}

func TestNormalizeMeta(t *testing.T) {
	got, err := keygate.NormalizeMeta(json.RawMessage(` { "plan" : "beta" } `))
	if err != nil || string(got) != `{"plan":"beta"}` {
		t.Fatalf("got %s, %v", got, err)
	}
	if got, err := keygate.NormalizeMeta(json.RawMessage(`null`)); err != nil || got != nil {
		t.Fatalf("null: got %s, %v", got, err)
	}
	big := `{"x":"` + strings.Repeat("a", keygate.MaxMetaBytes) + `"}`
	for _, bad := range []string{`[1]`, `"s"`, `{"a":`, big} {
		if _, err := keygate.NormalizeMeta(json.RawMessage(bad)); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("meta %.20q: got %v, want EINVALID", bad, err)
		}
	}
}

func TestKeyStatus(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Minute), now.Add(time.Minute)
	tests := []struct {
		name string
		k    keygate.Key
		want string
	}{
		{"active", keygate.Key{Enabled: true}, keygate.StatusActive},
		{"revoked", keygate.Key{Enabled: true, RevokedAt: &past}, keygate.StatusRevoked},
		{"revoked exactly now", keygate.Key{Enabled: true, RevokedAt: &now}, keygate.StatusRevoked},
		{"in its grace period", keygate.Key{Enabled: true, RevokedAt: &future}, keygate.StatusActive},
		{"expired", keygate.Key{Enabled: true, ExpiresAt: &past}, keygate.StatusExpired},
		{"disabled", keygate.Key{}, keygate.StatusDisabled},
		{"revoked wins over expired and disabled", keygate.Key{RevokedAt: &past, ExpiresAt: &past}, keygate.StatusRevoked},
	}
	for _, tt := range tests {
		if got := tt.k.Status(now); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestTierValidate(t *testing.T) {
	for _, tier := range keygate.DefaultTiers(time.Now()) {
		if err := tier.Validate(); err != nil {
			t.Errorf("built-in tier %s: %v", tier.Name, err)
		}
	}
	bad := []keygate.Tier{
		{Name: "Gold", QuotaPerDay: 1, RatePerSecond: 1, Burst: 1},
		{Name: "gold", QuotaPerDay: 0, RatePerSecond: 1, Burst: 1},
		{Name: "gold", QuotaPerDay: keygate.MaxQuotaPerDay + 1, RatePerSecond: 1, Burst: 1},
		{Name: "gold", QuotaPerDay: 1, RatePerSecond: 0, Burst: 1},
		{Name: "gold", QuotaPerDay: 1, RatePerSecond: 1, Burst: 0},
	}
	for _, tier := range bad {
		if err := tier.Validate(); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("%+v: got %v, want EINVALID", tier, err)
		}
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 100 {
		ids = append(ids, keygate.NewID(keygate.PrefixKey, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	if !slices.IsSorted(ids) {
		t.Fatal("IDs made later do not sort later")
	}
	if len(ids[0]) != len(keygate.PrefixKey)+26 || ids[0] == ids[1] {
		t.Fatalf("got %q, %q", ids[0], ids[1])
	}
}

func TestEffectiveLimits(t *testing.T) {
	tier := &keygate.Tier{QuotaPerDay: 1000, RatePerSecond: 5, Burst: 10}
	q := int64(50)
	if got := keygate.EffectiveLimits(&keygate.Key{QuotaPerDay: &q}, tier); got != (keygate.Limits{QuotaPerDay: 50, RatePerSecond: 5, Burst: 10}) {
		t.Fatalf("got %+v", got)
	}
}

func TestNewIDsAreMonotonic(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := keygate.NewIDs(keygate.PrefixKey, now, 10_000)
	if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Fatal("NewIDs: want strictly increasing IDs")
	}
	later := keygate.NewID(keygate.PrefixKey, now.Add(time.Millisecond))
	if later <= ids[len(ids)-1] {
		t.Fatalf("an ID of the next millisecond sorts before the batch: %s <= %s", later, ids[len(ids)-1])
	}
}

func TestParseHash(t *testing.T) {
	const lower = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{lower, true},
		{strings.ToUpper(lower), true},
		{lower[:63], false},
		{lower + "0", false},
		{"g" + lower[1:], false},
		{"", false},
		{"kg_live_" + lower[8:], false},
	} {
		sum, ok := keygate.ParseHash(tt.in)
		if ok != tt.ok {
			t.Errorf("ParseHash(%q): got ok %v, want %v", tt.in, ok, tt.ok)
		}
		if ok && (sum[0] != 0x9f || sum[31] != 0x08) {
			t.Errorf("ParseHash(%q): got %x", tt.in, sum)
		}
	}
}

func TestCeilSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0},
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + time.Nanosecond, 2},
		{1500 * time.Millisecond, 2},
		{86400 * time.Second, 86400},
		{-time.Second, -1},
		{-1500 * time.Millisecond, -1},
	} {
		if got := keygate.CeilSeconds(tt.d); got != tt.want {
			t.Errorf("CeilSeconds(%v): got %d, want %d", tt.d, got, tt.want)
		}
	}
}
