package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/internal/sqlstore"
)

const keyColumns = `id, account_id, name, env, start, last4, hash, hash_alg, tier,
	quota_per_day, rate_per_second, burst, scopes, ip_allow, meta, expires_at, enabled,
	revoked_at, revoked_reason, revoked_by, replaced_by, replaces, created_at, updated_at, last_used_at, lineage_id`

const insertKeySQL = `INSERT INTO keys (` + keyColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// updateKeySQL sets every mutable field; the ID, account, env, hash, start,
// last4, replaces and created_at of a key never change. last_used_at only
// moves forward, so that an update made from a key read a moment ago does
// not undo what RecordUsage wrote since.
const updateKeySQL = `UPDATE keys SET name = ?, tier = ?, quota_per_day = ?, rate_per_second = ?, burst = ?,
	scopes = ?, ip_allow = ?, meta = ?, expires_at = ?, enabled = ?, revoked_at = ?, revoked_reason = ?,
	revoked_by = ?, replaced_by = ?, updated_at = ?,
	last_used_at = nullif(max(coalesce(last_used_at, 0), coalesce(?, 0)), 0)
	WHERE id = ? RETURNING ` + keyColumns

// CreateKey stores k, setting an empty k.ID to a new ID and zero CreatedAt
// and UpdatedAt to Now. ENOTFOUND if the account does not exist, EINVALID if
// the tier does not exist, ECONFLICT if the hash or the ID is already stored.
func (s *Store) CreateKey(ctx context.Context, k *keygate.Key, ev ...*keygate.AuditEvent) error {
	if err := sqlstore.PrepareKey(k, s.now()); err != nil {
		return err
	}
	return s.write(ctx, "create key", ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		if err := insertKey(ctx, tx, k); err != nil {
			return nil, err
		}
		return []keygate.Change{sqlstore.KeyChange(k)}, nil
	})
}

// UpdateKey reads the key with the given id and calls fn with a copy of
// it, inside the write transaction (BEGIN IMMEDIATE: no other writer, in
// this process or another, runs until it commits), then stores every
// mutable field fn set, UpdatedAt included, with the audit events fn
// returns. The key's account, env, hash, start, last4, replaces and
// creation time never change. ENOTFOUND if the key does
// not exist, EINVALID if the tier does not exist; fn's error as it is,
// except keygate.ErrUnchanged, after which nothing is written and the key
// is returned as read.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(*keygate.Key) ([]*keygate.AuditEvent, error)) (*keygate.Key, error) {
	var out *keygate.Key
	err := s.write(ctx, "update key", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		var changes []keygate.Change
		var err error
		out, changes, err = sqlstore.UpdateKey(keyTx{ctx, tx, s}, id, fn)
		return changes, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RotateKey reads the key with the given id and calls fn with a copy of it
// inside the write transaction, as UpdateKey does; fn changes the old key
// and returns its replacement. The old key is updated (as UpdateKey does)
// and the replacement created (as CreateKey does) in that transaction:
// either both are stored or neither.
func (s *Store) RotateKey(ctx context.Context, id string, fn func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error)) (*keygate.Key, *keygate.Key, error) {
	var old, replacement *keygate.Key
	err := s.write(ctx, "rotate key", nil, func(tx *sql.Tx) ([]keygate.Change, error) {
		var changes []keygate.Change
		var err error
		old, replacement, changes, err = sqlstore.RotateKey(keyTx{ctx, tx, s}, id, s.now, fn)
		return changes, err
	})
	if err != nil {
		return nil, nil, err
	}
	return old, replacement, nil
}

// keyTx is a write transaction as sqlstore.UpdateKey and RotateKey use it.
type keyTx struct {
	ctx context.Context
	tx  *sql.Tx
	s   *Store
}

func (t keyTx) LockKey(id string) (*keygate.Key, error)        { return txKey(t.ctx, t.tx, id) }
func (t keyTx) UpdateKey(k *keygate.Key) (*keygate.Key, error) { return updateKey(t.ctx, t.tx, k) }
func (t keyTx) InsertKey(k *keygate.Key) error                 { return insertKey(t.ctx, t.tx, k) }
func (t keyTx) InsertEvents(evs []*keygate.AuditEvent) error {
	return t.s.insertEvents(t.ctx, t.tx, evs)
}

