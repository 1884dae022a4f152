// Package route holds the gateway's route rules and the config file they
// are read from. A rule maps a method and a path (exact, prefix or
// pattern) to the scopes a key needs there, or marks the path public; the
// first rule that matches a request wins, and a default covers the rest.
//
// The file is YAML:
//
//	serve:                      # optional: any `keygate serve` flag
//	  upstream: http://127.0.0.1:9000
//	  upstream-timeout: 30s
//	routes:
//	  - name: read-weather      # recorded with each request's usage
//	    method: GET             # one method or a list; omitted: any
//	    path: /weather          # exact
//	    scopes: [weather:read]
//	  - name: alerts
//	    method: [POST, PUT]
//	    path: /alerts/          # trailing slash: this prefix
//	    scopes: [weather:write]
//	  - name: orders
//	    path: /users/{id}/orders/{rest...}   # {x}: one segment, {x...}: the rest
//	    scopes: [orders:read]
//	  - path: /status
//	    public: true            # no key needed, none checked
//	default:                    # unmatched paths; omitted: a valid key, no scope
//	  scopes: []
package route

import (
	"fmt"
	"strings"

	"github.com/keygate/keygate"
)

// Rule is one route rule.
type Rule struct {
	// Name identifies the rule in usage records; empty means the rule's
	// method and path.
	Name string
	// Methods the rule applies to, upper case; empty means any. GET also
	// matches HEAD.
	Methods []string
	// Path is exact ("/weather"), a prefix when it ends in "/" ("/api/"),
	// or a pattern with {name} (one segment) and a final {name...} (the
	// rest, possibly empty) wildcards.
	Path string
	// Scopes a key must hold (wildcards in the key's scopes apply).
	Scopes []string
	// Public rules need no key: none is checked and no usage is counted.
	Public bool
	// Line is where the rule starts in its file, for messages.
	Line int

	segs   []string // the pattern's segments; "" marks {x}, "*" a final {x...}
	prefix bool
	label  string
}

// Label returns the name usage records carry for the rule.
func (r *Rule) Label() string { return r.label }

// Table is an ordered list of rules and the default for everything else.
// It is immutable and safe for concurrent use.
type Table struct {
	rules []*Rule
	def   *Rule
}

// DefaultRule is the rule for requests no rule matches when a file sets
// none: a valid key, no particular scope.
func DefaultRule() Rule { return Rule{Name: "default"} }

// NewTable validates and compiles rules and the default into a Table.
func NewTable(rules []Rule, def Rule) (*Table, error) {
	t := &Table{}
	for i := range rules {
		r := rules[i]
		if err := r.compile(); err != nil {
			return nil, lineError(r.Line, fmt.Sprintf("routes[%d]: %v", i, err))
		}
		t.rules = append(t.rules, &r)
	}
	if def.Path != "" || len(def.Methods) > 0 {
		return nil, lineError(def.Line, "default: takes no path or method; it covers every request no rule matches")
	}
	if def.Name == "" {
		def.Name = "default"
	}
	scopes, err := normalizeScopes(def.Scopes, def.Public)
	if err != nil {
		return nil, lineError(def.Line, "default: "+err.Error())
	}
	def.Scopes, def.label = scopes, def.Name
	t.def = &def
	return t, nil
}

// Rules returns the table's rules in match order, then the default.
func (t *Table) Rules() []Rule {
	out := make([]Rule, 0, len(t.rules)+1)
	for _, r := range t.rules {
		out = append(out, *r)
	}
	return append(out, *t.def)
}

func lineError(line int, msg string) error {
	if line > 0 {
		return &Error{Line: line, Msg: msg}
	}
	return &Error{Msg: msg}
}

func normalizeScopes(in []string, public bool) ([]string, error) {
	if public && len(in) > 0 {
		return nil, fmt.Errorf("a public route cannot require scopes; drop scopes or public")
	}
	if len(in) == 0 {
		return nil, nil
	}
	s, err := keygate.NormalizeScopes(in)
	if err != nil {
		return nil, fmt.Errorf("scopes: %s", keygate.ErrorMessage(err))
	}
	return s, nil
}

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

