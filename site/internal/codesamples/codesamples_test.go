package codesamples

import (
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testOps() map[string]Op {
	return map[string]Op{
		"create-report": {
			Method: "POST", Path: "/v1/reports",
			Auth:           &Auth{Name: "Authorization", Prefix: "Bearer "},
			Headers:        []Param{{Name: "Idempotency-Key", Value: "9b2c\"quoted\"$HOME"}},
			ContentType:    "application/json",
			Body:           "{\n  \"kind\": \"sales\",\n  \"it's\": [1, 2.5, true, false, null, {}],\n  \"nested\": {\"a\": \"`tick`\"}\n}",
			FollowLocation: true, RetryAfter: true,
		},
		"get-job": {
			Method: "get", Path: "/v1/jobs/{id}",
			PathParams: []Param{{Name: "id", Value: "job 42/x"}},
			Query:      []Param{{Name: "wait", Value: "5s"}},
			Auth:       &Auth{In: "query", Name: "api_key"},
		},
		"no-auth-text": {
			Method: "PUT", Path: "/pets/{petId}/note",
			PathParams:  []Param{{Name: "petId", Value: "7"}},
			ContentType: "text/plain", Body: "hello\n'world' \"q\"",
		},
		"cookie": {Method: "PURGE", Path: "/cache", Auth: &Auth{In: "cookie", Name: "session"}},
	}
}

func TestForOrderAndLangs(t *testing.T) {
	got := For(testOps()["create-report"], "https://api.example.com/")
	want := []string{"curl", "javascript", "python", "go"}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d", len(got), len(want))
	}
	for i, s := range got {
		if s.Lang != want[i] || s.Label == "" || s.Code == "" {
			t.Errorf("sample %d = %+v", i, s)
		}
	}
	if got[0].Lexer() != "bash" || got[3].Lexer() != "go" {
		t.Errorf("lexers: %q %q", got[0].Lexer(), got[3].Lexer())
	}
}

func TestSamplesMentionEssentials(t *testing.T) {
	for name, op := range testOps() {
		for _, s := range For(op, "https://api.example.com") {
			if !strings.Contains(s.Code, "api.example.com") {
				t.Errorf("%s/%s: no server URL:\n%s", name, s.Lang, s.Code)
			}
			if op.Auth != nil && !strings.Contains(s.Code, KeyEnv) {
				t.Errorf("%s/%s: no %s placeholder:\n%s", name, s.Lang, KeyEnv, s.Code)
			}
			if op.FollowLocation && !strings.Contains(s.Code, "Location") {
				t.Errorf("%s/%s: no Location hint:\n%s", name, s.Lang, s.Code)
			}
		}
	}
	curl := For(testOps()["create-report"], "https://api.example.com")[0].Code
	if !strings.Contains(curl, `-H "Authorization: Bearer $ACCEPTED_KEY"`) {
		t.Errorf("curl auth header:\n%s", curl)
	}
}

func TestGoSamplesParseAndAreFormatted(t *testing.T) {
	for name, op := range testOps() {
		code := For(op, "https://api.example.com")[3].Code
		if _, err := parser.ParseFile(token.NewFileSet(), name+".go", code, parser.AllErrors); err != nil {
			t.Errorf("%s: %v\n%s", name, err, code)
			continue
		}
		formatted, err := format.Source([]byte(code))
		if err != nil || string(formatted) != code {
			t.Errorf("%s: not gofmt-ed:\n%s", name, code)
		}
	}
}

func TestPythonSamplesCompile(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	dir := t.TempDir()
	for name, op := range testOps() {
		file := filepath.Join(dir, name+".py")
		if err := os.WriteFile(file, []byte(For(op, "https://api.example.com")[2].Code), 0o644); err != nil {
			t.Fatal(err)
		}
		// Compile to a file in dir so no __pycache__ lands in the source tree.
		script := "import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[1]+'c', doraise=True)"
		if out, err := exec.Command(py, "-c", script, file).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s\n%s", name, err, out, For(op, "https://api.example.com")[2].Code)
		}
	}
}

func TestJavaScriptSamplesParse(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := t.TempDir()
	for name, op := range testOps() {
		file := filepath.Join(dir, name+".mjs")
		if err := os.WriteFile(file, []byte(For(op, "https://api.example.com")[1].Code), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(node, "--check", file).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
	}
}

func TestCurlSamplesParse(t *testing.T) {
	sh, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	for name, op := range testOps() {
		code := For(op, "https://api.example.com")[0].Code
		if out, err := exec.Command(sh, "-n", "-c", code).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s\n%s", name, err, out, code)
		}
	}
}

func TestURLEscapesPathParams(t *testing.T) {
	op := testOps()["get-job"]
	if got, want := op.URL("https://x.test/"), "https://x.test/v1/jobs/job%2042%2Fx?wait=5s"; got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
}
