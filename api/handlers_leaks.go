package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/leak"
	"github.com/keygate/keygate/manage"
)

// MaxLeakBytes bounds a leak report's body: MaxMatches matches of a few
// hundred bytes each.
const MaxLeakBytes = 1 << 20

// The headers GitHub signs secret-scanning reports with.
const (
	HeaderGitHubKeyID     = "Github-Public-Key-Identifier"
	HeaderGitHubSignature = "Github-Public-Key-Signature"
)

// readRaw reads a whole body of at most limit bytes.
func readRaw(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, keygate.Errorf(keygate.ETOOLARGE, "The request body is larger than %d bytes.", limit)
	case err != nil:
		return nil, keygate.Errorf(keygate.EINVALID, "The request body could not be read.")
	}
	return body, nil
}

// githubLeaks takes a GitHub secret-scanning partner report: it checks the
// signature over the raw body before anything else, then revokes every
// reported key keygate holds and answers with GitHub's feedback array.
func (s *Server) githubLeaks(w http.ResponseWriter, r *http.Request) error {
	if s.GitHubKeys == nil {
		return keygate.Errorf(keygate.ENOTFOUND, "GitHub secret-scanning reports are not enabled on this server.")
	}
	body, err := readRaw(w, r, MaxLeakBytes)
	if err != nil {
		return err
	}
	err = s.GitHubKeys.Verify(r.Context(), body, r.Header.Get(HeaderGitHubKeyID), r.Header.Get(HeaderGitHubSignature))
	var fe *leak.FetchError
	switch {
	case errors.Is(err, leak.ErrNoSignature):
		return keygate.Errorf(keygate.EUNAUTHORIZED, "The report is not signed: send the %s and %s headers GitHub's secret-scanning partner protocol defines.", HeaderGitHubKeyID, HeaderGitHubSignature)
	case errors.Is(err, leak.ErrUnknownKey):
		return keygate.Errorf(keygate.EUNAUTHORIZED, "The report's %s names no public key GitHub publishes for secret scanning.", HeaderGitHubKeyID)
	case errors.Is(err, leak.ErrBadSignature):
		return keygate.Errorf(keygate.EUNAUTHORIZED, "The report's signature does not verify over its body.")
	case errors.As(err, &fe):
		return &keygate.Error{Code: keygate.EUNAVAILABLE, Message: "GitHub's secret-scanning public keys could not be fetched to check the signature; retry later.", Err: err}
	case err != nil:
		return err
	}
	matches, err := leak.ParseReport(body)
	if err != nil {
		return keygate.Errorf(keygate.EINVALID, "%s.", err.Error())
	}
	fb, err := s.revokeLeaked(r.Context(), manage.ActorLeak("github"), "github", matches)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, fb)
}

// leaks takes a leak report from any other scanner, in GitHub's format,
// authenticated by a root key instead of a signature.
func (s *Server) leaks(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return keygate.Errorf(keygate.EINVALID, "Content-Type must be application/json, not %q.", ct)
	}
	body, err := readRaw(w, r, MaxLeakBytes)
	if err != nil {
		return err
	}
	matches, err := leak.ParseReport(body)
	if err != nil {
		return keygate.Errorf(keygate.EINVALID, "%s.", err.Error())
	}
	a := actor(r)
	fb, err := s.revokeLeaked(r.Context(), a, a, matches)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, fb)
}

// revokeLeaked revokes the key of each match that keygate holds and
// returns the feedback for every match, in order. A token reported twice
// is looked up once.
func (s *Server) revokeLeaked(ctx context.Context, actor, reporter string, matches []leak.Match) ([]leak.Feedback, error) {
	out := make([]leak.Feedback, 0, len(matches))
	seen := make(map[string]bool, len(matches))
	for _, m := range matches {
		found, done := seen[m.Token]
		if !done {
			var err error
			if found, err = s.revokeOne(ctx, actor, reporter, m); err != nil {
				return nil, err
			}
			seen[m.Token] = found
		}
		out = append(out, leak.NewFeedback(m, found))
	}
	return out, nil
}

func (s *Server) revokeOne(ctx context.Context, actor, reporter string, m leak.Match) (bool, error) {
	if len(m.Token) > leak.MaxTokenLen {
		return false, nil
	}
	l := manage.Leak{Reporter: reporter, Type: m.Type, URL: m.URL, Source: m.Source}
	if p, err := apikey.Parse(m.Token); err == nil && p.Prefix == apikey.RootPrefix {
		rk, err := s.rootKeyByPlaintext(ctx, m.Token)
		if err != nil || rk == nil {
			return false, err
		}
		if err := s.Manage.RevokeLeakedRootKey(ctx, actor, rk, l); err != nil {
			return false, err
		}
		s.log().Warn("root key reported leaked and revoked; if it was the last admin root key, run `keygate root-keys recover`", "root_key_id", rk.ID, "reporter", reporter)
		return true, nil
	}
	k, ok := s.Engine.Find(m.Token)
	if !ok {
		return false, nil
	}
	if _, err := s.Manage.RevokeLeakedKey(ctx, actor, k.ID, l); err != nil {
		return false, err
	}
	s.log().Warn("key reported leaked and revoked", "key_id", k.ID, "start", apikey.Start(m.Token), "reporter", reporter)
	return true, nil
}

// rootKeyByPlaintext finds a root key, live or revoked, by its plaintext.
// The root key list is short; it is read from the store so that a key
// revoked earlier is still recognized as a true positive.
func (s *Server) rootKeyByPlaintext(ctx context.Context, plaintext string) (*keygate.RootKey, error) {
	roots, err := s.Store.RootKeys(ctx)
	if err != nil {
		return nil, err
	}
	want := s.Manage.Hasher.Hex(plaintext)
	for _, rk := range roots {
		if subtle.ConstantTimeCompare([]byte(rk.Hash), []byte(want)) == 1 {
			return rk, nil
		}
	}
	return nil, nil
}
