package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRootKeysCLI(t *testing.T) {
	s, root, _ := setup(t)
	var rk struct {
		ID, Name, Key string
		Permissions   []string
	}
	cliJSON(t, s, root, &rk, "root-keys", "create", "--name", "gateway", "--permission", "verify", "--permission", "admin:read")
	if !rootKeyRE.MatchString(rk.Key) || rk.Name != "gateway" || !slices.Equal(rk.Permissions, []string{"verify", "admin:read"}) {
		t.Fatalf("root-keys create: %+v", rk)
	}
	// The new key works within its permissions, and only there.
	if _, stderr, code := cli(t, s, rk.Key, "accounts", "list"); code != 0 {
		t.Fatalf("admin:read key cannot list accounts: %s", stderr)
	}
	wantFail(t, s, rk.Key, 1, "not allowed", "tiers", "create", "--name", "x", "--quota", "1", "--rate", "1", "--burst", "1")

	out, _, code := cli(t, s, root, "root-keys", "list")
	if code != 0 || !strings.Contains(out, rk.ID) || !strings.Contains(out, "verify,admin:read") || strings.Contains(out, rk.Key) || strings.Contains(out, root) {
		t.Fatalf("root-keys list: exit %d\n%s", code, out)
	}
	out, _, _ = cli(t, s, root, "root-keys", "create", "--name", "ops", "--permission", "admin:read,admin:write")
	if strings.Count(out, "kgr_live_") != 2 || !strings.Contains(out, "shown only this once") { // the start, and the key once
		t.Fatalf("root-keys create table:\n%s", out)
	}

	if _, stderr, code := cli(t, s, root, "root-keys", "revoke", rk.ID); code != 0 {
		t.Fatalf("root-keys revoke: %s", stderr)
	}
	wantFail(t, s, rk.Key, 1, "refused the root key", "accounts", "list")
	var list struct {
		Data []struct {
			ID        string
			RevokedAt *time.Time `json:"revoked_at"`
		}
	}
	cliJSON(t, s, root, &list, "root-keys", "list")
	if len(list.Data) != 3 {
		t.Fatalf("root-keys list --json: %+v", list)
	}
	for _, r := range list.Data {
		if (r.ID == rk.ID) != (r.RevokedAt != nil) {
			t.Fatalf("root-keys list after revoke: %+v", list)
		}
	}
	wantFail(t, s, root, 2, "needs --name and at least one --permission", "root-keys", "create", "--name", "x")
	wantFail(t, s, root, 1, "unknown", "root-keys", "create", "--name", "x", "--permission", "superuser")
	wantFail(t, s, root, 2, "root key ID", "root-keys", "revoke", root)
}