// txKey reads the key with the given id inside tx (the write transaction
// holds it against other writers); ENOTFOUND if there is none.
func txKey(ctx context.Context, tx *sql.Tx, id string) (*keygate.Key, error) {
	k, err := scanKey(tx.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.KeyNotFound(id)
	}
	return k, err
}

// ImportKeys stores keys in one transaction, skipping any whose hash is
// already stored (or appears earlier in keys), and returns how many it
// inserted. It fills in IDs and times as CreateKey does. If any key names
// an account or tier that does not exist, nothing is stored.
//
// Unlike every other write, an import commits with synchronous=NORMAL: its
// commit does not wait for fsync. It survives a crash of the process at
// once, and an OS crash or power cut once the checkpointer, which the
// commit wakes, has synced the WAL, normally within milliseconds. Waiting
// for fsync made a 1,000,000-key import 40% slower (62 s instead of 44 s
// in batches of 5,000 on the reference 2-core VM), and an import that
// lost its last batches is repaired by running it again, since keys whose
// hash is stored are skipped.
func (s *Store) ImportKeys(ctx context.Context, keys []*keygate.Key, ev ...*keygate.AuditEvent) (int, error) {
	now := s.now()
	for i, k := range keys {
		if err := sqlstore.PrepareKey(k, now); err != nil {
			return 0, sqlstore.ImportError(i, k, err)
		}
	}
	listening := s.listeners.Any()
	inserted := 0
	err := s.writeTx(ctx, "import keys", true, ev, func(tx *sql.Tx) ([]keygate.Change, error) {
		stmt, err := tx.PrepareContext(ctx, insertKeySQL+` ON CONFLICT (hash) DO NOTHING`)
		if err != nil {
			return nil, err
		}
		defer stmt.Close()
		var changes []keygate.Change
		if listening {
			changes = make([]keygate.Change, 0, len(keys))
		}
		args := make([]any, 0, 25)
		for i, k := range keys {
			args, err = appendKeyArgs(args[:0], k)
			if err != nil {
				return nil, err
			}
			res, err := stmt.ExecContext(ctx, args...)
			if err != nil {
				return nil, importFailure(ctx, tx, i, k, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				continue
			}
			inserted++
			if listening {
				changes = append(changes, sqlstore.KeyChange(k))
			}
		}
		return changes, nil
	})
	if err != nil {
		return 0, err
	}
	return inserted, nil
}

// importFailure explains why key i of an import could not be inserted.
func importFailure(ctx context.Context, tx *sql.Tx, i int, k *keygate.Key, err error) error {
	if foreignKeyViolation(err) {
		if ferr := keyReferences(ctx, tx, k); ferr != nil {
			err = ferr
		}
	} else {
		err = keyConflict(err, k)
	}
	return sqlstore.ImportError(i, k, err)
}

// Key returns the key with the given ID; ENOTFOUND if there is none.
func (s *Store) Key(ctx context.Context, id string) (*keygate.Key, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	k, err := scanKey(s.rdb.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM keys WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.KeyNotFound(id)
	}
	if err != nil {
		return nil, s.fail("get key", err)
	}
	return k, nil
}

// Keys returns the keys f selects, in ID (creation) order. EINVALID if
// f.Status is not one of the key statuses.
func (s *Store) Keys(ctx context.Context, f keygate.KeyFilter) ([]*keygate.Key, error) {
	if err := s.read(); err != nil {
		return nil, err
	}
	w, err := sqlstore.KeyFilter(dialect, f, s.now)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, s, "list keys", `SELECT `+keyColumns+` FROM keys`+w.String()+` ORDER BY id LIMIT `+w.Next(sqlstore.PageSize(f.Limit)),
		w.Args(), scanKey)
}

