package sqlstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
)

var (
	sqliteDialect   = Dialect{Time: func(t time.Time) any { return t.UnixMilli() }}
	postgresDialect = Dialect{Numbered: true, Time: func(t time.Time) any { return Stored(t) }}
)

func TestWherePlaceholders(t *testing.T) {
	for _, tc := range []struct {
		d          Dialect
		want, next string
	}{
		{sqliteDialect, " WHERE a = ? AND (b < ? OR c = ?)", "?"},
		{postgresDialect, " WHERE a = $1 AND (b < $2 OR c = $3)", "$4"},
	} {
		w := tc.d.Where()
		if w.String() != "" {
			t.Errorf("empty Where: %q, want \"\"", w.String())
		}
		w.Add("a = ?", 1)
		w.Add("(b < ? OR c = ?)", 2, 3)
		if got := w.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		if got := w.Next(4); got != tc.next {
			t.Errorf("Next() = %q, want %q", got, tc.next)
		}
		if got := w.Args(); !reflect.DeepEqual(got, []any{1, 2, 3, 4}) {
			t.Errorf("Args() = %v, want [1 2 3 4]", got)
		}
	}
}

func TestKeyFilterStatus(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	called := false
	now := func() time.Time { called = true; return at }

	w, err := KeyFilter(postgresDialect, keygate.KeyFilter{AccountID: "acc_1", Status: keygate.StatusDisabled, After: "key_9"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !called {
		t.Error("the store's clock was not read for a filter without Now")
	}
	want := " WHERE account_id = $1 AND (revoked_at IS NULL OR revoked_at > $2) AND (expires_at IS NULL OR expires_at > $3) AND enabled = $4 AND id > $5"
	if w.String() != want {
		t.Errorf("conditions:\n got %s\nwant %s", w.String(), want)
	}
	if got := w.Args(); !reflect.DeepEqual(got, []any{"acc_1", at, at, false, "key_9"}) {
		t.Errorf("args = %v", got)
	}

	called = false
	w, err = KeyFilter(sqliteDialect, keygate.KeyFilter{Status: keygate.StatusActive, Now: at}, now)
	if err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("the store's clock was read although the filter has Now")
	}
	if got := w.Args(); !reflect.DeepEqual(got, []any{at.UnixMilli(), at.UnixMilli(), true}) {
		t.Errorf("args = %v, want the time in ms twice and true", got)
	}

	_, err = KeyFilter(sqliteDialect, keygate.KeyFilter{Status: "gone"}, now)
	if keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("unknown status: %v, want EINVALID", err)
	}
}

func TestAuditFilterCursor(t *testing.T) {
	since := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	w := AuditFilter(sqliteDialect, keygate.AuditFilter{Actor: "root_key:rk_1", Since: since, Before: "aud_5"}, int64(42))
	want := " WHERE actor = ? AND time >= ? AND (time < ? OR (time = ? AND id < ?))"
	if w.String() != want {
		t.Errorf("conditions:\n got %s\nwant %s", w.String(), want)
	}
	if got := w.Args(); !reflect.DeepEqual(got, []any{"root_key:rk_1", since.UnixMilli(), int64(42), int64(42), "aud_5"}) {
		t.Errorf("args = %v", got)
	}
}

