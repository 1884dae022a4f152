package manage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// MaxImportBatch bounds the rows of one import call.
const MaxImportBatch = 10_000

// ImportRow is one key issued elsewhere, known only by the SHA-256 hex of
// the full key.
type ImportRow struct {
	Hash      string          `json:"hash"`
	AccountID string          `json:"account_id"`
	Tier      string          `json:"tier,omitempty"`
	Name      string          `json:"name,omitempty"`
	Env       keygate.Env     `json:"env,omitempty"`
	Scopes    []string        `json:"scopes,omitempty"`
	IPAllow   []string        `json:"ip_allow,omitempty"`
	Meta      json.RawMessage `json:"meta,omitempty"`
	ExpiresAt *time.Time      `json:"expires_at,omitempty"`
	// Start is an optional display hint, such as the key's first
	// characters; it must not be the whole key.
	Start string `json:"start,omitempty"`
}

// ImportError reports a row that was not imported, by its index in the
// batch.
type ImportError struct {
	Index  int    `json:"index"`
	Detail string `json:"detail"`
}

// ImportResult says what an import call did.
type ImportResult struct {
	Inserted int           `json:"inserted"`
	Skipped  int           `json:"skipped"` // already stored (same hash): re-running an import is safe
	Invalid  int           `json:"invalid"`
	Errors   []ImportError `json:"errors,omitempty"`
}

// ImportKeys validates rows and stores the valid ones whose hash is not yet
// stored, as keys that verify by plain SHA-256. With atomic set, one invalid
// row means nothing is stored. Invalid rows are reported by index.
func (s *Service) ImportKeys(ctx context.Context, actor string, rows []ImportRow, atomic bool) (*ImportResult, error) {
	if len(rows) == 0 {
		return nil, keygate.Errorf(keygate.EINVALID, "keys is empty; send 1 to %d rows.", MaxImportBatch)
	}
	if len(rows) > MaxImportBatch {
		return nil, keygate.Errorf(keygate.EINVALID, "%d rows in one call; send at most %d.", len(rows), MaxImportBatch)
	}
	now := s.now()
	res := &ImportResult{}
	accounts := map[string]error{}
	tiers := map[string]error{}
	seen := make(map[string]bool, len(rows))
	keys := make([]*keygate.Key, 0, len(rows))
	for i, row := range rows {
		k, err := s.importKey(ctx, row, now, accounts, tiers)
		if err == nil && seen[k.Hash] {
			err = keygate.Errorf(keygate.EINVALID, "hash repeats an earlier row of this batch.")
		}
		if err != nil {
			res.Invalid++
			res.Errors = append(res.Errors, ImportError{Index: i, Detail: keygate.ErrorMessage(err)})
			if keygate.ErrorCode(err) != keygate.EINVALID && keygate.ErrorCode(err) != keygate.ENOTFOUND {
				return nil, err // the store failed, not the row
			}
			continue
		}
		seen[k.Hash] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 || (atomic && res.Invalid > 0) {
		return res, nil
	}
	// In hash order, with IDs that follow it, the inserts walk both the
	// hash index and the ID index from one end to the other instead of
	// jumping around them: a large import runs markedly faster.
	slices.SortFunc(keys, func(a, b *keygate.Key) int { return strings.Compare(a.Hash, b.Hash) })
	for i, id := range keygate.NewIDs(keygate.PrefixKey, now, len(keys)) {
		keys[i].ID = id
	}
	ev := s.event(actor, keygate.ActionKeysImported, keygate.TargetKey, "", map[string]any{"rows": len(rows), "valid": len(keys)})
	n, err := s.Store.ImportKeys(ctx, keys, ev)
	if err != nil {
		return nil, err
	}
	res.Inserted, res.Skipped = n, len(keys)-n
	return res, nil
}

func (s *Service) importKey(ctx context.Context, row ImportRow, now time.Time, accounts, tiers map[string]error) (*keygate.Key, error) {
	hash := strings.ToLower(strings.TrimSpace(row.Hash))
	if _, ok := keygate.ParseHash(hash); !ok {
		return nil, keygate.Errorf(keygate.EINVALID, "hash must be the SHA-256 of the key as 64 hex characters.")
	}
	if row.AccountID == "" {
		return nil, keygate.Errorf(keygate.EINVALID, "account_id is required.")
	}
	err, ok := accounts[row.AccountID]
	if !ok {
		_, err = s.Store.Account(ctx, row.AccountID)
		accounts[row.AccountID] = err
	}
	if err != nil {
		if keygate.ErrorCode(err) == keygate.ENOTFOUND {
			return nil, keygate.Errorf(keygate.EINVALID, "account %q does not exist; create it first.", row.AccountID)
		}
		return nil, err
	}
	if row.Tier != "" {
		err, ok := tiers[row.Tier]
		if !ok {
			_, err = s.Store.Tier(ctx, row.Tier)
			tiers[row.Tier] = err
		}
		if err != nil {
			if keygate.ErrorCode(err) == keygate.ENOTFOUND {
				return nil, keygate.Errorf(keygate.EINVALID, "tier %q does not exist.", row.Tier)
			}
			return nil, err
		}
	}
	if len(row.Start) > 16 {
		return nil, keygate.Errorf(keygate.EINVALID, "start is a display hint of at most 16 characters, never the whole key.")
	}
	if row.Env == "" {
		row.Env = keygate.EnvLive
	}
	k := &keygate.Key{
		ID: keygate.NewID(keygate.PrefixKey, now), AccountID: row.AccountID, Name: row.Name, Env: row.Env,
		Start: row.Start, Hash: hash, HashAlg: keygate.HashSHA256, Tier: row.Tier,
		Scopes: row.Scopes, IPAllow: row.IPAllow, Meta: row.Meta, ExpiresAt: row.ExpiresAt,
		Enabled: true, CreatedAt: now, UpdatedAt: now,
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	return k, nil
}

// String describes an import result for people.
func (r *ImportResult) String() string {
	return fmt.Sprintf("%d imported, %d already present, %d invalid", r.Inserted, r.Skipped, r.Invalid)
}
