package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
	"github.com/keygate/keygate/problem"
)

// The OpenAPI document (openapi.json, embedded as openapiJSON and served at
// /v1/openapi.json) is kept true by these tests: every route in the route
// table is documented and nothing else is, every $ref resolves, and the
// documented schemas have exactly the JSON fields of the Go types the
// handlers encode and decode.

// opKey is one operation: an HTTP method in upper case and a path template.
type opKey struct{ Method, Path string }

func (o opKey) String() string { return o.Method + " " + o.Path }

// oaMethods are the keys of an OpenAPI path item that name operations.
var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaDoc is the part of an OpenAPI document the tests read.
type oaDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Security   *[]map[string][]string                `json:"security"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

// oaParam is a Parameter Object or a Reference Object to one.
type oaParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaMediaType struct {
	Schema json.RawMessage `json:"schema"`
}

type oaOperation struct {
	OperationID string    `json:"operationId"`
	Description string    `json:"description"`
	Parameters  []oaParam `json:"parameters"`
	RequestBody *struct {
		Ref     string                 `json:"$ref"`
		Content map[string]oaMediaType `json:"content"`
	} `json:"requestBody"`
	Responses map[string]json.RawMessage `json:"responses"`
	Security  *[]map[string][]string     `json:"security"`
}

type oaResponse struct {
	Ref     string                 `json:"$ref"`
	Content map[string]oaMediaType `json:"content"`
}

type oaSchema struct {
	Ref                  string                     `json:"$ref"`
	Type                 any                        `json:"type"`
	Properties           map[string]json.RawMessage `json:"properties"`
	Required             []string                   `json:"required"`
	AdditionalProperties *bool                      `json:"additionalProperties"`
	Enum                 []string                   `json:"enum"`
}

func parseDoc(t *testing.T) *oaDoc {
	t.Helper()
	var doc oaDoc
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return &doc
}

// documentedOps returns the operations of an OpenAPI paths object. Keys of
// a path item that are not methods (parameters, summary, …) are skipped.
func documentedOps(paths map[string]map[string]json.RawMessage) []opKey {
	var ops []opKey
	for path, item := range paths {
		for k := range item {
			if slices.Contains(oaMethods, k) {
				ops = append(ops, opKey{strings.ToUpper(k), path})
			}
		}
	}
	slices.SortFunc(ops, compareOps)
	return ops
}

// routeOps returns the operations of a route table.
func routeOps(rs []route) []opKey {
	ops := make([]opKey, 0, len(rs))
	for _, rt := range rs {
		ops = append(ops, opKey{rt.method, rt.path})
	}
	slices.SortFunc(ops, compareOps)
	return ops
}

func compareOps(a, b opKey) int {
	if c := strings.Compare(a.Path, b.Path); c != 0 {
		return c
	}
	return strings.Compare(a.Method, b.Method)
}

// diffOps returns the routes that the document lacks and the documented
// operations that no route serves, each sorted.
func diffOps(routes, documented []opKey) (missing, extra []opKey) {
	for _, r := range routes {
		if !slices.Contains(documented, r) && !slices.Contains(missing, r) {
			missing = append(missing, r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) && !slices.Contains(extra, d) {
			extra = append(extra, d)
		}
	}
	slices.SortFunc(missing, compareOps)
	slices.SortFunc(extra, compareOps)
	return missing, extra
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := parseDoc(t)
	routes := routeOps((&Server{}).routes())
	documented := documentedOps(doc.Paths)
	if len(routes) == 0 {
		t.Fatal("got an empty route table, want routes")
	}
	missing, extra := diffOps(routes, documented)
	for _, op := range missing {
		t.Errorf("route %s is in the route table but not in openapi.json", op)
	}
	for _, op := range extra {
		t.Errorf("openapi.json documents %s, but the route table has no such route", op)
	}
}

func TestOpenAPIDiffOps(t *testing.T) {
	get := func(p string) opKey { return opKey{"GET", p} }
	post := func(p string) opKey { return opKey{"POST", p} }
	tests := []struct {
		name           string
		routes, doc    []opKey
		missing, extra []opKey
	}{
		{
			name:   "same",
			routes: []opKey{get("/v1/keys"), post("/v1/keys"), get("/v1/keys/{id}")},
			doc:    []opKey{get("/v1/keys/{id}"), post("/v1/keys"), get("/v1/keys")},
		},
		{
			name:    "route missing from the document",
			routes:  []opKey{get("/v1/keys"), post("/v1/keys/{id}/revoke"), get("/v1/tiers")},
			doc:     []opKey{get("/v1/keys"), get("/v1/tiers")},
			missing: []opKey{post("/v1/keys/{id}/revoke")},
		},
		{
			name:   "documented operation without a route",
			routes: []opKey{get("/v1/keys")},
			doc:    []opKey{get("/v1/keys"), {"DELETE", "/v1/keys"}},
			extra:  []opKey{{"DELETE", "/v1/keys"}},
		},
		{
			name:    "method differs",
			routes:  []opKey{post("/v1/accounts")},
			doc:     []opKey{{"PUT", "/v1/accounts"}},
			missing: []opKey{post("/v1/accounts")},
			extra:   []opKey{{"PUT", "/v1/accounts"}},
		},
		{
			name:    "path parameter named differently",
			routes:  []opKey{get("/v1/keys/{id}")},
			doc:     []opKey{get("/v1/keys/{key_id}")},
			missing: []opKey{get("/v1/keys/{id}")},
			extra:   []opKey{get("/v1/keys/{key_id}")},
		},
		{
			name:    "empty document",
			routes:  []opKey{get("/healthz"), get("/readyz")},
			missing: []opKey{get("/healthz"), get("/readyz")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			missing, extra := diffOps(tt.routes, tt.doc)
			if !slices.Equal(missing, tt.missing) {
				t.Errorf("missing: got %v, want %v", missing, tt.missing)
			}
			if !slices.Equal(extra, tt.extra) {
				t.Errorf("extra: got %v, want %v", extra, tt.extra)
			}
		})
	}
}

func TestOpenAPIDocumentedOps(t *testing.T) {
	const src = `{
		"/v1/keys/{id}": {
			"summary": "a key",
			"parameters": [{"name": "id", "in": "path", "required": true}],
			"get": {"operationId": "getKey"},
			"post": {"operationId": "updateKey"}
		},
		"/healthz": {"get": {"operationId": "healthz"}, "x-internal": true}
	}`
	var paths map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(src), &paths); err != nil {
		t.Fatal(err)
	}
	got := documentedOps(paths)
	want := []opKey{{"GET", "/healthz"}, {"GET", "/v1/keys/{id}"}, {"POST", "/v1/keys/{id}"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// resolveRef resolves a local reference ("#/components/kind/name…") in the
// generic form of a document. It refuses references outside components.
func resolveRef(doc any, ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("%q is not a local reference", ref)
	}
	segs := strings.Split(ptr, "/")
	if len(segs) < 3 || segs[0] != "components" {
		return nil, fmt.Errorf("%q does not name a components entry", ref)
	}
	cur := doc
	for i, seg := range segs {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, fmt.Errorf("%q: no %q in #/%s", ref, seg, strings.Join(segs[:i], "/"))
			}
			cur = v
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("%q: no index %q in #/%s", ref, seg, strings.Join(segs[:i], "/"))
			}
			cur = c[n]
		default:
			return nil, fmt.Errorf("%q: #/%s is not an object", ref, strings.Join(segs[:i], "/"))
		}
	}
	return cur, nil
}

// collectRefs returns every $ref in v, keyed by the JSON pointer of the
// object that holds it.
func collectRefs(v any, at string, refs map[string]string) {
	switch c := v.(type) {
	case map[string]any:
		if r, ok := c["$ref"].(string); ok {
			refs[at] = r
		}
		for k, e := range c {
			collectRefs(e, at+"/"+strings.NewReplacer("~", "~0", "/", "~1").Replace(k), refs)
		}
	case []any:
		for i, e := range c {
			collectRefs(e, at+"/"+strconv.Itoa(i), refs)
		}
	}
}

func TestOpenAPIResolveRef(t *testing.T) {
	doc := map[string]any{
		"components": map[string]any{
			"schemas":   map[string]any{"Key": map[string]any{"type": "object"}},
			"responses": map[string]any{"a/b": map[string]any{"description": "slash"}},
		},
		"paths": map[string]any{"/x": map[string]any{}},
	}
	tests := []struct {
		ref    string
		wantOK bool
	}{
		{"#/components/schemas/Key", true},
		{"#/components/responses/a~1b", true},
		{"#/components/schemas/Account", false},
		{"#/components/schemas", false},
		{"#/paths/~1x", false},
		{"other.json#/components/schemas/Key", false},
		{"#/components/schemas/Key/type/x", false},
	}
	for _, tt := range tests {
		_, err := resolveRef(doc, tt.ref)
		if got := err == nil; got != tt.wantOK {
			t.Errorf("resolveRef(%q): got ok=%v (err %v), want ok=%v", tt.ref, got, err, tt.wantOK)
		}
	}
}

var pathParamRE = regexp.MustCompile(`\{([^{}/]+)\}`)

// templateParams returns the parameter names of a path template.
func templateParams(path string) []string {
	var names []string
	for _, m := range pathParamRE.FindAllStringSubmatch(path, -1) {
		names = append(names, m[1])
	}
	return names
}

func TestOpenAPITemplateParams(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/v1/keys", nil},
		{"/v1/keys/{id}", []string{"id"}},
		{"/v1/accounts/{account}/keys/{id}/revoke", []string{"account", "id"}},
	}
	for _, tt := range tests {
		if got := templateParams(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("templateParams(%q): got %v, want %v", tt.path, got, tt.want)
		}
	}
}

// operations returns every operation of doc with the path item's own
// parameters appended to the operation's.
func operations(t *testing.T, doc *oaDoc) map[opKey]*oaOperation {
	t.Helper()
	ops := make(map[opKey]*oaOperation)
	for path, item := range doc.Paths {
		var shared []oaParam
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				t.Fatalf("paths[%q].parameters: %v", path, err)
			}
		}
		for k, raw := range item {
			if !slices.Contains(oaMethods, k) {
				continue
			}
			op := new(oaOperation)
			if err := json.Unmarshal(raw, op); err != nil {
				t.Fatalf("%s %s: %v", strings.ToUpper(k), path, err)
			}
			op.Parameters = append(op.Parameters, shared...)
			ops[opKey{strings.ToUpper(k), path}] = op
		}
	}
	return ops
}

// decodeRef unmarshals v, following one $ref in generic, into dst.
func decodeRef(generic any, raw json.RawMessage, dst any) error {
	var probe struct {
		Ref string `json:"$ref"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return err
	}
	if probe.Ref != "" {
		v, err := resolveRef(generic, probe.Ref)
		if err != nil {
			return err
		}
		if raw, err = json.Marshal(v); err != nil {
			return err
		}
	}
	return json.Unmarshal(raw, dst)
}

