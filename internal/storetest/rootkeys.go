package storetest

import (
	"testing"
	"time"

	"github.com/keygate/keygate"
)

func testRootKeys(t *testing.T, f *fixture) {
	r1, r2 := f.newRootKey(), f.newRootKey()
	r2.Permissions = keygate.AllPermissions
	for _, r := range []*keygate.RootKey{r1, r2} {
		mustOK(t, f.s.CreateRootKey(f.ctx, r), "CreateRootKey")
	}
	for _, r := range []*keygate.RootKey{r1, r2} {
		got, err := f.s.RootKey(f.ctx, r.ID)
		mustOK(t, err, "RootKey")
		checkSame(t, "RootKey", got, r)
	}

	all, err := f.s.RootKeys(f.ctx)
	mustOK(t, err, "RootKeys")
	var ids []string
	for _, r := range all {
		ids = append(ids, r.ID)
		if r.ID == r2.ID {
			checkSame(t, "RootKeys", r, r2)
		}
	}
	wantIDs(t, "RootKeys", only(ids, []string{r1.ID, r2.ID}), []string{r1.ID, r2.ID})

	dup := f.newRootKey()
	dup.Hash = r1.Hash
	wantCode(t, f.s.CreateRootKey(f.ctx, dup), keygate.ECONFLICT, "CreateRootKey with a duplicate hash")
	_, err = f.s.RootKey(f.ctx, dup.ID)
	wantCode(t, err, keygate.ENOTFOUND, "RootKey after a refused duplicate")

	at := f.now.Add(time.Minute)
	mustOK(t, f.revokeRoot(r1.ID, at), "RevokeRootKey")
	got, err := f.s.RootKey(f.ctx, r1.ID)
	mustOK(t, err, "RootKey")
	want := *r1
	want.RevokedAt = &at
	checkSame(t, "RootKey after RevokeRootKey", got, &want)
	got, err = f.s.RootKey(f.ctx, r2.ID)
	mustOK(t, err, "RootKey")
	checkSame(t, "the other RootKey after RevokeRootKey", got, r2)

	missing := f.id(keygate.PrefixRootKey)
	wantCode(t, f.revokeRoot(missing, at), keygate.ENOTFOUND, "RevokeRootKey of a missing key")
	_, err = f.s.RootKey(f.ctx, missing)
	wantCode(t, err, keygate.ENOTFOUND, "RootKey of a missing key")
}