// ForEachKey calls fn for every stored key, in no particular order,
// stopping at fn's first error, which it returns unwrapped. fn is called
// from the caller's goroutine, one key at a time, and may call the store.
//
// A large table is read in parts, by rowid range, each on a read
// connection of its own and decoded on its own goroutine while fn runs,
// so that loading the verification index uses every core: each part is
// one snapshot, and a key written while the scan runs may or may not be
// seen (the engine catches up with those through OnChange or Sync).
func (s *Store) ForEachKey(ctx context.Context, fn func(*keygate.Key) error) error {
	if err := s.read(); err != nil {
		return err
	}
	var last int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM keys`).Scan(&last); err != nil {
		return s.fail("scan keys", err)
	}
	// Leave a read connection free for fn, and part only tables worth it.
	parts := min(scanMaxParts(), s.readConns-1, int(last/scanPartMin))
	if parts < 2 {
		return queryEach(ctx, s, "scan keys", `SELECT `+keyColumns+` FROM keys`, nil, scanKey, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []*keygate.Key, 2*parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		lo, hi := last*int64(i)/int64(parts), last*int64(i+1)/int64(parts)
		if i == parts-1 {
			hi = math.MaxInt64 // and the keys inserted since max(rowid) was read
		}
		wg.Go(func() {
			send := func(b []*keygate.Key) error {
				select {
				case batches <- b:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			batch := make([]*keygate.Key, 0, scanBatch)
			errs[i] = queryEach(ctx, s, "scan keys", `SELECT `+keyColumns+` FROM keys WHERE rowid > ? AND rowid <= ?`, []any{lo, hi}, scanKey,
				func(k *keygate.Key) error {
					if batch = append(batch, k); len(batch) < scanBatch {
						return nil
					}
					err := send(batch)
					batch = make([]*keygate.Key, 0, scanBatch)
					return err
				})
			if errs[i] == nil && len(batch) > 0 {
				errs[i] = send(batch)
			}
		})
	}
	go func() { wg.Wait(); close(batches) }()
	var fnErr error
	for b := range batches {
		for _, k := range b {
			if fnErr != nil {
				break
			}
			if fnErr = fn(k); fnErr != nil {
				cancel() // stop the readers; the loop drains what they sent
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	return errors.Join(errs...)
}

// A parted key scan has at most scanMaxParts parts of at least scanPartMin
// rows; each hands over scanBatch decoded keys at a time. Tests change the
// variables.
var (
	scanPartMin  int64 = 50_000
	scanMaxParts       = func() int { return runtime.GOMAXPROCS(0) }
)

const scanBatch = 256

// insertKey inserts k, after checking that its account and tier exist.
func insertKey(ctx context.Context, tx *sql.Tx, k *keygate.Key) error {
	if err := keyReferences(ctx, tx, k); err != nil {
		return err
	}
	args, err := appendKeyArgs(make([]any, 0, 25), k)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, insertKeySQL, args...); err != nil {
		return keyConflict(err, k)
	}
	return nil
}

// keyReferences returns ENOTFOUND if k's account does not exist and
// EINVALID if its own tier does not.
func keyReferences(ctx context.Context, tx *sql.Tx, k *keygate.Key) error {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = ?`, k.AccountID).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.KeyAccountMissing(nil, k.AccountID)
	}
	if err != nil {
		return err
	}
	if k.Tier != "" {
		return tierExists(ctx, tx, k.Tier, sqlstore.UnknownTier)
	}
	return nil
}

// keyConflict explains a failed insert of k.
func keyConflict(err error, k *keygate.Key) error {
	switch {
	case uniqueViolation(err, "keys.hash"):
		return sqlstore.KeyHashTaken(err)
	case uniqueViolation(err, "keys.id"):
		return sqlstore.KeyIDTaken(err, k.ID)
	}
	return err
}