var responseCodeRE = regexp.MustCompile(`^(default|[1-5]([0-9]{2}|XX))$`)

func TestOpenAPIIsValid(t *testing.T) {
	if !json.Valid(openapiJSON) {
		t.Fatal("openapi.json is not valid JSON")
	}
	var generic any
	if err := json.Unmarshal(openapiJSON, &generic); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	doc := parseDoc(t)

	t.Run("header", func(t *testing.T) {
		if got, want := doc.OpenAPI, "3.1.0"; got != want {
			t.Errorf("openapi: got %q, want %q", got, want)
		}
		if got, want := doc.Info.Title, "keygate"; got != want {
			t.Errorf("info.title: got %q, want %q", got, want)
		}
		if got, want := doc.Info.Version, keygate.Version; got != want {
			t.Errorf("info.version: got %q, want keygate.Version %q (the served document has it replaced by the build's)", got, want)
		}
	})

	t.Run("refs", func(t *testing.T) {
		refs := make(map[string]string)
		collectRefs(generic, "#", refs)
		if len(refs) == 0 {
			t.Fatal("got no $ref in the document, want some")
		}
		for at, ref := range refs {
			if _, err := resolveRef(generic, ref); err != nil {
				t.Errorf("$ref at %s: %v", at, err)
			}
		}
	})

	ops := operations(t, doc)
	schemes := doc.Components["securitySchemes"]
	seenIDs := make(map[string]opKey)
	for _, key := range slices.SortedFunc(maps.Keys(ops), compareOps) {
		op := ops[key]
		t.Run(key.String(), func(t *testing.T) {
			if op.OperationID == "" {
				t.Error("operationId: got none, want one")
			} else if prev, dup := seenIDs[op.OperationID]; dup {
				t.Errorf("operationId %q: got it on %s too, want it unique", op.OperationID, prev)
			} else {
				seenIDs[op.OperationID] = key
			}

			if len(op.Responses) == 0 {
				t.Error("responses: got none, want at least one")
			}
			for code, raw := range op.Responses {
				if !responseCodeRE.MatchString(code) {
					t.Errorf("response %q: got an invalid status code, want default, 1XX…5XX or a 3-digit code", code)
					continue
				}
				if code[0] != '4' && code[0] != '5' {
					continue
				}
				var r oaResponse
				if err := decodeRef(generic, raw, &r); err != nil {
					t.Errorf("response %s: %v", code, err)
					continue
				}
				media := slices.Sorted(maps.Keys(r.Content))
				if want := []string{problem.ContentType}; !slices.Equal(media, want) {
					t.Errorf("response %s: got media types %v, want %v", code, media, want)
					continue
				}
				var s oaSchema
				if err := json.Unmarshal(r.Content[problem.ContentType].Schema, &s); err != nil {
					t.Errorf("response %s: schema: %v", code, err)
				} else if want := "#/components/schemas/Problem"; s.Ref != want {
					t.Errorf("response %s: got schema $ref %q, want %q", code, s.Ref, want)
				}
			}

			// Path parameters: each one in the template is declared as a
			// required path parameter, and none is declared that is not there.
			declared := make(map[string]bool)
			for i, p := range op.Parameters {
				if p.Ref != "" {
					raw, _ := json.Marshal(p)
					if err := decodeRef(generic, raw, &p); err != nil {
						t.Errorf("parameter %d: %v", i, err)
						continue
					}
				}
				if p.In != "path" {
					continue
				}
				declared[p.Name] = true
				if !p.Required {
					t.Errorf("path parameter %q: got required false, want true", p.Name)
				}
			}
			inTemplate := templateParams(key.Path)
			for _, name := range inTemplate {
				if !declared[name] {
					t.Errorf("path parameter {%s}: got no parameter declared, want one with in: path", name)
				}
			}
			for name := range declared {
				if !slices.Contains(inTemplate, name) {
					t.Errorf("path parameter %q: declared, but got no {%s} in the path", name, name)
				}
			}

			// A request body is JSON whose schema refuses unknown fields,
			// as decode does.
			if rb := op.RequestBody; rb != nil {
				mt, ok := rb.Content["application/json"]
				if !ok || len(rb.Content) != 1 {
					t.Errorf("requestBody: got content %v, want only application/json", rb.Content)
				} else {
					var s oaSchema
					if err := decodeRef(generic, mt.Schema, &s); err != nil {
						t.Errorf("requestBody schema: %v", err)
					} else if s.Type == "array" {
						// Leak reports: arrays in GitHub's format, whose
						// members GitHub may extend; leak.ParseReport
						// ignores unknown ones.
					} else if s.AdditionalProperties == nil || *s.AdditionalProperties {
						t.Errorf("requestBody schema: got additionalProperties %v, want false", s.AdditionalProperties)
					}
				}
			}

			if op.Security != nil {
				for _, req := range *op.Security {
					for name := range req {
						if _, ok := schemes[name]; !ok {
							t.Errorf("security: got scheme %q, want one of components.securitySchemes", name)
						}
					}
				}
			}
		})
	}
}

