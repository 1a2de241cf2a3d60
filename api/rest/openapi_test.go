package rest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// openapi.json is a valid OpenAPI 3 document, as a real validator
// (openapi-spec-validator, the one Python tooling uses) reads it.
func TestOpenAPIDocValidates(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if exec.Command(py, "-c", "import openapi_spec_validator").Run() != nil {
		t.Skip("openapi-spec-validator not installed")
	}
	e := newTestServer(t)
	r := e.expect("GET", "/api/v1/openapi.json", nil, "", 200)
	doc := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(doc, r.body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `import json, sys
from openapi_spec_validator import validate
validate(json.load(open(sys.argv[1])))`, doc).CombinedOutput()
	if err != nil {
		t.Fatalf("openapi.json does not validate: %v\n%.3000s", err, out)
	}
}
