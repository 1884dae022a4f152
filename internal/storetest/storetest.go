// Package storetest is the conformance suite for keygate.Store: every store
// (sqlite, postgres) runs the same tests through Run, in the manner of
// Litestream's RunWithReplicaClient.
//
// The suite may run against a database that other tests share, so it never
// assumes one is empty beyond what the factory gives: every test makes its
// own accounts, emails, tiers, actors and key IDs, unique to the run, and
// filters what it lists down to them. The built-in tiers are the one thing
// it expects to find.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

// Run runs every conformance test against stores from newStore, which
// returns a fresh store for each subtest and registers its own cleanup.
// Subtests run in parallel.
func Run(t *testing.T, newStore func(t *testing.T) keygate.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"DefaultTiers", testDefaultTiers},
		{"Tiers", testTiers},
		{"TierErrors", testTierErrors},
		{"DeleteTierInUse", testDeleteTierInUse},
		{"CreateAccount", testCreateAccount},
		{"CreateAccountWithFirstKey", testCreateAccountWithFirstKey},
		{"CreateAccountAtomic", testCreateAccountAtomic},
		{"CreateAccountErrors", testCreateAccountErrors},
		{"UpdateAccount", testUpdateAccount},
		{"Accounts", testAccounts},
		{"AccountsDefaultPageSize", testAccountsDefaultPageSize},
		{"CreateKey", testCreateKey},
		{"CreateKeyErrors", testCreateKeyErrors},
		{"UpdateKey", testUpdateKey},
		{"UpdateKeyErrors", testUpdateKeyErrors},
		{"KeysFilter", testKeysFilter},
		{"KeysPagination", testKeysPagination},
		{"RotateKey", testRotateKey},
		{"RotateKeyAtomic", testRotateKeyAtomic},
		{"ImportKeys", testImportKeys},
		{"ImportKeysAtomic", testImportKeysAtomic},
		{"ForEachKey", testForEachKey},
		{"CountKeys", testCountKeys},
		{"Invites", testInvites},
		{"RootKeys", testRootKeys},
		{"RevokeLastAdminWriter", testRevokeLastAdminWriter},
		{"ConditionalUnchanged", testConditionalUnchanged},
		{"ConditionalConcurrent", testConditionalConcurrent},
		{"AuditWithWrites", testAuditWithWrites},
		{"AuditNotWrittenOnFailure", testAuditNotWrittenOnFailure},
		{"AuditFailureRollsBackWrite", testAuditFailureRollsBackWrite},
		{"AuditEventsFilter", testAuditEventsFilter},
		{"Counters", testCounters},
		{"ChangedSince", testChangedSince},
		{"OnChange", testOnChange},
		{"OnChangeNotOnFailure", testOnChangeNotOnFailure},
		{"OnChangeRemove", testOnChangeRemove},
		{"TimesRoundTrip", testTimesRoundTrip},
		{"EmptySlices", testEmptySlices},
		{"ConcurrentWrites", testConcurrentWrites},
		{"Ping", testPing},
		{"RecordUsage", testRecordUsage},
		{"UsageEvents", testUsageEvents},
		{"PruneUsage", testPruneUsage},
		{"RecordUsageIsNotAChange", testRecordUsageIsNotAChange},
		{"RecordUsageAggregates", testRecordUsageAggregates},
		{"UsageGroupedMatchesRaw", testUsageGroupedMatchesRaw},
		{"UsageTop", testUsageTop},
		{"UsageRoutesBounded", testUsageRoutesBounded},
		{"Webhooks", testWebhooks},
		{"WebhookOutbox", testWebhookOutbox},
		{"WebhookEnqueue", testWebhookEnqueue},
		{"WebhookClaimConcurrent", testWebhookClaimConcurrent},
		{"ExpiringKeys", testExpiringKeys},
		{"Sessions", testSessions},
		{"SessionErrors", testSessionErrors},
		{"RevokeSessions", testRevokeSessions},
		{"PruneSessions", testPruneSessions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newFixture(t, newStore(t)))
		})
	}
}

// fixture makes records that are unique to one test, with IDs whose
// embedded times increase one millisecond per ID, so that ID order is
// creation order even within one wall-clock millisecond.
type fixture struct {
	s   keygate.Store
	ctx context.Context
	now time.Time // in UTC, to the millisecond: it round-trips exactly

	mu  sync.Mutex
	seq int
	tag string // unique to this test: part of every name, email and actor
}

func newFixture(t *testing.T, s keygate.Store) *fixture {
	return &fixture{
		s:   s,
		ctx: t.Context(),
		now: time.Now().UTC().Truncate(time.Millisecond),
		tag: randomString(10),
	}
}