func TestUsageGroups(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
	to := from.Add(48 * time.Hour)
	col, groupBy, w, err := UsageGroups(postgresDialect, keygate.UsageQuery{Granularity: keygate.GranularityDay, GroupBy: keygate.GroupByRoute, KeyID: "key_1", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if col != "route" || groupBy != "bucket, route, outcome" {
		t.Errorf("col %q, group by %q", col, groupBy)
	}
	if got := w.Args(); !reflect.DeepEqual(got, []any{keygate.GranularityDay, keygate.UsageDay(from), to, "key_1"}) {
		t.Errorf("args = %v, want the period from the start of from's day", got)
	}
	if _, _, _, err := UsageGroups(postgresDialect, keygate.UsageQuery{Granularity: "week"}); keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("granularity week: %v, want EINVALID", err)
	}
	col, w, err = UsageTopGroups(sqliteDialect, keygate.UsageTopQuery{By: keygate.GroupByKey, Granularity: keygate.GranularityHour, From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if col != "key_id" || !strings.HasSuffix(w.String(), " AND key_id <> ''") {
		t.Errorf("top by key: col %q, conditions %q", col, w.String())
	}
}

func TestPrepareKey(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	k := &keygate.Key{AccountID: "acc_1", Env: keygate.EnvLive, HashAlg: keygate.HashKeygate, Hash: strings.Repeat("AB", 32)}
	if err := PrepareKey(k, now); err != nil {
		t.Fatal(err)
	}
	if k.Hash != strings.Repeat("ab", 32) {
		t.Errorf("hash %q, want it in lower case", k.Hash)
	}
	if !strings.HasPrefix(k.ID, keygate.PrefixKey) || !k.CreatedAt.Equal(now) || !k.UpdatedAt.Equal(now) {
		t.Errorf("ID %q, created %v, updated %v: want a new ID and now", k.ID, k.CreatedAt, k.UpdatedAt)
	}
	for name, bad := range map[string]keygate.Key{
		"short hash": {AccountID: "acc_1", Env: keygate.EnvLive, HashAlg: keygate.HashKeygate, Hash: "abc"},
		"no account": {Env: keygate.EnvLive, HashAlg: keygate.HashKeygate, Hash: k.Hash},
		"env":        {AccountID: "acc_1", Env: "prod", HashAlg: keygate.HashKeygate, Hash: k.Hash},
		"algorithm":  {AccountID: "acc_1", Env: keygate.EnvLive, HashAlg: "md5", Hash: k.Hash},
		"meta":       {AccountID: "acc_1", Env: keygate.EnvLive, HashAlg: keygate.HashKeygate, Hash: k.Hash, Meta: []byte("{")},
	} {
		if err := PrepareKey(&bad, now); keygate.ErrorCode(err) != keygate.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}

func TestPrepareAccountFirstKey(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	a := &keygate.Account{Email: "  Dev@Example.COM "}
	k := &keygate.Key{Env: keygate.EnvTest, HashAlg: keygate.HashKeygate, Hash: strings.Repeat("0", 64)}
	if err := PrepareAccount(a, k, now); err != nil {
		t.Fatal(err)
	}
	if a.Email != "dev@example.com" || k.AccountID != a.ID || a.ID == "" {
		t.Errorf("email %q, key's account %q, account %q", a.Email, k.AccountID, a.ID)
	}
	other := &keygate.Key{AccountID: "acc_other", Env: keygate.EnvTest, HashAlg: keygate.HashKeygate, Hash: strings.Repeat("0", 64)}
	if err := PrepareAccount(&keygate.Account{}, other, now); keygate.ErrorCode(err) != keygate.EINVALID {
		t.Errorf("first key of another account: %v, want EINVALID", err)
	}
}

func TestKeyChangeIsStoredCopy(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	quota := int64(5)
	k := &keygate.Key{ID: "key_1", CreatedAt: at, UpdatedAt: at, ExpiresAt: &at, QuotaPerDay: &quota, Meta: []byte("null")}
	c := KeyChange(k)
	if c.Kind != keygate.ChangeKey || c.ID != "key_1" {
		t.Fatalf("change %+v", c)
	}
	want := Stored(at)
	if c.Key.CreatedAt != want || *c.Key.ExpiresAt != want || c.Key.CreatedAt.Location() != time.UTC {
		t.Errorf("times %v, %v; want %v in UTC", c.Key.CreatedAt, *c.Key.ExpiresAt, want)
	}
	if c.Key.Scopes == nil || c.Key.IPAllow == nil || c.Key.Meta != nil {
		t.Errorf("scopes %#v, ip_allow %#v, meta %q: want empty lists and no meta", c.Key.Scopes, c.Key.IPAllow, c.Key.Meta)
	}
	quota = 6
	if *c.Key.QuotaPerDay != 5 {
		t.Error("the change shares the caller's quota")
	}
}

func TestSumUsage(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC)
	events := []keygate.UsageEvent{
		{Time: at, KeyID: "key_1", AccountID: "acc_1", Outcome: keygate.OutcomeValid, Route: "/a", Status: 200, Latency: time.Millisecond},
		{Time: at.Add(time.Minute), KeyID: "key_1", AccountID: "acc_1", Outcome: keygate.OutcomeValid, Route: "/a", Status: 200, Latency: time.Millisecond},
		{Time: at.Add(time.Hour), KeyID: "key_1", AccountID: "acc_1", Outcome: keygate.OutcomeValid, Route: "/a", Status: 200, Count: 5},
	}
	admitted := map[int64]map[string]bool{keygate.UsageDay(at).UnixMilli(): {"/a": true}}
	rollups, routes := SumUsage(events, admitted)
	hour := RollupKey{keygate.GranularityHour, "key_1", at.Truncate(time.Hour), keygate.OutcomeKey(keygate.OutcomeValid), "/a", 200}
	day := hour
	day.Granularity, day.Bucket = keygate.GranularityDay, keygate.UsageDay(at)
	if len(rollups) != 3 || rollups[hour] == nil || rollups[hour].Count != 2 || rollups[day] == nil || rollups[day].Count != 7 {
		t.Fatalf("rollups: %d rows; hour %+v, day %+v", len(rollups), rollups[hour], rollups[day])
	}
	if rollups[hour].AccountID != "acc_1" {
		t.Errorf("account %q", rollups[hour].AccountID)
	}
	if got := routes[RouteKey{at.Truncate(time.Hour), "/a", keygate.OutcomeKey(keygate.OutcomeValid)}]; got != 2 {
		t.Errorf("route count of the first hour: %d, want 2", got)
	}
}

func TestTrimRouteDays(t *testing.T) {
	routes := map[int64]map[string]bool{}
	for day := range int64(RouteDaysCached + 2) {
		routes[day] = map[string]bool{}
	}
	TrimRouteDays(routes)
	if len(routes) != RouteDaysCached || routes[0] != nil || routes[1] != nil {
		t.Errorf("days kept: %v, want the last %d", routes, RouteDaysCached)
	}
}

func TestListeners(t *testing.T) {
	var ls Listeners
	if ls.Any() {
		t.Fatal("Any with nothing registered")
	}
	var a, b []string
	removeA := ls.Add(func(c keygate.Change) { a = append(a, c.ID) })
	ls.Add(func(c keygate.Change) { b = append(b, c.ID) })
	ls.Notify([]keygate.Change{{ID: "1"}, {ID: "2"}})
	removeA()
	ls.Notify([]keygate.Change{{ID: "3"}})
	if !reflect.DeepEqual(a, []string{"1", "2"}) || !reflect.DeepEqual(b, []string{"1", "2", "3"}) {
		t.Errorf("a got %v, b got %v", a, b)
	}
	if !ls.Any() {
		t.Error("Any false with one registered")
	}
}

// fakeKeyTx keeps keys in a map, as a transaction would.
type fakeKeyTx struct {
	keys   map[string]*keygate.Key
	events []*keygate.AuditEvent
}

func (f *fakeKeyTx) LockKey(id string) (*keygate.Key, error) {
	k, ok := f.keys[id]
	if !ok {
		return nil, KeyNotFound(id)
	}
	return k.Clone(), nil
}

func (f *fakeKeyTx) UpdateKey(k *keygate.Key) (*keygate.Key, error) {
	f.keys[k.ID] = k.Clone()
	return k.Clone(), nil
}

func (f *fakeKeyTx) InsertKey(k *keygate.Key) error {
	f.keys[k.ID] = k.Clone()
	return nil
}

func (f *fakeKeyTx) InsertEvents(evs []*keygate.AuditEvent) error {
	f.events = append(f.events, evs...)
	return nil
}

func TestUpdateKey(t *testing.T) {
	tx := &fakeKeyTx{keys: map[string]*keygate.Key{"key_1": {ID: "key_1", Name: "old"}}}
	out, changes, err := UpdateKey(tx, "key_1", func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		k.ID, k.Name = "key_other", "new"
		return []*keygate.AuditEvent{{Action: "key.updated"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != "key_1" || out.Name != "new" || tx.keys["key_1"].Name != "new" || tx.keys["key_other"] != nil {
		t.Errorf("wrote %+v; stored %v", out, tx.keys)
	}
	if len(changes) != 1 || changes[0].ID != "key_1" || len(tx.events) != 1 {
		t.Errorf("changes %+v, events %d", changes, len(tx.events))
	}

	out, changes, err = UpdateKey(tx, "key_1", func(k *keygate.Key) ([]*keygate.AuditEvent, error) {
		k.Name = "not written"
		return nil, keygate.ErrUnchanged
	})
	if err != nil || out.Name != "new" || changes != nil || tx.keys["key_1"].Name != "new" {
		t.Errorf("unchanged: %+v, %v, %v; stored %q", out, changes, err, tx.keys["key_1"].Name)
	}

	fnErr := errors.New("refused")
	if _, _, err := UpdateKey(tx, "key_1", func(*keygate.Key) ([]*keygate.AuditEvent, error) { return nil, fnErr }); err != fnErr {
		t.Errorf("fn's error came back as %v", err)
	}
	if _, _, err := UpdateKey(tx, "key_none", nil); keygate.ErrorCode(err) != keygate.ENOTFOUND {
		t.Errorf("missing key: %v, want ENOTFOUND", err)
	}
}

func TestRotateKey(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tx := &fakeKeyTx{keys: map[string]*keygate.Key{"key_1": {ID: "key_1", AccountID: "acc_1"}}}
	if _, _, _, err := RotateKey(tx, "key_1", clock, func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
		return nil, nil, nil
	}); keygate.ErrorCode(err) != keygate.EINTERNAL {
		t.Errorf("no replacement: %v, want EINTERNAL", err)
	}
	old, repl, changes, err := RotateKey(tx, "key_1", clock, func(k *keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error) {
		k.RevokedAt = &now
		return &keygate.Key{AccountID: k.AccountID, Env: keygate.EnvLive, HashAlg: keygate.HashKeygate, Hash: strings.Repeat("f", 64), Replaces: k.ID}, nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if old.RevokedAt == nil || repl.ID == "" || !repl.CreatedAt.Equal(now) || tx.keys[repl.ID] == nil {
		t.Errorf("old %+v, replacement %+v", old, repl)
	}
	if len(changes) != 2 || changes[0].ID != "key_1" || changes[1].ID != repl.ID {
		t.Errorf("changes %+v", changes)
	}
}

func TestImportError(t *testing.T) {
	k := &keygate.Key{ID: "key_7"}
	err := ImportError(3, k, UnknownTier("gold"))
	if keygate.ErrorCode(err) != keygate.EINVALID || !strings.HasPrefix(keygate.ErrorMessage(err), "Key 3 of the import (key_7): Tier \"gold\"") {
		t.Errorf("got %v", err)
	}
	plain := errors.New("disk")
	if ImportError(3, k, plain) != plain {
		t.Error("an error without a code was changed")
	}
}