// TestOpenAPISecurityMatchesRoutes checks each operation's security
// against the permission its route requires.
func TestOpenAPISecurityMatchesRoutes(t *testing.T) {
	doc := parseDoc(t)
	ops := operations(t, doc)
	for _, rt := range (&Server{}).routes() {
		key := opKey{rt.method, rt.path}
		op, ok := ops[key]
		if !ok {
			continue // reported by TestOpenAPIMatchesRoutes
		}
		security := doc.Security
		if op.Security != nil {
			security = op.Security
		}
		var got []map[string][]string
		if security != nil {
			got = *security
		}
		var want []map[string][]string
		switch {
		case rt.perm != "":
			want = []map[string][]string{{"rootKey": {rt.perm}}}
			if !strings.Contains(op.Description, "`"+rt.perm+"`") {
				t.Errorf("%s: got description %q, want it to name the `%s` permission", key, op.Description, rt.perm)
			}
		case rt.path == "/demo/weather": // the route Handler guards with keyauth
			want = []map[string][]string{{"apiKey": {}}}
		}
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s: got security %v, want %v", key, got, want)
		}
	}
}

// jsonField is one JSON member of a Go type: its Go type, and whether it is
// omitted when empty.
type jsonField struct {
	typ  reflect.Type
	omit bool
}

