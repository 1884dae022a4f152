// Package apicheck holds tests to api/openapi.json: Handler wraps a test
// server's handler so that every request a test sends and every answer it
// gets are validated against the document with kin-openapi's
// openapi3filter, failing the test on any mismatch. Any test that serves
// the API (or a stand-in for it) should use it.
package apicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/keygate/keygate/api"
)

// openAPI is api/openapi.json loaded and validated by kin-openapi, with a
// router that finds the documented operation of a request.
type openAPI struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

var loadOpenAPI = sync.OnceValues(func() (*openAPI, error) {
	data := api.OpenAPI()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.json does not load: %w", err)
	}
	// NewRouter validates the document first.
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("api/openapi.json: %w", err)
	}
	p := doc.Components.Schemas["Problem"]
	if p == nil || p.Value == nil {
		return nil, fmt.Errorf("api/openapi.json has no components.schemas.Problem")
	}
	return &openAPI{doc: doc, router: router, problem: p.Value}, nil
})

// Handler wraps the handler of a test server so that every request
// the test suite sends and every answer it receives is checked against
// api/openapi.json: a mismatch fails the test that made the request.
//
//   - A request to a path or method the document does not have fails the
//     test unless the API answered it 404 or 405 with a problem body: a
//     new endpoint must be documented before its tests pass.
//   - A request that the document calls invalid fails the test when the
//     API accepted it (any 2xx); tests that send bad input on purpose get
//     their 4xx.
//   - Every answer's status, headers and body must match the operation's
//     documented response for that status. The statuses every path may
//     answer (404, 405 and 500, see the document's description) need not
//     be listed per operation, but their bodies must be problems.
func Handler(tb testing.TB, h http.Handler) http.Handler {
	oa, err := loadOpenAPI()
	if err != nil {
		tb.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if err := oa.check(r, body, rec); err != nil {
			tb.Errorf("api/openapi.json does not match %s %s → %d:\n%v\nanswer: %s", r.Method, r.URL.RequestURI(), rec.Code, err, truncate(rec.Body.Bytes()))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

// Covers reports whether the document speaks for a request to path:
// every path under /v1/ (one it does not list must answer a 404 problem),
// and the paths it lists outside /v1/ (/healthz, /readyz, …). Any other
// path — a gateway's upstream, the portal's pages — is not the API's.
func Covers(path string) bool {
	if strings.HasPrefix(path, "/v1/") {
		return true
	}
	oa, err := loadOpenAPI()
	return err == nil && oa.doc.Paths.Value(path) != nil
}

// Covered is Handler for the requests whose path the document covers
// (Covers), in front of a whole server: every other request goes to h
// as it came, unchecked and unbuffered, so that a gateway's streamed
// answers and the portal's pages pass through untouched.
func Covered(tb testing.TB, h http.Handler) http.Handler {
	checked := Handler(tb, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Covers(r.URL.Path) {
			checked.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// check validates one exchange against the document.
func (oa *openAPI) check(r *http.Request, body []byte, rec *httptest.ResponseRecorder) error {
	ctx := context.Background()
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(body))
	if req.URL.Host == "" {
		req.URL.Scheme, req.URL.Host = "http", r.Host
	}
	route, params, err := oa.router.FindRoute(req)
	if err != nil {
		switch rec.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return oa.checkProblem(rec)
		}
		return fmt.Errorf("%s %s is not in the document (%v): add the operation to api/openapi.json", r.Method, r.URL.Path, err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true, IncludeResponseStatus: true}
	opts.WithCustomSchemaErrorFunc(schemaError)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	if reqErr != nil && rec.Code < 300 {
		return fmt.Errorf("the API accepted a request the document calls invalid:\n%v", reqErr)
	}
	if route.Operation.Responses.Status(rec.Code) == nil {
		switch rec.Code {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusInternalServerError:
			return oa.checkProblem(rec)
		}
		return fmt.Errorf("status %d is not among the operation's documented responses: add it to %s %s in api/openapi.json", rec.Code, route.Method, route.Path)
	}
	in.Request.Body = io.NopCloser(bytes.NewReader(body))
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return err
	}
	return undocumentedFields(route.Operation.Responses.Status(rec.Code).Value, rec)
}

// undocumentedFields reports the members of a JSON answer that its schema
// does not name. The document leaves response objects open (fields may be
// added within v1), so kin-openapi accepts any extra member; the suite
// holds the document to naming every field the API sends.
func undocumentedFields(resp *openapi3.Response, rec *httptest.ResponseRecorder) error {
	mt := resp.Content.Get(rec.Header().Get("Content-Type"))
	if mt == nil || mt.Schema == nil || !strings.Contains(rec.Header().Get("Content-Type"), "json") {
		return nil
	}
	v, err := decodeJSON(rec.Body.Bytes())
	if err != nil {
		return err
	}
	var extra []string
	walkFields(mt.Schema.Value, v, "", &extra)
	if len(extra) > 0 {
		return fmt.Errorf("the answer has members the document does not describe: %s", strings.Join(extra, ", "))
	}
	return nil
}

// walkFields appends to extra the path of every member of v that schema
// s does not declare. Objects with no declared properties (metadata,
// details) and maps (additionalProperties with a schema) take any member.
func walkFields(s *openapi3.Schema, v any, at string, extra *[]string) {
	if s == nil {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		props := map[string]*openapi3.Schema{}
		open := collectProps(s, props)
		if open {
			if ap := s.AdditionalProperties.Schema; ap != nil {
				for k, x := range v {
					walkFields(ap.Value, x, at+"/"+k, extra)
				}
			}
			return
		}
		for k, x := range v {
			ps, ok := props[k]
			if !ok {
				*extra = append(*extra, at+"/"+k)
				continue
			}
			walkFields(ps, x, at+"/"+k, extra)
		}
	case []any:
		if s.Items == nil {
			return
		}
		for i, x := range v {
			walkFields(s.Items.Value, x, fmt.Sprintf("%s/%d", at, i), extra)
		}
	}
}

// collectProps gathers the properties s declares, through allOf, and
// reports whether s takes members it does not declare: it has
// additionalProperties with a schema (a map), or it is an object that
// declares no properties at all (free-form, such as meta). An allOf
// member that only adds required names opens nothing.
func collectProps(s *openapi3.Schema, props map[string]*openapi3.Schema) (open bool) {
	open = len(s.Properties) == 0 && len(s.AllOf) == 0
	for _, sub := range s.AllOf {
		if collectProps(sub.Value, props) && len(sub.Value.Properties) > 0 {
			open = true
		}
	}
	for name, p := range s.Properties {
		props[name] = p.Value
	}
	if s.AdditionalProperties.Schema != nil || (s.AdditionalProperties.Has != nil && *s.AdditionalProperties.Has) {
		open = true
	}
	return open
}

// checkProblem checks an answer that no operation documents: a problem
// body as components.schemas.Problem describes it.
func (oa *openAPI) checkProblem(rec *httptest.ResponseRecorder) error {
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		return fmt.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	v, err := decodeJSON(rec.Body.Bytes())
	if err != nil {
		return err
	}
	return oa.problem.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors(), openapi3.SetSchemaErrorMessageCustomizer(schemaError))
}

// schemaError is a schema mismatch in one line: where, why and the value,
// without kin-openapi's dump of the whole schema.
func schemaError(e *openapi3.SchemaError) string {
	if e.Origin != nil || e.Reason == "" {
		return ""
	}
	v, _ := json.Marshal(e.Value)
	return fmt.Sprintf("at /%s: %s; got %s", strings.Join(e.JSONPointer(), "/"), e.Reason, truncate(v))
}

// WebhookPayload checks a webhook delivery's body, which no answer of
// the API carries, against the payload of components.schemas.WebhookEvent.
func WebhookPayload(v map[string]any) error {
	oa, err := loadOpenAPI()
	if err != nil {
		return err
	}
	ev := oa.doc.Components.Schemas["WebhookEvent"]
	if ev == nil || ev.Value == nil || ev.Value.Properties["payload"] == nil {
		return fmt.Errorf("api/openapi.json has no components.schemas.WebhookEvent.properties.payload")
	}
	s := ev.Value.Properties["payload"]
	if err := s.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors(), openapi3.SetSchemaErrorMessageCustomizer(schemaError)); err != nil {
		return err
	}
	var extra []string
	walkFields(s.Value, v, "", &extra)
	if len(extra) > 0 {
		return fmt.Errorf("members the document does not describe: %s", strings.Join(extra, ", "))
	}
	return nil
}

// decodeJSON decodes b the way kin-openapi expects values: numbers as
// float64, objects as map[string]any.
func decodeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("the body is not JSON: %w", err)
	}
	return v, nil
}

// Load loads api/openapi.json with kin-openapi, which validates it as an
// OpenAPI 3.1 document: every $ref resolves, every schema is well-formed.
func Load() error {
	_, err := loadOpenAPI()
	return err
}
