// Package webhook delivers keygate's webhook events: it signs them per the
// Standard Webhooks specification, sends them from the store's outbox with
// retries (Dispatcher), refuses to connect to private addresses unless
// allowed (the SSRF guard), and raises the events that no write raises:
// expiry warnings (Expiry) and quota thresholds (Thresholds).
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// secretBytes is the length of a signing secret's key: the spec asks for
// 24 to 64 bytes.
const secretBytes = 32

// NewSecret returns a new signing secret: "whsec_" and 32 random bytes in
// standard base64.
func NewSecret() (string, error) {
	var b [secretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("webhook: new secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// secretKey returns the HMAC key of a secret: the base64-decoded part
// after "whsec_".
func secretKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook: the secret is not whsec_ followed by base64")
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: "v1,"
// and the base64 HMAC-SHA256, under the secret's key, of
// "{id}.{timestamp}.{body}", timestamp in Unix seconds.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Tolerance is how far a message's timestamp may be from the receiver's
// clock for Verify to accept it.
const Tolerance = 5 * time.Minute

// Verify checks a received message as a receiver should: the timestamp
// header within Tolerance of now, and one of the space-separated v1
// signatures in the signature header matching the body under secret. It
// is what docs/WEBHOOKS.md shows receivers.
func Verify(secret, id, timestamp, signatures string, body []byte, now time.Time) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook: webhook-timestamp is not Unix seconds")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > Tolerance || d < -Tolerance {
		return errors.New("webhook: webhook-timestamp is too far from now")
	}
	want, err := Sign(secret, id, ts, body)
	if err != nil {
		return err
	}
	for _, sig := range strings.Fields(signatures) {
		if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1 {
			return nil
		}
	}
	return errors.New("webhook: no signature matches")
}
