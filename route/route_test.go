package route

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const sample = `# the weather API
serve:
  upstream: http://127.0.0.1:9000
  upstream_timeout: 5s
routes:
  - name: read-weather
    method: GET
    path: /weather
    scopes: [weather:read]
  - name: alerts
    method: [post, PUT]
    path: /alerts/
    scopes: [weather:write]
  - name: orders
    path: /users/{id}/orders/{rest...}
    scopes: [orders:read]
  - path: /status
    public: true
  - name: everything-under-static
    path: /static/
    public: true
default:
  scopes: [api:use]
`

func TestMatch(t *testing.T) {
	c, err := Parse("keygate.yaml", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/weather", "read-weather"},
		{"HEAD", "/weather", "read-weather"},
		{"POST", "/weather", "default"},
		{"GET", "/weather/", "default"},
		{"GET", "/weatherx", "default"},
		{"POST", "/alerts/", "alerts"},
		{"PUT", "/alerts/1/ack", "alerts"},
		{"POST", "/alerts", "default"},
		{"DELETE", "/alerts/1", "default"},
		{"GET", "/users/42/orders/", "orders"},
		{"GET", "/users/42/orders/7/items", "orders"},
		{"GET", "/users/42/orders", "default"},
		{"GET", "/users//orders/1", "default"},
		{"GET", "/status", "* /status"},
		{"OPTIONS", "/status", "* /status"},
		{"GET", "/static/app.js", "everything-under-static"},
		{"GET", "/", "default"},
	}
	for _, tt := range tests {
		if got := c.Routes.Match(tt.method, tt.path).Label(); got != tt.want {
			t.Errorf("Match(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
	def := c.Routes.Match("GET", "/nothing")
	if diff := cmp.Diff([]string{"api:use"}, def.Scopes); diff != "" {
		t.Errorf("default scopes (-want +got):\n%s", diff)
	}
	if got := c.Routes.Match("GET", "/status"); !got.Public || len(got.Scopes) != 0 {
		t.Errorf("/status: got %+v, want public", got)
	}
	want := map[string]Setting{
		"upstream":         {Value: "http://127.0.0.1:9000", Line: 3},
		"upstream-timeout": {Value: "5s", Line: 4},
	}
	if diff := cmp.Diff(want, c.Serve); diff != "" {
		t.Errorf("serve settings (-want +got):\n%s", diff)
	}
}

func TestRootRuleMatchesEverything(t *testing.T) {
	c, err := Parse("f", []byte("routes:\n  - path: /\n    public: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/a", "/a/b/"} {
		if !c.Routes.Match("GET", p).Public {
			t.Errorf("%s: not matched by the rule /", p)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	c, err := Parse("f", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Routes.Match("GET", "/x"); r.Label() != "default" || r.Public || len(r.Scopes) != 0 {
		t.Fatalf("empty file: got %+v, want the default (a valid key)", r)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, file string
		line       int
		reason     string
	}{
		{"bad YAML", "routes:\n  - path: /a\n   bad: [\n", -1, ""},
		{"unknown field", "routes:\n  - path: /a\n    scope: [x]\n", 3, `unknown field "scope"`},
		{"unknown section", "route:\n  - path: /a\n", 1, `unknown section "route"`},
		{"no path", "routes:\n  - name: x\n    scopes: [a]\n", 2, "path is required"},
		{"relative path", "routes:\n  - path: weather\n", 2, "must start with /"},
		{"dot segment", "routes:\n  - path: /a/../b\n", 2, "not clean"},
		{"bad method", "routes:\n  - path: /a\n  - path: /b\n    method: FETCH\n", 3, `method "FETCH"`},
		{"bad scope", "routes:\n  - path: /a\n    scopes: [\"no spaces\"]\n", 2, "scopes"},
		{"public with scopes", "routes:\n  - path: /a\n    public: true\n    scopes: [x]\n", 2, "public route cannot require scopes"},
		{"wildcard not last", "routes:\n  - path: /a/{rest...}/b\n", 2, "must be the last segment"},
		{"half wildcard", "routes:\n  - path: /a/x{id}\n", 2, "a wildcard is a whole segment"},
		{"wrong type", "routes:\n  - path: /a\n    public: maybe\n", 3, ""},
		{"routes not a list", "routes: 5\n", 1, "routes must be a list"},
		{"default with a path", "default:\n  path: /a\n", 2, "takes no path"},
		{"serve not a mapping", "serve: [1]\n", 1, "serve must be a mapping"},
		{"twice", "routes: []\nroutes: []\n", 2, "appears twice"},
		{"two documents", "routes: []\n---\nroutes: []\n", 2, "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("keygate.yaml", []byte(tt.file))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want an *Error", err)
			}
			if (tt.line > 0 && e.Line != tt.line) || e.Line <= 0 || e.File != "keygate.yaml" || !strings.Contains(e.Msg, tt.reason) {
				t.Fatalf("got %q (line %d), want line %d with %q", err, e.Line, tt.line, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "keygate.yaml:") {
				t.Fatalf("message %q does not start with the file name", err)
			}
		})
	}
}

func TestClean(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/a": true, "/a/": true, "/a/b.c": true, "/..a": true,
		"": false, "a": false, "//a": false, "/a//b": false, "/a/./b": false,
		"/a/..": false, "/../a": false, "/.": false,
	} {
		if got := Clean(p); got != want {
			t.Errorf("Clean(%q) = %v, want %v", p, got, want)
		}
	}
}

// FuzzParse checks that no file makes the parser panic, that every
// refusal names the file, and that a table it accepts matches any request.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("routes:\n  - path: /\n    public: true\n"))
	f.Add([]byte("default:\n  scopes: [a:b]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, p := range []string{"/", "/a", "/a/b", "/weather", "/users/1/orders/2"} {
			if r := c.Routes.Match("GET", p); r == nil {
				t.Fatalf("Match(GET %s) = nil", p)
			}
		}
	})
}
