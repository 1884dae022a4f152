package manage

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/keygate/keygate"
)

// MaxImportBatch bounds the keys of one ImportKeys call.
const MaxImportBatch = 10_000

// ImportResult says what an ImportKeys call did.
type ImportResult struct {
	Inserted int // stored now
	Skipped  int // already stored (same hash): re-running an import is safe
	// Invalid are the keys that were not imported, by index, each with
	// an EINVALID error saying why.
	Invalid []RowError
}

// RowError is why the key at Index of an import was not imported.
type RowError struct {
	Index int
	Err   error
}

// ImportKeys stores keys issued elsewhere, each known only by the SHA-256
// hex of its plaintext (Hash) and holding the fields a client may set, as
// keys that verify by plain SHA-256. Each is checked with
// keygate.Key.ValidateImport and against the stored accounts and tiers;
// those whose hash is already stored are skipped. With atomic set, one
// invalid key means nothing is stored.
func (s *Service) ImportKeys(ctx context.Context, actor string, in []*keygate.Key, atomic bool) (*ImportResult, error) {
	if len(in) == 0 {
		return nil, keygate.Errorf(keygate.EINVALID, "keys is empty; send 1 to %d rows.", MaxImportBatch)
	}
	if len(in) > MaxImportBatch {
		return nil, keygate.Errorf(keygate.EINVALID, "%d rows in one call; send at most %d.", len(in), MaxImportBatch)
	}
	now := s.now()
	res := &ImportResult{}
	accounts := map[string]error{}
	tiers := map[string]error{}
	seen := make(map[string]bool, len(in))
	keys := make([]*keygate.Key, 0, len(in))
	for i, row := range in {
		k, err := s.importKey(ctx, row, now, accounts, tiers)
		if err == nil && seen[k.Hash] {
			err = keygate.Errorf(keygate.EINVALID, "hash repeats an earlier row of this batch.")
		}
		if err != nil {
			if c := keygate.ErrorCode(err); c != keygate.EINVALID && c != keygate.ENOTFOUND {
				return nil, err // the store failed, not the row
			}
			res.Invalid = append(res.Invalid, RowError{Index: i, Err: err})
			continue
		}
		seen[k.Hash] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 || (atomic && len(res.Invalid) > 0) {
		return res, nil
	}
	// In hash order, with IDs that follow it, the inserts walk both the
	// hash index and the ID index from one end to the other instead of
	// jumping around them: a large import runs markedly faster.
	slices.SortFunc(keys, func(a, b *keygate.Key) int { return strings.Compare(a.Hash, b.Hash) })
	for i, id := range keygate.NewIDs(keygate.PrefixKey, now, len(keys)) {
		keys[i].ID = id
	}
	ev := s.event(actor, keygate.ActionKeysImported, keygate.TargetKey, "", map[string]any{"rows": len(in), "valid": len(keys)})
	n, err := s.Store.ImportKeys(ctx, keys, ev)
	if err != nil {
		return nil, err
	}
	res.Inserted, res.Skipped = n, len(keys)-n
	return res, nil
}

// importKey checks one imported key and returns the record to store.
// accounts and tiers remember lookups across the batch.
func (s *Service) importKey(ctx context.Context, in *keygate.Key, now time.Time, accounts, tiers map[string]error) (*keygate.Key, error) {
	k := &keygate.Key{
		AccountID: in.AccountID, Name: in.Name, Env: in.Env, Start: in.Start, Hash: in.Hash, Tier: in.Tier,
		Scopes: in.Scopes, IPAllow: in.IPAllow, Meta: in.Meta, ExpiresAt: in.ExpiresAt,
	}
	if err := k.ValidateImport(); err != nil {
		return nil, err
	}
	if err := exists(ctx, accounts, k.AccountID, s.Store.Account, "account %q does not exist; create it first."); err != nil {
		return nil, err
	}
	if k.Tier != "" {
		if err := exists(ctx, tiers, k.Tier, s.Store.Tier, "tier %q does not exist."); err != nil {
			return nil, err
		}
	}
	k.HashAlg, k.Enabled, k.CreatedAt, k.UpdatedAt = keygate.HashSHA256, true, now, now
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	return k, nil
}

// exists looks name up once per batch (seen remembers the answer) and
// turns "not found" into an EINVALID error about the row.
func exists[T any](ctx context.Context, seen map[string]error, name string, get func(context.Context, string) (T, error), missing string) error {
	err, ok := seen[name]
	if !ok {
		_, err = get(ctx, name)
		seen[name] = err
	}
	if keygate.ErrorCode(err) == keygate.ENOTFOUND {
		return keygate.Errorf(keygate.EINVALID, missing, name)
	}
	return err
}
