package api

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/keygate/keygate/leak"
)

// TestOpenAPILeakSchemas checks the leak report schemas against the Go
// types: the report's matches are decoded leniently (unknown members are
// ignored), so they are not in TestOpenAPISchemasMatchTypes, which wants
// request schemas to refuse unknown fields.
func TestOpenAPILeakSchemas(t *testing.T) {
	doc := parseDoc(t)
	for name, v := range map[string]any{"LeakMatch": leak.Match{}, "LeakFeedback": leak.Feedback{}} {
		var s oaSchema
		if err := json.Unmarshal(doc.Components["schemas"][name], &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fields := jsonFields(reflect.TypeOf(v))
		got, want := slices.Sorted(maps.Keys(s.Properties)), slices.Sorted(maps.Keys(fields))
		if !slices.Equal(got, want) {
			t.Errorf("%s: got properties %v, want %v", name, got, want)
		}
		for p, f := range fields {
			if err := checkPropertyType(s.Properties[p], f.typ); err != nil {
				t.Errorf("%s.%s: %v", name, p, err)
			}
		}
	}
}
