package api

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/manage"
)

// The OpenAPI document (openapi.json, embedded as openapiJSON and served at
// /v1/openapi.json) is kept true in two ways. The API's own tests check
// every request they send and every answer they get against it with
// kin-openapi (internal/apicheck). The tests here check what no answer
// shows: the route table and the document list the same operations with
// the same permissions, and the limits and outcome codes the document
// states are the constants the code enforces.

// loadDoc loads the embedded document with kin-openapi.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiJSON)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	return doc
}

// operations returns the document's operations by "METHOD /path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[method+" "+path] = op
		}
	}
	return ops
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	documented := slices.Sorted(maps.Keys(operations(loadDoc(t))))
	var routes []string
	for _, rt := range (&Server{}).routes() {
		routes = append(routes, rt.method+" "+rt.path)
	}
	slices.Sort(routes)
	if diff := cmp.Diff(documented, routes); diff != "" {
		t.Errorf("the operations of openapi.json (-) and the route table (+) differ:\n%s", diff)
	}
}

// TestOpenAPISecurityMatchesRoutes checks each operation's security
// against the permission its route requires.
func TestOpenAPISecurityMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	ops := operations(doc)
	for _, rt := range (&Server{}).routes() {
		key := rt.method + " " + rt.path
		op, ok := ops[key]
		if !ok {
			continue // reported by TestOpenAPIMatchesRoutes
		}
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		var want openapi3.SecurityRequirements
		switch {
		case rt.perm != "":
			want = openapi3.SecurityRequirements{{"rootKey": {rt.perm}}}
			if !strings.Contains(op.Description, "`"+rt.perm+"`") {
				t.Errorf("%s: got description %q, want it to name the `%s` permission", key, op.Description, rt.perm)
			}
		case rt.keyed:
			want = openapi3.SecurityRequirements{{"apiKey": {}}}
		}
		if len(security) == 0 && len(want) == 0 {
			continue
		}
		if diff := cmp.Diff(want, security); diff != "" {
			t.Errorf("%s: security (-want +got):\n%s", key, diff)
		}
	}
}

// TestOpenAPIBoundsMatchConstants checks the limits the document states
// against the constants that enforce them.
func TestOpenAPIBoundsMatchConstants(t *testing.T) {
	doc := loadDoc(t)
	for _, n := range []int{MaxBodyBytes, MaxImportBytes} {
		if !strings.Contains(doc.Info.Description, strconv.Itoa(n)) {
			t.Errorf("info.description: got no mention of the %d-byte body limit", n)
		}
	}
	tooLarge := func(name string) (desc, detail string) {
		r := doc.Components.Responses[name]
		if r == nil || r.Value == nil {
			t.Fatalf("components.responses.%s is missing", name)
		}
		mt := r.Value.Content.Get("application/problem+json")
		if mt == nil || mt.Examples["too_large"] == nil {
			t.Fatalf("components.responses.%s has no too_large example", name)
		}
		v, _ := mt.Examples["too_large"].Value.Value.(map[string]any)
		detail, _ = v["detail"].(string)
		return *r.Value.Description, detail
	}
	schema := func(name string) *openapi3.Schema {
		s := doc.Components.Schemas[name]
		if s == nil || s.Value == nil {
			t.Fatalf("components.schemas.%s is missing", name)
		}
		return s.Value
	}
	for name, n := range map[string]int{"PayloadTooLarge": MaxBodyBytes, "ImportTooLarge": MaxImportBytes} {
		desc, detail := tooLarge(name)
		for _, s := range []string{desc, detail} {
			if !strings.Contains(s, strconv.Itoa(n)) {
				t.Errorf("components.responses.%s: got %q, want it to mention %d", name, s, n)
			}
		}
	}
	grace := fmt.Sprintf("%dh", int(manage.MaxGrace.Hours()))
	if d := schema("RotateKeyRequest").Properties["grace"].Value.Description; !strings.Contains(d, grace) {
		t.Errorf("RotateKeyRequest.grace: got %q, want it to mention %s", d, grace)
	}
	keys := schema("ImportRequest").Properties["keys"].Value
	if keys.MaxItems == nil || *keys.MaxItems != manage.MaxImportBatch || keys.MinItems != 1 {
		t.Errorf("ImportRequest.keys: got minItems %d, maxItems %v; want 1 and %d", keys.MinItems, keys.MaxItems, manage.MaxImportBatch)
	}
	limit := doc.Components.Parameters["Limit"].Value.Schema.Value
	if limit.Max == nil || *limit.Max != keygate.MaxPageSize || limit.Default != float64(keygate.DefaultPageSize) {
		t.Errorf("parameters.Limit: got maximum %v, default %v; want %d and %d", limit.Max, limit.Default, keygate.MaxPageSize, keygate.DefaultPageSize)
	}
	usage := doc.Paths.Value("/v1/usage").Get.Description
	for _, want := range []string{fmt.Sprintf("at most %d distinct routes", keygate.MaxUsageRoutesPerDay), keygate.UsageRouteOther} {
		if !strings.Contains(usage, want) {
			t.Errorf("GET /v1/usage description: got no mention of %q", want)
		}
	}
	top := doc.Paths.Value("/v1/usage/top").Get.Parameters.GetByInAndName("query", "limit").Schema.Value
	if top.Max == nil || *top.Max != MaxUsageTop || top.Default != float64(DefaultUsageTop) {
		t.Errorf("GET /v1/usage/top limit: got maximum %v, default %v; want %d and %d", top.Max, top.Default, MaxUsageTop, DefaultUsageTop)
	}
}

func TestOpenAPIOutcomesMatch(t *testing.T) {
	doc := loadDoc(t)
	var got, want []string
	for _, v := range doc.Components.Schemas["VerifyResponse"].Value.Properties["code"].Value.Enum {
		got = append(got, fmt.Sprint(v))
	}
	for _, o := range keygate.Outcomes {
		want = append(want, string(o))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("VerifyResponse.code enum (-want +got):\n%s", diff)
	}
}

// Every event type an endpoint can receive is described, payload and
// headers, in the document's webhooks; cmd/keygate's end-to-end test
// checks real deliveries against them.
func TestOpenAPIWebhooksMatchEventTypes(t *testing.T) {
	doc := loadDoc(t)
	want := append(slices.Clone(keygate.WebhookEventTypes), keygate.EventWebhookTest)
	if got := slices.Sorted(maps.Keys(doc.Webhooks)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("webhooks: got %v, want %v", got, want)
	}
	for typ, item := range doc.Webhooks {
		op := item.Post
		if op == nil || op.RequestBody == nil {
			t.Errorf("webhooks.%s: no post with a request body", typ)
			continue
		}
		for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			if p := op.Parameters.GetByInAndName("header", h); p == nil || !p.Required {
				t.Errorf("webhooks.%s: header %s not documented as required", typ, h)
			}
		}
	}
}