// updateKey writes k's mutable fields and returns the key as stored.
func updateKey(ctx context.Context, tx *sql.Tx, k *keygate.Key) (*keygate.Key, error) {
	if err := sqlstore.CheckMeta(k.Meta); err != nil {
		return nil, err
	}
	if k.Tier != "" {
		if err := tierExists(ctx, tx, k.Tier, sqlstore.UnknownTier); err != nil {
			return nil, err
		}
	}
	scopes, err := encodeList(k.Scopes)
	if err != nil {
		return nil, err
	}
	ipAllow, err := encodeList(k.IPAllow)
	if err != nil {
		return nil, err
	}
	written, err := scanKey(tx.QueryRowContext(ctx, updateKeySQL,
		k.Name, sqlstore.NullString(k.Tier), k.QuotaPerDay, k.RatePerSecond, k.Burst,
		scopes, ipAllow, sqlstore.NullJSON(k.Meta), nullMillis(k.ExpiresAt), k.Enabled, nullMillis(k.RevokedAt), k.RevokedReason,
		k.RevokedBy, k.ReplacedBy, millis(k.UpdatedAt), nullMillis(k.LastUsedAt),
		k.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sqlstore.KeyNotFound(k.ID)
	}
	if err != nil {
		return nil, err
	}
	return written, nil
}

func appendKeyArgs(args []any, k *keygate.Key) ([]any, error) {
	hash, err := hashBytes(k.Hash)
	if err != nil {
		return nil, err
	}
	scopes, err := encodeList(k.Scopes)
	if err != nil {
		return nil, err
	}
	ipAllow, err := encodeList(k.IPAllow)
	if err != nil {
		return nil, err
	}
	return append(args,
		k.ID, k.AccountID, k.Name, string(k.Env), k.Start, k.Last4, hash, k.HashAlg, sqlstore.NullString(k.Tier),
		k.QuotaPerDay, k.RatePerSecond, k.Burst, scopes, ipAllow, sqlstore.NullJSON(k.Meta), nullMillis(k.ExpiresAt), k.Enabled,
		nullMillis(k.RevokedAt), k.RevokedReason, k.RevokedBy, k.ReplacedBy, k.Replaces,
		millis(k.CreatedAt), millis(k.UpdatedAt), nullMillis(k.LastUsedAt), k.LineageID,
	), nil
}

func scanKey(sc scanner) (*keygate.Key, error) {
	var (
		k                          keygate.Key
		env, scopes, ipAllow       string
		hashBlob                   []byte
		tier, meta                 sql.NullString
		quota, burst               sql.NullInt64
		rate                       sql.NullFloat64
		expires, revoked, lastUsed sql.NullInt64
		created, updated           int64
	)
	if err := sc.Scan(&k.ID, &k.AccountID, &k.Name, &env, &k.Start, &k.Last4, &hashBlob, &k.HashAlg, &tier,
		&quota, &rate, &burst, &scopes, &ipAllow, &meta, &expires, &k.Enabled,
		&revoked, &k.RevokedReason, &k.RevokedBy, &k.ReplacedBy, &k.Replaces, &created, &updated, &lastUsed, &k.LineageID); err != nil {
		return nil, err
	}
	k.Env = keygate.Env(env)
	k.Hash = hex.EncodeToString(hashBlob)
	k.Tier = tier.String
	if quota.Valid {
		k.QuotaPerDay = &quota.Int64
	}
	if rate.Valid {
		k.RatePerSecond = &rate.Float64
	}
	if burst.Valid {
		k.Burst = &burst.Int64
	}
	var err error
	if k.Scopes, err = decodeList(scopes); err != nil {
		return nil, fmt.Errorf("key %s: scopes: %w", k.ID, err)
	}
	if k.IPAllow, err = decodeList(ipAllow); err != nil {
		return nil, fmt.Errorf("key %s: ip_allow: %w", k.ID, err)
	}
	k.Meta = fromNullJSON(meta)
	k.ExpiresAt = fromNullMillis(expires)
	k.RevokedAt = fromNullMillis(revoked)
	k.CreatedAt = fromMillis(created)
	k.UpdatedAt = fromMillis(updated)
	k.LastUsedAt = fromNullMillis(lastUsed)
	return &k, nil
}

// CountKeys returns how many of the account's keys are not revoked. A
// rotated key in its grace period has a revocation time and is not
// counted.
func (s *Store) CountKeys(ctx context.Context, accountID string) (int, error) {
	if err := s.read(); err != nil {
		return 0, err
	}
	var n int
	err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM keys WHERE account_id = ? AND revoked_at IS NULL`, accountID).Scan(&n)
	if err != nil {
		return 0, s.fail("count keys", err)
	}
	return n, nil
}
