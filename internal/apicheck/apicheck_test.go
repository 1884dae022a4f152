package apicheck

import "testing"

// TestDocumentIsValid loads api/openapi.json with kin-openapi, which
// validates it as an OpenAPI 3.1 document.
func TestDocumentIsValid(t *testing.T) {
	if err := Load(); err != nil {
		t.Fatal(err)
	}
}
