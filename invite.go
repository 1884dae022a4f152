package keygate

import (
	"context"
	"time"
)

// PrefixInvite starts the ID of an invitation. InviteCodePrefix starts the
// code itself, which is a secret shown once.
const (
	PrefixInvite     = "inv_"
	InviteCodePrefix = "kginv_"
)

// Invitation lifetimes: DefaultInviteTTL when none is asked for, and at
// most MaxInviteTTL.
const (
	DefaultInviteTTL = 7 * 24 * time.Hour
	MaxInviteTTL     = 90 * 24 * time.Hour
	MaxInviteNoteLen = 200
)

// Audit actions and target type of invitations.
const (
	ActionInviteCreated  = "invite.created"
	ActionInviteRevoked  = "invite.revoked"
	ActionInviteRedeemed = "invite.redeemed"
	// ActionInviteReleased records an invitation given back because the
	// registration it was redeemed for could not be stored.
	ActionInviteReleased = "invite.released"
	TargetInvite         = "invite"
	// ActionRegistrationRepeated records a self-registration with an email
	// that already has an account. The caller was answered as if it were
	// new; nothing was created.
	ActionRegistrationRepeated = "account.registration_repeated"
)

// Invite is a one-time code with which one person may register while
// registration is by invitation (--registration invite). Only the code's
// hash is stored; Start shows its first characters, for telling codes
// apart.
type Invite struct {
	ID        string    `json:"id"`
	Note      string    `json:"note"`
	Start     string    `json:"start"`
	Hash      string    `json:"-"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// UsedAt and UsedBy (the email address that registered with it) are
	// set when the code is redeemed; a code is redeemed once.
	UsedAt    *time.Time `json:"used_at,omitempty"`
	UsedBy    string     `json:"used_by,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Invitation statuses.
const (
	InviteActive  = "active"
	InviteUsed    = "used"
	InviteExpired = "expired"
	InviteRevoked = "revoked"
)

// Status returns the invitation's status at now: used wins over revoked,
// which wins over expired.
func (i *Invite) Status(now time.Time) string {
	switch {
	case i.UsedAt != nil:
		return InviteUsed
	case i.RevokedAt != nil:
		return InviteRevoked
	case !now.Before(i.ExpiresAt):
		return InviteExpired
	}
	return InviteActive
}

// InviteFilter selects invitations, newest first; Before is the cursor
// (the last ID of the previous page).
type InviteFilter struct {
	Before string
	Limit  int
}

// InviteStore keeps invitations. Errors follow Store's conventions.
type InviteStore interface {
	// CreateInvite stores inv. ECONFLICT if its ID or hash is stored.
	CreateInvite(ctx context.Context, inv *Invite, ev ...*AuditEvent) error
	// UpdateInvite reads the invitation and calls fn with it in a
	// transaction that no other writer can interleave with (see Store's
	// "Conditional writes"), then stores the UsedAt, UsedBy and RevokedAt
	// fn set. ENOTFOUND if there is no such invitation.
	UpdateInvite(ctx context.Context, id string, fn func(*Invite) ([]*AuditEvent, error)) (*Invite, error)
	Invite(ctx context.Context, id string) (*Invite, error)
	// InviteByHash returns the invitation whose code hashes to hash;
	// ENOTFOUND if none does.
	InviteByHash(ctx context.Context, hash string) (*Invite, error)
	Invites(ctx context.Context, f InviteFilter) ([]*Invite, error)
}