// jsonFields returns the JSON members typ encodes, flattening
// embedded structs (and pointers to them) as encoding/json does: a field
// of the outer struct wins over a promoted one of the same name.
func jsonFields(typ reflect.Type) map[string]jsonField {
	fields := make(map[string]jsonField)
	promoted := make(map[string]jsonField)
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, jf := range jsonFields(ft) {
					if _, dup := promoted[n]; !dup {
						promoted[n] = jf
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		optList := strings.Split(opts, ",")
		fields[name] = jsonField{typ: f.Type, omit: slices.Contains(optList, "omitempty") || slices.Contains(optList, "omitzero")}
	}
	for n, jf := range promoted {
		if _, shadowed := fields[n]; !shadowed {
			fields[n] = jf
		}
	}
	return fields
}

var (
	optionalPkg = reflect.TypeFor[Optional[bool]]().PkgPath()
	timeType    = reflect.TypeFor[time.Time]()
	rawType     = reflect.TypeFor[json.RawMessage]()
	marshaler   = reflect.TypeFor[json.Marshaler]()
)

// isOptional reports whether t is an Optional[T], a PATCH field that can be
// absent, null or a value.
func isOptional(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == optionalPkg && strings.HasPrefix(t.Name(), "Optional[")
}

// goSchemaType returns the JSON Schema type a Go type encodes to and
// decodes from, and whether JSON null means something for it (an
// Optional[T] or a pointer). ok is false when the type can hold any JSON
// (json.RawMessage, interfaces, other custom marshalers).
func goSchemaType(t reflect.Type) (typ string, nullable, ok bool) {
	switch {
	case isOptional(t):
		v, _ := t.FieldByName("Value")
		typ, _, ok = goSchemaType(v.Type.Elem())
		return typ, true, ok
	case t.Kind() == reflect.Pointer:
		typ, _, ok = goSchemaType(t.Elem())
		return typ, true, ok
	case t == timeType:
		return "string", false, true
	case t == rawType || t.Implements(marshaler):
		return "", false, false
	}
	switch t.Kind() {
	case reflect.String:
		return "string", false, true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer", false, true
	case reflect.Float32, reflect.Float64:
		return "number", false, true
	case reflect.Bool:
		return "boolean", false, true
	case reflect.Slice, reflect.Array:
		return "array", false, true
	case reflect.Map, reflect.Struct:
		return "object", false, true
	}
	return "", false, false
}

// schemaTypes returns the types a property schema names in "type" (a
// string or an array); none when it has no "type", such as a $ref.
func schemaTypes(raw json.RawMessage) ([]string, error) {
	var s struct {
		Type json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	if len(s.Type) == 0 {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(s.Type, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(s.Type, &many); err != nil {
		return nil, fmt.Errorf("type is neither a string nor an array of strings: %s", s.Type)
	}
	return many, nil
}

// checkPropertyType returns what is wrong with a property schema's types
// for a Go type: a type other than the Go type's, or null where null means
// nothing.
func checkPropertyType(raw json.RawMessage, goType reflect.Type) error {
	types, err := schemaTypes(raw)
	if err != nil || len(types) == 0 {
		return err
	}
	want, nullable, ok := goSchemaType(goType)
	for _, typ := range types {
		switch {
		case typ == "null" && !nullable:
			return fmt.Errorf("got type null, but %s cannot be null", goType)
		case typ != "null" && ok && typ != want:
			return fmt.Errorf("got type %q, want %q for %s", typ, want, goType)
		}
	}
	return nil
}

func TestOpenAPIJSONFields(t *testing.T) {
	type inner struct {
		ID     string `json:"id"`
		Name   string `json:"name"`
		Secret string `json:"-"`
		Note   string `json:"note,omitempty"`
	}
	type outer struct {
		Name string `json:"name,omitempty"` // shadows inner's name
		*inner
		Tier   Optional[string] `json:"tier,omitzero"`
		Count  int64
		hidden string
	}
	got := jsonFields(reflect.TypeFor[outer]())
	want := map[string]jsonField{
		"id":    {typ: reflect.TypeFor[string]()},
		"name":  {typ: reflect.TypeFor[string](), omit: true},
		"note":  {typ: reflect.TypeFor[string](), omit: true},
		"tier":  {typ: reflect.TypeFor[Optional[string]](), omit: true},
		"Count": {typ: reflect.TypeFor[int64]()},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// The fields encoding/json really emits agree.
	b, err := json.Marshal(outer{inner: &inner{ID: "x", Name: "inner"}, Tier: Some("t")})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if emitted := slices.Sorted(maps.Keys(m)); !slices.Equal(emitted, []string{"Count", "id", "tier"}) {
		t.Errorf("encoding/json emitted %v (%s), want Count, id and tier", emitted, b)
	}
}

func TestOpenAPICheckPropertyType(t *testing.T) {
	tests := []struct {
		schema string
		v      any
		ok     bool
	}{
		{`{"type": "string"}`, "", true},
		{`{"type": "integer"}`, "", false},
		{`{"type": ["string", "null"]}`, "", false},
		{`{"type": ["string", "null"]}`, Optional[string]{}, true},
		{`{"type": "string"}`, Optional[string]{}, true},
		{`{"type": ["integer", "null"]}`, Optional[int64]{}, true},
		{`{"type": ["number", "null"]}`, Optional[int64]{}, false},
		{`{"type": ["string", "null"], "format": "date-time"}`, Optional[time.Time]{}, true},
		{`{"type": "string", "format": "date-time"}`, time.Time{}, true},
		{`{"type": "object"}`, time.Time{}, false},
		{`{"type": ["object", "null"]}`, Optional[json.RawMessage]{}, true},
		{`{"type": "object"}`, json.RawMessage(nil), true},
		{`{"type": ["object", "null"]}`, json.RawMessage(nil), false},
		{`{"type": "integer"}`, (*int64)(nil), true},
		{`{"type": "number"}`, float64(0), true},
		{`{"type": "integer"}`, float64(0), false},
		{`{"type": "array"}`, []string(nil), true},
		{`{"type": "boolean"}`, Optional[bool]{}, true},
		{`{"type": "string"}`, keygate.Env(""), true},
		{`{"$ref": "#/components/schemas/Quota"}`, (*QuotaView)(nil), true},
	}
	for _, tt := range tests {
		err := checkPropertyType(json.RawMessage(tt.schema), reflect.TypeOf(tt.v))
		if got := err == nil; got != tt.ok {
			t.Errorf("%s for %T: got ok=%v (%v), want ok=%v", tt.schema, tt.v, got, err, tt.ok)
		}
	}
}

// TestOpenAPISchemasMatchTypes checks that each schema has exactly the
// JSON members of the Go type behind it, each of a type that Go type
// encodes or decodes, and — for responses — that the members always sent
// are the required ones.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := parseDoc(t)
	tests := []struct {
		schema   string
		v        any
		response bool
		// unsent are members the Go type has but the handler never sends,
		// which the schema need not document.
		unsent []string
	}{
		{"Problem", problem.Problem{}, true, nil},
		{"Account", keygate.Account{}, true, nil},
		{"Tier", keygate.Tier{}, true, nil},
		{"Key", KeyView{}, true, nil},
		{"VerifyResponse", VerifyResponse{}, true, nil},
		{"Quota", QuotaView{}, true, nil},
		{"Rate", RateView{}, true, nil},
		{"RegisterResponse", RegisterResponse{}, true, nil},
		{"AccountList", List[*keygate.Account]{}, true, nil},
		{"KeyList", List[KeyView]{}, true, nil},
		{"TierList", List[*keygate.Tier]{}, true, []string{"next_cursor"}},
		{"ImportResult", manage.ImportResult{}, true, nil},
		{"ImportError", manage.ImportError{}, true, nil},
		{"AuditEvent", keygate.AuditEvent{}, true, nil},
		{"AuditEventList", List[*keygate.AuditEvent]{}, true, nil},
		{"RootKey", RootKeyView{}, true, nil},
		{"RootKeyList", List[RootKeyView]{}, true, []string{"next_cursor"}},
		{"UsageResponse", UsageResponse{}, true, nil},
		{"UsageBucket", keygate.UsageBucket{}, true, nil},
		{"Webhook", keygate.Webhook{}, true, nil},
		{"WebhookWithSecret", WebhookSecretView{}, true, nil},
		{"WebhookList", List[*keygate.Webhook]{}, true, []string{"next_cursor"}},
		{"WebhookEvent", keygate.WebhookEvent{}, true, nil},
		{"WebhookDelivery", keygate.WebhookDelivery{}, true, nil},
		{"WebhookDeliveryList", List[*keygate.WebhookDelivery]{}, true, nil},
		{"CreateWebhookRequest", WebhookRequest{}, false, nil},
		{"UpdateWebhookRequest", WebhookPatch{}, false, nil},
		{"RegisterRequest", RegisterRequest{}, false, nil},
		{"VerifyRequest", VerifyRequest{}, false, nil},
		{"CreateAccountRequest", AccountRequest{}, false, nil},
		{"UpdateAccountRequest", AccountPatch{}, false, nil},
		{"CreateKeyRequest", KeyRequest{}, false, nil},
		{"UpdateKeyRequest", KeyPatch{}, false, nil},
		{"RevokeKeyRequest", RevokeRequest{}, false, nil},
		{"RotateKeyRequest", RotateRequest{}, false, nil},
		{"ImportRequest", ImportRequest{}, false, nil},
		{"ImportRow", manage.ImportRow{}, false, nil},
		{"CreateTierRequest", TierRequest{}, false, nil},
		{"UpdateTierRequest", TierPatch{}, false, nil},
		{"CreateRootKeyRequest", RootKeyRequest{}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			raw, ok := doc.Components["schemas"][tt.schema]
			if !ok {
				t.Fatalf("components.schemas.%s: got none, want one", tt.schema)
			}
			var s oaSchema
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			typ := reflect.TypeOf(tt.v)
			fields := jsonFields(typ)
			for _, name := range tt.unsent {
				if _, ok := fields[name]; !ok {
					t.Errorf("unsent %q: got no such JSON field in %s", name, typ)
				}
			}
			for name, f := range fields {
				prop, ok := s.Properties[name]
				if !ok {
					if !slices.Contains(tt.unsent, name) {
						t.Errorf("property %q: got none, want one (%s encodes it)", name, typ)
					}
					continue
				}
				if err := checkPropertyType(prop, f.typ); err != nil {
					t.Errorf("property %q: %v", name, err)
				}
				if !tt.response {
					continue
				}
				if got, want := slices.Contains(s.Required, name), !f.omit; got != want {
					t.Errorf("property %q: got required %v, want %v (%s always sends it: %v)", name, got, want, typ, want)
				}
			}
			for name := range s.Properties {
				if _, ok := fields[name]; !ok {
					t.Errorf("property %q: documented, but got no such JSON field in %s", name, typ)
				}
			}
			for _, name := range s.Required {
				if _, ok := s.Properties[name]; !ok {
					t.Errorf("required %q: got no such property, want one", name)
				}
			}
			if !tt.response && (s.AdditionalProperties == nil || *s.AdditionalProperties) {
				t.Errorf("additionalProperties: got %v, want false: decode refuses unknown fields", s.AdditionalProperties)
			}
		})
	}
}

// TestOpenAPIBoundsMatchConstants checks the limits the document states
// against the constants that enforce them.
func TestOpenAPIBoundsMatchConstants(t *testing.T) {
	var generic any
	if err := json.Unmarshal(openapiJSON, &generic); err != nil {
		t.Fatal(err)
	}
	get := func(ref string) any {
		t.Helper()
		v, err := resolveRef(generic, ref)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	info := generic.(map[string]any)["info"].(map[string]any)["description"].(string)
	for _, n := range []int{MaxBodyBytes, MaxImportBytes} {
		if !strings.Contains(info, strconv.Itoa(n)) {
			t.Errorf("info.description: got no mention of the %d-byte body limit", n)
		}
	}
	texts := []struct {
		ref, want string
	}{
		{"#/components/responses/PayloadTooLarge/description", strconv.Itoa(MaxBodyBytes)},
		{"#/components/responses/PayloadTooLarge/content/application~1problem+json/examples/too_large/value/detail", strconv.Itoa(MaxBodyBytes)},
		{"#/components/responses/ImportTooLarge/description", strconv.Itoa(MaxImportBytes)},
		{"#/components/responses/ImportTooLarge/content/application~1problem+json/examples/too_large/value/detail", strconv.Itoa(MaxImportBytes)},
		{"#/components/schemas/RotateKeyRequest/properties/grace/description", fmt.Sprintf("%dh", int(manage.MaxGrace.Hours()))},
	}
	for _, tt := range texts {
		if got, _ := get(tt.ref).(string); !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want it to mention %s", tt.ref, got, tt.want)
		}
	}
	numbers := []struct {
		ref  string
		want float64
	}{
		{"#/components/schemas/ImportRequest/properties/keys/maxItems", manage.MaxImportBatch},
		{"#/components/schemas/ImportRequest/properties/keys/minItems", 1},
		{"#/components/parameters/Limit/schema/maximum", keygate.MaxPageSize},
		{"#/components/parameters/Limit/schema/default", keygate.DefaultPageSize},
	}
	for _, tt := range numbers {
		if got, _ := get(tt.ref).(float64); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.ref, got, tt.want)
		}
	}
}

func TestOpenAPIOutcomesMatch(t *testing.T) {
	doc := parseDoc(t)
	var s oaSchema
	if err := json.Unmarshal(doc.Components["schemas"]["VerifyResponse"], &s); err != nil {
		t.Fatal(err)
	}
	var code oaSchema
	if err := json.Unmarshal(s.Properties["code"], &code); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range keygate.Outcomes {
		want = append(want, string(o))
	}
	if !slices.Equal(code.Enum, want) {
		t.Errorf("VerifyResponse.code enum: got %v, want %v", code.Enum, want)
	}
}
