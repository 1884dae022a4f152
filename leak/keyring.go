package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// GitHubKeysURL is where GitHub publishes the public keys it signs
// secret-scanning reports with.
const GitHubKeysURL = "https://api.github.com/meta/public_keys/secret_scanning"

// Defaults of a Keyring.
const (
	// DefaultFetchTimeout bounds one fetch of the key list.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultMinRefresh is the least time between two fetches, so that
	// reports naming made-up key identifiers cannot make keygate hammer
	// the key URL.
	DefaultMinRefresh = time.Minute
	// DefaultMaxAge is how long a fetched key list is used before it is
	// fetched again, so that keys GitHub withdraws stop being trusted.
	DefaultMaxAge = 24 * time.Hour
	// maxKeysBytes bounds the key list a fetch reads.
	maxKeysBytes = 1 << 20
)

// Errors of Keyring.Verify.
var (
	// ErrNoSignature means the identifier or signature header is missing.
	ErrNoSignature = errors.New("leak: the report is not signed")
	// ErrUnknownKey means no public key has the report's identifier.
	ErrUnknownKey = errors.New("leak: unknown public key identifier")
	// ErrBadSignature means the signature does not verify over the body.
	ErrBadSignature = errors.New("leak: signature does not verify")
)

// FetchError means the key list could not be fetched or read, so the
// report could not be checked; the sender should retry.
type FetchError struct{ Err error }

func (e *FetchError) Error() string { return "leak: fetching public keys: " + e.Err.Error() }
func (e *FetchError) Unwrap() error { return e.Err }

// keyList is the JSON GitHub serves at GitHubKeysURL.
type keyList struct {
	PublicKeys []struct {
		KeyIdentifier string `json:"key_identifier"`
		Key           string `json:"key"`
		IsCurrent     bool   `json:"is_current"`
	} `json:"public_keys"`
}

// ParseKeys reads a key list in the JSON GitHub serves,
// {"public_keys":[{"key_identifier":…,"key":"-----BEGIN PUBLIC KEY-----…","is_current":…}]},
// and returns its P-256 keys by identifier. Keys that are no longer
// current still verify: GitHub may sign with them until it withdraws them
// from the list. Any key that is not a PEM ECDSA P-256 public key is an
// error, as is a list with no key at all.
func ParseKeys(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var kl keyList
	if err := json.Unmarshal(data, &kl); err != nil {
		return nil, fmt.Errorf("the key list is not the JSON GitHub serves: %w", err)
	}
	if len(kl.PublicKeys) == 0 {
		return nil, errors.New("the key list holds no public_keys")
	}
	out := make(map[string]*ecdsa.PublicKey, len(kl.PublicKeys))
	for i, k := range kl.PublicKeys {
		if k.KeyIdentifier == "" {
			return nil, fmt.Errorf("public key %d has no key_identifier", i)
		}
		pub, err := parsePublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", k.KeyIdentifier, err)
		}
		out[k.KeyIdentifier] = pub
	}
	return out, nil
}

func parsePublicKey(s string) (*ecdsa.PublicKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return pub, nil
}

// Keyring holds the public keys reports are checked with: either a fixed
// set read from a file (for installs that cannot reach GitHub), or those
// fetched from a URL, cached, and fetched again when a report names an
// identifier the cache does not hold or the cache is older than MaxAge.
// It is safe for concurrent use.
type Keyring struct {
	url        string
	client     *http.Client
	minRefresh time.Duration
	maxAge     time.Duration
	now        func() time.Time

	mu      sync.Mutex
	keys    map[string]*ecdsa.PublicKey
	fixed   bool      // read from a file; never fetched
	fetched time.Time // when the last fetch was tried
	fresh   time.Time // when the keys were last fetched successfully
}

// KeyringOptions configure a fetching Keyring. Zero values mean the
// defaults.
type KeyringOptions struct {
	URL        string       // GitHubKeysURL
	Client     *http.Client // one with DefaultFetchTimeout
	MinRefresh time.Duration
	MaxAge     time.Duration
	Now        func() time.Time
}

// NewKeyring returns a Keyring that fetches its keys from o.URL when it
// first needs them.
func NewKeyring(o KeyringOptions) *Keyring {
	k := &Keyring{url: o.URL, client: o.Client, minRefresh: o.MinRefresh, maxAge: o.MaxAge, now: o.Now}
	if k.url == "" {
		k.url = GitHubKeysURL
	}
	if k.client == nil {
		k.client = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if k.minRefresh <= 0 {
		k.minRefresh = DefaultMinRefresh
	}
	if k.maxAge <= 0 {
		k.maxAge = DefaultMaxAge
	}
	if k.now == nil {
		k.now = time.Now
	}
	return k
}

// NewKeyringFromFile returns a Keyring holding the keys of a key list file
// (ParseKeys); it never fetches.
func NewKeyringFromFile(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading GitHub's public keys: %w", err)
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Keyring{keys: keys, fixed: true, now: time.Now}, nil
}

// Verify checks that signature (base64 of an ASN.1 DER ECDSA signature) is
// a signature over SHA-256 of body by the public key named keyID. It
// returns nil, ErrNoSignature, ErrUnknownKey, ErrBadSignature, or a
// *FetchError when the keys could not be fetched to decide.
func (k *Keyring) Verify(ctx context.Context, body []byte, keyID, signature string) error {
	keyID, signature = strings.TrimSpace(keyID), strings.TrimSpace(signature)
	if keyID == "" || signature == "" {
		return ErrNoSignature
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return ErrBadSignature
	}
	pub, err := k.key(ctx, keyID)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return ErrBadSignature
	}
	return nil
}

// key returns the public key named id, fetching the list when it is not
// cached or the cache is stale (at most once per minRefresh).
func (k *Keyring) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	pub := k.keys[id]
	if k.fixed {
		if pub == nil {
			return nil, ErrUnknownKey
		}
		return pub, nil
	}
	now := k.now()
	stale := k.fresh.IsZero() || now.Sub(k.fresh) >= k.maxAge
	if (pub == nil || stale) && (k.fetched.IsZero() || now.Sub(k.fetched) >= k.minRefresh) {
		// Holding the lock while fetching makes concurrent reports wait for
		// one fetch instead of each starting their own.
		k.fetched = now
		keys, err := k.fetch(ctx)
		switch {
		case err == nil:
			k.keys, k.fresh = keys, now
			pub = keys[id]
		case pub == nil:
			return nil, &FetchError{Err: err}
		}
		// A failed refresh of a stale list keeps using the key it has.
	}
	if pub == nil {
		if k.keys == nil {
			return nil, &FetchError{Err: errors.New("no key list fetched yet; retry later")}
		}
		return nil, ErrUnknownKey
	}
	return pub, nil
}

func (k *Keyring) fetch(ctx context.Context) (map[string]*ecdsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxKeysBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	if len(data) > maxKeysBytes {
		return nil, fmt.Errorf("GET %s: the key list is larger than %d bytes", k.url, maxKeysBytes)
	}
	keys, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", k.url, err)
	}
	return keys, nil
}
