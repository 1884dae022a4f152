package apikey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sync"
	"unsafe"
)

// Hasher computes the hash a key is stored and looked up by: SHA-256 of the
// full key, or HMAC-SHA-256 keyed by a server-side pepper when one is
// configured, so that a leaked database alone is not enough to test guesses
// offline. A Hasher is safe for concurrent use. A nil or zero Hasher
// computes plain SHA-256.
type Hasher struct {
	pepper []byte    // nil: plain SHA-256
	macs   sync.Pool // of *macState keyed by pepper; see Sum
}

// macState is one reusable HMAC computation. Keying an HMAC hashes the
// pepper into two SHA-256 states and allocates; pooling the keyed state
// makes Sum allocation-free in steady state.
type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte // Sum appends here, so no slice is allocated
}

// NewHasher returns a Hasher that computes HMAC-SHA-256 keyed by pepper, or
// plain SHA-256 when pepper is empty. It keeps its own copy of pepper. A
// pepper should be at least 32 random bytes; Go's FIPS 140-only mode refuses
// HMAC keys shorter than 14 bytes.
func NewHasher(pepper []byte) *Hasher {
	h := &Hasher{}
	if len(pepper) > 0 {
		h.pepper = bytes.Clone(pepper)
		h.macs.New = func() any {
			return &macState{mac: hmac.New(sha256.New, h.pepper)}
		}
	}
	return h
}

// Peppered reports whether h computes HMAC-SHA-256 under a pepper rather
// than plain SHA-256.
func (h *Hasher) Peppered() bool { return h != nil && h.pepper != nil }

// Sum returns the hash of key. It does not allocate in steady state: it runs
// on every verification that gets past Parse.
func (h *Hasher) Sum(key string) [sha256.Size]byte {
	if !h.Peppered() {
		return sha256.Sum256(bytesOf(key))
	}
	m := h.macs.Get().(*macState)
	m.mac.Write(bytesOf(key))
	m.mac.Sum(m.sum[:0])
	out := m.sum
	// Reset before pooling, so that no pooled state holds bytes of the key
	// just hashed (the inner SHA-256 buffers the tail of its input).
	m.mac.Reset()
	h.macs.Put(m)
	return out
}

// Hex returns Sum(key) as lower-case hex, the form keys are stored in.
func (h *Hasher) Hex(key string) string {
	sum := h.Sum(key)
	return hexString(&sum)
}

// SHA256Hex returns the lower-case hex SHA-256 of key. It is for keys
// imported from systems that stored plain SHA-256 hex, which must keep
// matching whatever pepper this server uses, so it is never peppered.
func SHA256Hex(key string) string {
	sum := sha256.Sum256(bytesOf(key))
	return hexString(&sum)
}

func hexString(sum *[sha256.Size]byte) string {
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	return string(buf[:])
}

// bytesOf returns the bytes of s without copying them. []byte(s) would
// copy, and allocate for any key (longer than 32 bytes), on every Parse and
// every Sum: the compiler cannot prove that crc32.ChecksumIEEE (which calls
// through a function variable) or sha256.Sum256 leave their argument alone
// (measured with go1.26: 1 alloc/op each). They do, by contract, like every
// hash: the result goes only to functions that read it, never to one that
// writes it or keeps it, so the immutability of s is preserved.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