// id returns a new ID with prefix, later in ID order than any before it.
func (f *fixture) id(prefix string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return keygate.NewID(prefix, f.now.Add(time.Duration(f.seq)*time.Millisecond))
}

// name returns a name unique to this test, usable as a tier name.
func (f *fixture) name(kind string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	return fmt.Sprintf("%s-%s-%d", kind, f.tag, f.seq)
}

func (f *fixture) email() string { return f.name("dev") + "@example.com" }

func (f *fixture) actor() string { return "test:" + f.name("actor") }

// newTier returns an unsaved tier with a unique name.
func (f *fixture) newTier() *keygate.Tier {
	return &keygate.Tier{Name: f.name("t"), QuotaPerDay: 5000, RatePerSecond: 2.5, Burst: 7, CreatedAt: f.now, UpdatedAt: f.now}
}

// tier creates a tier with a unique name.
func (f *fixture) tier(t *testing.T) *keygate.Tier {
	t.Helper()
	tier := f.newTier()
	mustOK(t, f.s.CreateTier(f.ctx, tier), "CreateTier")
	return tier
}

// newAccount returns an unsaved account on tier with a unique email.
func (f *fixture) newAccount(tier string) *keygate.Account {
	return &keygate.Account{
		ID: f.id(keygate.PrefixAccount), Name: "Dev " + f.tag, Email: f.email(), Tier: tier,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", CreatedAt: f.now, UpdatedAt: f.now,
	}
}

// account creates an account on tier.
func (f *fixture) account(t *testing.T, tier string) *keygate.Account {
	t.Helper()
	a := f.newAccount(tier)
	mustOK(t, f.s.CreateAccount(f.ctx, a, nil), "CreateAccount")
	return a
}

// newKey returns an unsaved, enabled live key of account, inheriting its
// tier, with no scopes, CIDRs or metadata.
func (f *fixture) newKey(accountID string) *keygate.Key {
	return &keygate.Key{
		ID: f.id(keygate.PrefixKey), AccountID: accountID, Name: "key " + f.tag, Env: keygate.EnvLive,
		Start: "kg_live_ab12", Last4: "Zx9q", Hash: hash(), HashAlg: keygate.HashKeygate,
		Enabled: true, CreatedAt: f.now, UpdatedAt: f.now,
	}
}

// key creates a key of account.
func (f *fixture) key(t *testing.T, accountID string) *keygate.Key {
	t.Helper()
	k := f.newKey(accountID)
	mustOK(t, f.s.CreateKey(f.ctx, k), "CreateKey")
	return k
}

// newRootKey returns an unsaved root key.
func (f *fixture) newRootKey() *keygate.RootKey {
	return &keygate.RootKey{
		ID: f.id(keygate.PrefixRootKey), Name: "root " + f.tag, Start: "kgr_live_cd34", Last4: "Q1w2",
		Hash: hash(), Permissions: []string{keygate.PermAdminRead, keygate.PermVerify}, CreatedAt: f.now,
	}
}

// event returns an audit event by actor about a target.
func (f *fixture) event(actor, action, targetType, targetID string) *keygate.AuditEvent {
	return &keygate.AuditEvent{
		ID: f.id(keygate.PrefixAudit), Time: f.now, Actor: actor, Action: action,
		TargetType: targetType, TargetID: targetID, Details: json.RawMessage(`{"reason":"test","n":1}`),
	}
}

// hash returns a random 64-character lower-case hex string, the shape of a
// key's SHA-256 hash.
func hash() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// randomString returns n random characters from [0-9a-z].
func randomString(n int) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantCode fails the test unless err carries the code.
func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if got := keygate.ErrorCode(err); got != code {
		t.Errorf("%s: got error code %q (%v), want %q", what, got, err, code)
	}
}

func keyIDs(ks []*keygate.Key) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

func accountIDs(as []*keygate.Account) []string {
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.ID
	}
	return ids
}

func eventIDs(evs []*keygate.AuditEvent) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

// only returns the elements of ids that are in keep, in order: the part of
// a listing that belongs to this test.
func only(ids, keep []string) []string {
	out := []string{}
	for _, id := range ids {
		if slices.Contains(keep, id) {
			out = append(out, id)
		}
	}
	return out
}

// wantIDs compares two ID lists, order included.
func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s: got IDs %v, want %v", what, got, want)
	}
}

