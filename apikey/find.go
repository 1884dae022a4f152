package apikey

import "strings"

// maxFindCandidates bounds how many "_live_"/"_test_" occurrences Find
// examines, so a hostile URL full of them costs bounded work.
const maxFindCandidates = 64

// Find returns the first substring of s that is a valid key (right shape
// and checksum), such as a key pasted into a URL path or query, and
// whether there was one. Keys of any prefix are found. A key glued to
// further letters or digits on its right is found only when its secret has
// the generated length (SecretLen).
//
// Like Parse, Find does not allocate: the result is a substring of s.
func Find(s string) (string, bool) {
	seen := 0
	for off := 0; off < len(s) && seen < maxFindCandidates; {
		i := indexEnv(s[off:])
		if i < 0 {
			return "", false
		}
		i += off // s[i] is the '_' before the env
		seen++
		if k, ok := keyAt(s, i); ok {
			return k, true
		}
		off = i + 1
	}
	return "", false
}

// indexEnv returns the index of the first "_live_" or "_test_" in s, or -1.
func indexEnv(s string) int {
	a, b := strings.Index(s, "_live_"), strings.Index(s, "_test_")
	switch {
	case a < 0:
		return b
	case b < 0 || a < b:
		return a
	}
	return b
}

// keyAt tries the keys whose env starts after the '_' at s[i].
func keyAt(s string, i int) (string, bool) {
	// The prefix: lower-case letters and digits left of i, at most 16.
	left := i
	for left > 0 && i-left < 16 && (isLowerAlnum(s[left-1])) {
		left--
	}
	// The secret and checksum: base62 right of "_live_".
	bodyStart := i + 6
	right := bodyStart
	for right < len(s) && right-bodyStart < maxSecretLen+ChecksumLen && isBase62(s[right]) {
		right++
	}
	ends := [2]int{right, bodyStart + SecretLen + ChecksumLen}
	for start := left; start <= i-2; start++ {
		if s[start] < 'a' || s[start] > 'z' {
			continue
		}
		for j, end := range ends {
			if end > right || (j == 1 && end == right) {
				continue
			}
			if _, err := Parse(s[start:end]); err == nil {
				return s[start:end], true
			}
		}
	}
	return "", false
}

func isLowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }
