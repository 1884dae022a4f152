package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
)

// ImportRequest is the body of POST /v1/keys/import: at most
// manage.MaxImportBatch rows.
type ImportRequest struct {
	Keys []ImportRow `json:"keys"`
	// Atomic imports nothing from the batch when any row is invalid.
	Atomic bool `json:"atomic,omitempty"`
}

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

// Key returns the row as the key it describes, to be checked with
// keygate.Key.ValidateImport.
func (r *ImportRow) Key() *keygate.Key {
	return &keygate.Key{
		Hash: r.Hash, AccountID: r.AccountID, Tier: r.Tier, Name: r.Name, Env: r.Env,
		Scopes: r.Scopes, IPAllow: r.IPAllow, Meta: r.Meta, ExpiresAt: r.ExpiresAt, Start: r.Start,
	}
}

// ImportResult is the answer of POST /v1/keys/import.
type ImportResult struct {
	Inserted int           `json:"inserted"`
	Skipped  int           `json:"skipped"` // already stored (same hash): re-running an import is safe
	Invalid  int           `json:"invalid"`
	Errors   []ImportError `json:"errors,omitempty"`
}

// ImportError reports a row that was not imported, by its index in the
// batch.
type ImportError struct {
	Index  int    `json:"index"`
	Detail string `json:"detail"`
}

// String describes an import result for people.
func (r *ImportResult) String() string {
	return fmt.Sprintf("%d imported, %d already present, %d invalid", r.Inserted, r.Skipped, r.Invalid)
}

func (s *Server) importKeys(w http.ResponseWriter, r *http.Request) error {
	req, err := decodeImport(w, r)
	if err != nil {
		return err
	}
	keys := make([]*keygate.Key, len(req.Keys))
	for i := range req.Keys {
		keys[i] = req.Keys[i].Key()
	}
	res, err := s.Manage.ImportKeys(r.Context(), actor(r), keys, req.Atomic)
	if err != nil {
		return err
	}
	out := ImportResult{Inserted: res.Inserted, Skipped: res.Skipped, Invalid: len(res.Invalid)}
	for _, e := range res.Invalid {
		out.Errors = append(out.Errors, ImportError{Index: e.Index, Detail: keygate.ErrorMessage(e.Err)})
	}
	return writeJSON(w, http.StatusOK, out)
}

// decodeImport reads the body of POST /v1/keys/import one row at a time,
// counting rows as it goes: past manage.MaxImportBatch rows, or
// MaxImportBytes bytes, it stops reading and refuses the body. Memory is
// bounded by the rows allowed, not by what the client sends (a body of
// millions of empty rows is refused after the first 10,001).
func decodeImport(w http.ResponseWriter, r *http.Request) (ImportRequest, error) {
	var req ImportRequest
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return req, keygate.Errorf(keygate.EINVALID, "Content-Type must be application/json, not %q.", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	dec.DisallowUnknownFields()
	fail := func(err error) (ImportRequest, error) {
		return ImportRequest{}, decodeError(err, false, MaxImportBytes)
	}
	tok, err := dec.Token()
	if err != nil {
		return fail(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return req, keygate.Errorf(keygate.EINVALID, "The request body must be a JSON object with \"keys\": an array of rows.")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		name, _ := tok.(string)
		if seen[name] {
			return req, keygate.Errorf(keygate.EINVALID, "The field %q appears twice.", name)
		}
		seen[name] = true
		switch name {
		case "atomic":
			if err := dec.Decode(&req.Atomic); err != nil {
				return fail(err)
			}
		case "keys":
			if req.Keys, err = decodeImportRows(dec); err != nil {
				return ImportRequest{}, err
			}
		default:
			return req, keygate.Errorf(keygate.EINVALID, "The request body has an unknown field %q; see /v1/openapi.json.", name)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fail(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, keygate.Errorf(keygate.EINVALID, "The request body must hold exactly one JSON object.")
	}
	return req, nil
}

// decodeImportRows reads the array of rows (or null), refusing it as soon
// as it holds more than manage.MaxImportBatch.
func decodeImportRows(dec *json.Decoder) ([]ImportRow, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, decodeError(err, false, MaxImportBytes)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, keygate.Errorf(keygate.EINVALID, "Field \"keys\" must be an array.")
	}
	var rows []ImportRow
	for dec.More() {
		if len(rows) == manage.MaxImportBatch {
			return nil, keygate.Errorf(keygate.EINVALID, "More than %d rows in one call; send at most %d (keygate import splits a file into batches).", manage.MaxImportBatch, manage.MaxImportBatch)
		}
		rows = append(rows, ImportRow{})
		if err := dec.Decode(&rows[len(rows)-1]); err != nil {
			return nil, decodeError(err, false, MaxImportBytes)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, decodeError(err, false, MaxImportBytes)
	}
	return rows, nil
}