// checkSame fails the test with one line per differing field unless got
// and want are the same record. Times are compared with Equal, JSON by
// value, and nil slices equal empty ones (testEmptySlices checks the
// difference where it matters).
func checkSame(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := diff(got, want); d != "" {
		t.Errorf("%s: got a different record:\n%s", what, d)
	}
}

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// diff returns one line per field in which got and want differ, or "".
func diff(got, want any) string {
	var out []string
	diffValue(&out, "", reflect.ValueOf(got), reflect.ValueOf(want))
	return strings.Join(out, "\n")
}

func diffValue(out *[]string, path string, g, w reflect.Value) {
	report := func() {
		*out = append(*out, fmt.Sprintf("\t%s: got %s, want %s", strings.TrimPrefix(path, "."), show(g), show(w)))
	}
	switch {
	case g.Type() == timeType:
		if !g.Interface().(time.Time).Equal(w.Interface().(time.Time)) {
			report()
		}
		return
	case g.Type() == rawType:
		if !jsonEqual(g.Bytes(), w.Bytes()) {
			report()
		}
		return
	}
	switch g.Kind() {
	case reflect.Pointer:
		if g.IsNil() || w.IsNil() {
			if g.IsNil() != w.IsNil() {
				report()
			}
			return
		}
		diffValue(out, path, g.Elem(), w.Elem())
	case reflect.Struct:
		for i := range g.NumField() {
			if g.Type().Field(i).IsExported() {
				diffValue(out, path+"."+g.Type().Field(i).Name, g.Field(i), w.Field(i))
			}
		}
	case reflect.Slice:
		if g.Len() != w.Len() {
			report()
			return
		}
		for i := range g.Len() {
			diffValue(out, fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i))
		}
	default:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			report()
		}
	}
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "nil"
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == timeType:
		return v.Interface().(time.Time).Format(time.RFC3339Nano)
	case v.Type() == rawType:
		return fmt.Sprintf("%s", v.Bytes())
	}
	return fmt.Sprintf("%#v", v.Interface())
}

// jsonEqual reports whether a and b hold the same JSON value; empty equals
// empty.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}

// recorder collects the Changes a store reports.
type recorder struct {
	mu      sync.Mutex
	changes []keygate.Change
}

func (r *recorder) record(c keygate.Change) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes = append(r.changes, c)
}

// about returns the recorded changes whose ID is one of ids, in order.
func (r *recorder) about(ids ...string) []keygate.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []keygate.Change
	for _, c := range r.changes {
		if slices.Contains(ids, c.ID) {
			out = append(out, c)
		}
	}
	return out
}

// replaceKey sets every field of the stored key to k's through UpdateKey,
// returning evs from its function: the store must still ignore changes to
// the fields that never change.
func (f *fixture) replaceKey(k *keygate.Key, evs ...*keygate.AuditEvent) error {
	_, err := f.s.UpdateKey(f.ctx, k.ID, func(cur *keygate.Key) ([]*keygate.AuditEvent, error) {
		*cur = *k.Clone()
		return evs, nil
	})
	return err
}

// replaceAccount sets every field of the stored account to a's through
// UpdateAccount, and then a to the account as stored.
func (f *fixture) replaceAccount(a *keygate.Account, evs ...*keygate.AuditEvent) error {
	got, err := f.s.UpdateAccount(f.ctx, a.ID, func(cur *keygate.Account) ([]*keygate.AuditEvent, error) {
		*cur = *a
		return evs, nil
	})
	if err == nil {
		*a = *got
	}
	return err
}

// replaceTier sets the stored tier's limits to t's through UpdateTier, and
// then t to the tier as stored.
func (f *fixture) replaceTier(t *keygate.Tier, evs ...*keygate.AuditEvent) error {
	got, err := f.s.UpdateTier(f.ctx, t.Name, func(cur *keygate.Tier) ([]*keygate.AuditEvent, error) {
		*cur = *t
		return evs, nil
	})
	if err == nil {
		*t = *got
	}
	return err
}

// rotate sets every field of the stored key old.ID to old's and creates
// replacement, through RotateKey.
func (f *fixture) rotate(old, replacement *keygate.Key, evs ...*keygate.AuditEvent) error {
	_, _, err := f.s.RotateKey(f.ctx, old.ID, func(cur *keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
		*cur = *old.Clone()
		return replacement, evs, nil
	})
	return err
}

// revokeRoot revokes root key id at at through RevokeRootKey, storing
// evs; a key already revoked keeps its time.
func (f *fixture) revokeRoot(id string, at time.Time, evs ...*keygate.AuditEvent) error {
	_, err := f.s.RevokeRootKey(f.ctx, id, func(r *keygate.RootKey, _ int) ([]*keygate.AuditEvent, error) {
		if r.RevokedAt == nil {
			r.RevokedAt = &at
		}
		return evs, nil
	})
	return err
}
