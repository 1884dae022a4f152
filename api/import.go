package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
)

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
func decodeImportRows(dec *json.Decoder) ([]manage.ImportRow, error) {
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
	var rows []manage.ImportRow
	for dec.More() {
		if len(rows) == manage.MaxImportBatch {
			return nil, keygate.Errorf(keygate.EINVALID, "More than %d rows in one call; send at most %d (keygate import splits a file into batches).", manage.MaxImportBatch, manage.MaxImportBatch)
		}
		rows = append(rows, manage.ImportRow{})
		if err := dec.Decode(&rows[len(rows)-1]); err != nil {
			return nil, decodeError(err, false, MaxImportBytes)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return nil, decodeError(err, false, MaxImportBytes)
	}
	return rows, nil
}
