package sqlstore

import (
	"errors"
	"time"

	"github.com/keygate/keygate"
)

// The read-modify-write of keygate.Store's conditional writes of keys,
// which each store runs inside a transaction that holds the key against
// other writers.

// KeyTx is a store's write transaction, as UpdateKey and RotateKey use it.
type KeyTx interface {
	// LockKey reads the key with the given ID, holding it against other
	// writers until the transaction ends; KeyNotFound if there is none.
	LockKey(id string) (*keygate.Key, error)
	// UpdateKey writes k's mutable fields and returns the key as stored.
	UpdateKey(k *keygate.Key) (*keygate.Key, error)
	// InsertKey inserts k, prepared (PrepareKey).
	InsertKey(k *keygate.Key) error
	// InsertEvents prepares (PrepareEvents) and stores evs.
	InsertEvents(evs []*keygate.AuditEvent) error
}

// UpdateKey is keygate.Store.UpdateKey inside tx: it reads the key, calls
// fn with a copy, and writes every mutable field fn set with the events fn
// returned. It returns the key as stored (as read, when fn returned
// keygate.ErrUnchanged) and the changes to report once tx commits.
func UpdateKey(tx KeyTx, id string, fn func(*keygate.Key) ([]*keygate.AuditEvent, error)) (*keygate.Key, []keygate.Change, error) {
	cur, err := tx.LockKey(id)
	if err != nil {
		return nil, nil, err
	}
	k := cur.Clone()
	evs, err := fn(k)
	if errors.Is(err, keygate.ErrUnchanged) {
		return cur, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	k.ID = cur.ID
	written, err := tx.UpdateKey(k)
	if err != nil {
		return nil, nil, err
	}
	if err := tx.InsertEvents(evs); err != nil {
		return nil, nil, err
	}
	return written, []keygate.Change{{Kind: keygate.ChangeKey, ID: written.ID, Key: written.Clone()}}, nil
}

// RotateKey is keygate.Store.RotateKey inside tx: it reads the key, calls
// fn with a copy, then updates the old key as UpdateKey does and inserts
// the replacement fn returned, prepared with now's time, with the events
// fn returned. It returns both keys as stored and the changes to report
// once tx commits.
func RotateKey(tx KeyTx, id string, now func() time.Time, fn func(*keygate.Key) (*keygate.Key, []*keygate.AuditEvent, error)) (old, replacement *keygate.Key, changes []keygate.Change, err error) {
	cur, err := tx.LockKey(id)
	if err != nil {
		return nil, nil, nil, err
	}
	k := cur.Clone()
	r, evs, err := fn(k)
	if err != nil {
		return nil, nil, nil, err
	}
	if r == nil {
		return nil, nil, nil, NoReplacement(id)
	}
	if err := PrepareKey(r, now()); err != nil {
		return nil, nil, nil, err
	}
	k.ID = cur.ID
	written, err := tx.UpdateKey(k)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := tx.InsertKey(r); err != nil {
		return nil, nil, nil, err
	}
	if err := tx.InsertEvents(evs); err != nil {
		return nil, nil, nil, err
	}
	rc := KeyChange(r)
	return written, rc.Key.Clone(), []keygate.Change{{Kind: keygate.ChangeKey, ID: written.ID, Key: written.Clone()}, rc}, nil
}