func (r *Rule) compile() error {
	for i, m := range r.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !knownMethods[m] {
			return fmt.Errorf("method %q: use GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT or TRACE", r.Methods[i])
		}
		r.Methods[i] = m
	}
	p := r.Path
	switch {
	case p == "":
		return fmt.Errorf("path is required (\"/\" matches everything)")
	case p[0] != '/':
		return fmt.Errorf("path %q must start with /", p)
	case strings.ContainsAny(p, "?#"):
		return fmt.Errorf("path %q must not hold a query or fragment", p)
	case len(p) > 1024:
		return fmt.Errorf("path is longer than 1024 bytes")
	}
	for _, c := range []byte(p) {
		if c <= ' ' || c == 0x7f {
			return fmt.Errorf("path %q holds a space or control character", p)
		}
	}
	if strings.Contains(p, "//") || strings.Contains(p+"/", "/./") || strings.Contains(p+"/", "/../") {
		return fmt.Errorf("path %q is not clean: no empty, . or .. segments", p)
	}
	r.prefix = strings.HasSuffix(p, "/")
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if p == "/" {
		segs = nil
	}
	r.segs = make([]string, len(segs))
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			r.segs[i] = s
			if s == "" {
				return fmt.Errorf("path %q has an empty segment", p)
			}
			continue
		}
		name, ok := strings.CutPrefix(s, "{")
		if name, ok = strings.CutSuffix(name, "}"); !ok || name == "" || strings.ContainsAny(name, "{}") {
			return fmt.Errorf("path %q: segment %q: a wildcard is a whole segment, {name} or {name...}", p, s)
		}
		if strings.HasSuffix(name, "...") {
			if i != len(segs)-1 || r.prefix {
				return fmt.Errorf("path %q: {%s} must be the last segment, with no slash after it", p, name)
			}
			r.segs[i] = "*"
			continue
		}
		r.segs[i] = ""
		if name == "$" {
			return fmt.Errorf("path %q: {$} is not supported; an exact path is written without a trailing slash", p)
		}
	}
	var err error
	if r.Scopes, err = normalizeScopes(r.Scopes, r.Public); err != nil {
		return err
	}
	r.label = r.Name
	if r.label == "" {
		m := "*"
		if len(r.Methods) > 0 {
			m = strings.Join(r.Methods, ",")
		}
		r.label = m + " " + r.Path
	}
	if len(r.label) > 200 {
		return fmt.Errorf("name is longer than 200 bytes")
	}
	return nil
}

// Match returns the first rule that matches the request's method and
// path, or the default. path must be clean (see Clean).
func (t *Table) Match(method, path string) *Rule {
	for _, r := range t.rules {
		if r.matches(method, path) {
			return r
		}
	}
	return t.def
}

func (r *Rule) matches(method, path string) bool {
	if len(r.Methods) > 0 {
		ok := false
		for _, m := range r.Methods {
			if m == method || (m == "GET" && method == "HEAD") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	rest := path[1:]
	for i, s := range r.segs {
		if s == "*" {
			return true
		}
		seg, after, slash := strings.Cut(rest, "/")
		if seg == "" || (s != "" && seg != s) {
			return false
		}
		if i == len(r.segs)-1 {
			// A prefix rule needs the slash after its last segment; an
			// exact one needs the path to end there.
			return slash == r.prefix
		}
		if !slash {
			return false
		}
		rest = after
	}
	return r.prefix // the rule "/" matches every path
}

// Clean reports whether path is in canonical form: it starts with "/" and
// has no empty, "." or ".." segments (a trailing slash is fine). Requests
// with other paths are refused before matching, so that "/public/../admin"
// cannot borrow the rule of /public/.
func Clean(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 1; i < len(path); {
		j := strings.IndexByte(path[i:], '/')
		seg := path[i:]
		if j >= 0 {
			seg = path[i : i+j]
		}
		if seg == "." || seg == ".." || (seg == "" && j >= 0) {
			return false
		}
		if j < 0 {
			break
		}
		i += j + 1
	}
	return true
}

// Error is a config or rule error, with the file's line when known.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}
