package keygate

import (
	"net/mail"
	"strings"
	"time"
)

// Account owns keys: a developer who registered, or a customer the operator
// created. Its tier is the default for its keys.
type Account struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Tier      string    `json:"tier"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// DisabledAt is when an operator disabled the account: its keys
	// answer DISABLED and it cannot sign in to the portal. Nil while the
	// account is enabled.
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	// Operator lets the account use the portal's admin pages.
	Operator bool `json:"operator,omitempty"`

	// PasswordHash is the portal login's password hash; empty when the
	// account cannot log in. It never leaves the server.
	PasswordHash string `json:"-"`
}

// Validate normalizes the email address and reports the first problem with a
// as an EINVALID *Error.
func (a *Account) Validate() error {
	a.Name = strings.TrimSpace(a.Name)
	a.Email = strings.TrimSpace(a.Email)
	if a.Name == "" || len(a.Name) > 200 {
		return Errorf(EINVALID, "name is required and must be at most 200 characters.")
	}
	if err := CheckText("name", a.Name); err != nil {
		return err
	}
	if err := CheckText("email", a.Email); err != nil {
		return err
	}
	addr, err := mail.ParseAddress(a.Email)
	if err != nil || addr.Address != a.Email || len(a.Email) > 254 {
		return Errorf(EINVALID, "email %q is not a valid address; send a plain address such as dev@example.com.", a.Email)
	}
	a.Email = strings.ToLower(a.Email)
	if !ValidTierName(a.Tier) {
		return Errorf(EINVALID, "tier %q is not a valid tier name.", a.Tier)
	}
	return nil
}
