// Package secretscan is the tests' check that no plaintext key reaches a
// log: a Scanner collects every log a test suite's servers write and
// every key the suite was issued, and Check searches the logs for any
// well-formed key (whichever prefix) and for each issued key, except in
// the one print that issues a key (a first start's root key, the demo's
// keys), which the log's source names as allowed.
package secretscan

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/keygate/keygate/apikey"
)

// Scanner collects logs and issued keys. Its methods are safe for
// concurrent use; the zero value is ready.
type Scanner struct {
	mu     sync.Mutex
	logs   []source
	issued map[string]bool
}

type source struct {
	name    string
	text    func() string
	allowed []*regexp.Regexp
}

// Log adds a log to search, read by text when Check runs. Matches of
// allowed are the prints that issue a key, left out of the search.
func (s *Scanner) Log(name string, text func() string, allowed ...*regexp.Regexp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = append(s.logs, source{name, text, allowed})
}

// Issued notes every key in text (an answer or a command's output that
// issued keys), so that Check searches for each.
func (s *Scanner) Issued(text string) {
	keys := Keys(text)
	if len(keys) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil {
		s.issued = map[string]bool{}
	}
	for _, k := range keys {
		s.issued[k] = true
	}
}

// Counts returns how many logs and issued keys the scanner holds, so that
// a suite can tell that its check saw something.
func (s *Scanner) Counts() (logs, issued int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logs), len(s.issued)
}

// Check searches every log and returns an error naming each log that
// holds a key, by the key's start only.
func (s *Scanner) Check() error {
	s.mu.Lock()
	logs := append([]source(nil), s.logs...)
	issued := make([]string, 0, len(s.issued))
	for k := range s.issued {
		issued = append(issued, k)
	}
	s.mu.Unlock()
	sort.Strings(issued)
	var problems []string
	for _, l := range logs {
		text := l.text()
		for _, re := range l.allowed {
			text = re.ReplaceAllString(text, "")
		}
		found := map[string]bool{}
		for _, k := range Keys(text) {
			found[k] = true
		}
		for _, k := range issued {
			if strings.Contains(text, k) {
				found[k] = true
			}
		}
		for k := range found {
			problems = append(problems, fmt.Sprintf("%s holds the plaintext key %s…", l.name, apikey.Start(k)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return fmt.Errorf("plaintext keys in logs:\n  %s", strings.Join(problems, "\n  "))
}

// Keys returns every well-formed key in text, of any prefix.
func Keys(text string) []string {
	var out []string
	for off := 0; off < len(text); {
		i := indexEnv(text[off:])
		if i < 0 {
			break
		}
		i += off
		// A key is at most a 16-character prefix, the env and a secret
		// with its checksum; look at a window around this one only, so
		// that a long log is searched in full (apikey.Find gives up after
		// a number of candidates).
		lo, hi := max(i-17, 0), min(i+6+128, len(text))
		if k, ok := apikey.Find(text[lo:hi]); ok {
			out = append(out, k)
			off = lo + strings.Index(text[lo:hi], k) + len(k)
			continue
		}
		off = i + 1
	}
	return out
}

func indexEnv(s string) int {
	a, b := strings.Index(s, "_live_"), strings.Index(s, "_test_")
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}
