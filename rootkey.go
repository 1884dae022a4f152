package keygate

import (
	"slices"
	"time"
)

// Root key permissions.
const (
	PermAdminRead  = "admin:read"
	PermAdminWrite = "admin:write"
	PermVerify     = "verify"
	// PermMetrics reads /metrics when the server requires a root key there
	// (keygate serve --metrics-auth).
	PermMetrics = "metrics"
)

// AllPermissions lists every root key permission.
var AllPermissions = []string{PermAdminRead, PermAdminWrite, PermVerify, PermMetrics}

// RootKey is keygate's own admin credential: a key in the same format as API
// keys, with its own prefix, sent as "Authorization: Bearer …".
type RootKey struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Start       string     `json:"start"`
	Last4       string     `json:"last4"`
	Hash        string     `json:"-"`
	Permissions []string   `json:"permissions"`
	CreatedAt   time.Time  `json:"created_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// Can reports whether the root key holds perm.
func (r *RootKey) Can(perm string) bool { return slices.Contains(r.Permissions, perm) }

// ValidatePermissions checks that each permission is known.
func ValidatePermissions(perms []string) error {
	if len(perms) == 0 {
		return Errorf(EINVALID, "permissions must name at least one of %v.", AllPermissions)
	}
	for _, p := range perms {
		if !slices.Contains(AllPermissions, p) {
			return Errorf(EINVALID, "permission %q is unknown; use any of %v.", p, AllPermissions)
		}
	}
	return nil
}
