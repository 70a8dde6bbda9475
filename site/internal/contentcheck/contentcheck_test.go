package contentcheck

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/accepted-dev/accepted/site/internal/build"
)

// root is the module root, where content/, generated/ and examples/ live.
var root = filepath.Join("..", "..", "..")

// rulesets is the repository's rulesets/, which the guides link to as
// downloads; no test changes it, so it is read in place.
var rulesets = os.DirFS(filepath.Join(root, "rulesets"))

// newRealInputs copies the repository's content/, generated/ and examples/
// into memory, so a test can break a copy without touching the tree.
func newRealInputs(t *testing.T) (content, generated, examples fstest.MapFS) {
	t.Helper()
	return mustCopy(t, "content"), mustCopy(t, "generated"), mustCopy(t, "examples")
}

func mustCopy(t *testing.T, dir string) fstest.MapFS {
	t.Helper()
	src := os.DirFS(filepath.Join(root, dir))
	m := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if dir == "generated" && strings.HasPrefix(name, "site/") {
			return nil // a built site, not an input
		}
		data, err := fs.ReadFile(src, name)
		if err != nil {
			return err
		}
		m[name] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatalf("copying %s: %v", dir, err)
	}
	return m
}

// mustBuildAndCheck builds a site from the inputs (the build fails on a
// missing include or a broken link) and runs every content check.
func mustBuildAndCheck(t *testing.T, content, generated, examples fs.FS) []string {
	t.Helper()
	s, err := build.Build(context.Background(), build.Config{Content: content, Generated: generated, Examples: examples, Rulesets: rulesets})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	problems, err := Run(s, Inputs{Content: content, Generated: generated})
	if err != nil {
		t.Fatalf("checks: %v", err)
	}
	return problems
}

// TestRealContent is the one that guards the repository: the real guides
// cover the real spec and error catalog.
func TestRealContent(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, "content", "index.md")); err != nil {
		t.Skip("no content/ at the module root")
	}
	c, g, e := newRealInputs(t)
	for _, p := range mustBuildAndCheck(t, c, g, e) {
		t.Error(p)
	}
}

// TestChecksCatchBrokenCopies breaks a copy of the real inputs in one way
// each and expects the checks (or the build) to say so.
func TestChecksCatchBrokenCopies(t *testing.T) {
	if _, err := os.Stat(filepath.Join(root, "content", "index.md")); err != nil {
		t.Skip("no content/ at the module root")
	}
	editJSON := func(t *testing.T, m fstest.MapFS, name string, edit func(doc map[string]any)) {
		t.Helper()
		var doc map[string]any
		if err := json.Unmarshal(m[name].Data, &doc); err != nil {
			t.Fatal(err)
		}
		edit(doc)
		data, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		m[name] = &fstest.MapFile{Data: data}
	}
	obj := func(v any, keys ...string) map[string]any {
		m := v.(map[string]any)
		for _, k := range keys {
			m = m[k].(map[string]any)
		}
		return m
	}
	// A deferred error with a scenario that neither the guides nor the
	// spec's request examples know about.
	addDiskOnFire := func(t *testing.T, c, g, e fstest.MapFS) {
		editJSON(t, g, "errors.json", func(doc map[string]any) {
			doc["problems"] = append(doc["problems"].([]any), map[string]any{
				"code": "disk_on_fire", "type": "http://localhost:8080/errors#disk_on_fire", "status": 500,
				"title": "Disk on fire", "when": "deferred", "retryable": false, "description": "Hot.", "action": "Wait.",
				"scenario": map[string]any{"outcome": "fail", "fail_code": "disk_on_fire"},
			})
		})
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, c, g, e fstest.MapFS)
		want   string
	}{
		{
			name: "an operation no guide links to",
			mutate: func(t *testing.T, c, g, e fstest.MapFS) {
				editJSON(t, g, "openapi.json", func(doc map[string]any) {
					obj(doc, "paths")["/v1/unlinked"] = map[string]any{"get": map[string]any{
						"operationId": "getUnlinked", "summary": "Nobody links here", "tags": []any{"Jobs"},
						"responses": map[string]any{"200": map[string]any{"description": "OK"}},
					}}
				})
			},
			want: "operation getUnlinked (GET /v1/unlinked) is not linked from any guide",
		},
		{
			name:   "a deferred error whose scenario no guide shows",
			mutate: addDiskOnFire,
			want:   `error disk_on_fire: no guide shows its scenario {"fail_code":"disk_on_fire","outcome":"fail"}`,
		},
		{
			name:   "a deferred error no request example reproduces",
			mutate: addDiskOnFire,
			want:   "error disk_on_fire has a scenario but no try-it panel that reproduces it on /errors/",
		},
		{
			name: "an immediate error no guide links to",
			mutate: func(t *testing.T, c, g, e fstest.MapFS) {
				editJSON(t, g, "errors.json", func(doc map[string]any) {
					doc["problems"] = append(doc["problems"].([]any), map[string]any{
						"code": "teapot", "type": "http://localhost:8080/errors#teapot", "status": 418,
						"title": "I am a teapot", "when": "immediate", "retryable": false, "description": "Short and stout.", "action": "Pour.",
					})
				})
			},
			want: "error teapot (immediate) is not linked from any guide",
		},
		{
			name: "a known scenario removed from the guides",
			mutate: func(t *testing.T, c, g, e fstest.MapFS) {
				for name, f := range c {
					s := strings.ReplaceAll(string(f.Data), `"outcome":"crash"`, `"outcome":"succeed"`)
					c[name] = &fstest.MapFile{Data: []byte(s)}
				}
			},
			want: `error internal_error: no guide shows its scenario {"outcome":"crash"}`,
		},
		{
			name: "a state the flowchart does not draw",
			mutate: func(t *testing.T, c, g, e fstest.MapFS) {
				editJSON(t, g, "openapi.json", func(doc map[string]any) {
					st := obj(doc, "components", "schemas", "Job", "properties", "status")
					st["enum"] = append(st["enum"].([]any), "paused")
				})
			},
			want: `the lifecycle flowchart does not show the state "paused"`,
		},
		{
			name: "a state renamed in the flowchart",
			mutate: func(t *testing.T, c, g, e fstest.MapFS) {
				f := c["guides/lifecycle.md"]
				s := strings.Replace(string(f.Data), "|  canceled  |", "|  stopped   |", 1)
				c["guides/lifecycle.md"] = &fstest.MapFile{Data: []byte(s)}
			},
			want: `the lifecycle flowchart does not show the state "canceled"`,
		},
		{
			name: "a page without a description",
			mutate: func(t *testing.T, c, g, e fstest.MapFS) {
				c["faq/bare.md"] = &fstest.MapFile{Data: []byte("---\ntitle: Bare\n---\nNo description.\n")}
			},
			want: "faq/bare.md: no description in the front matter",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, g, e := newRealInputs(t)
			tt.mutate(t, c, g, e)
			problems := mustBuildAndCheck(t, c, g, e)
			for _, p := range problems {
				if strings.Contains(p, tt.want) {
					return
				}
			}
			t.Errorf("want a problem containing %q, got %q", tt.want, problems)
		})
	}

	t.Run("an include of a missing region fails the build", func(t *testing.T) {
		c, g, e := newRealInputs(t)
		c["guides/broken.md"] = &fstest.MapFile{Data: []byte("---\ntitle: Broken\ndescription: An include that does not resolve.\n---\n\n```go include=examples/go/poll/main.go#no-such-region\n```\n")}
		_, err := build.Build(context.Background(), build.Config{Content: c, Generated: g, Examples: e, Rulesets: rulesets})
		if err == nil || !strings.Contains(err.Error(), "guides/broken.md") {
			t.Errorf("build error = %v, want one naming guides/broken.md", err)
		}
	})
}

func TestDiagramText(t *testing.T) {
	page := []byte(`<p>x</p><svg><title>Other</title><text x='8' y='4'>n</text><text x='16' y='4'>o</text></svg>` +
		`<svg role="img"><title>Job lifecycle</title><desc>d</desc>` +
		`<text x='16' y='4'>u</text><text x='8' y='4'>q</text><text x='40' y='4'>a</text><text x='48' y='4'>b</text>` +
		`<text x='8' y='20'>z</text></svg>`)
	lines, found, err := DiagramText(page, "Job lifecycle")
	if err != nil || !found {
		t.Fatalf("found=%v err=%v", found, err)
	}
	if got, want := strings.Join(lines, "|"), "qu ab|z"; got != want {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if _, found, _ := DiagramText(page, "Missing"); found {
		t.Error("found a diagram that is not there")
	}
}

func TestSimulateObjects(t *testing.T) {
	src := []byte("a `-d '{\"simulate\":{\"outcome\":\"crash\"}}'`\n```sh\n-d '{\"from\":\"x\",\"simulate\": {\"outcome\":\"fail\",\"fail_code\":\"upstream_unavailable\"}}'\n```\n")
	objs, err := SimulateObjects(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0]["outcome"] != "crash" || objs[1]["fail_code"] != "upstream_unavailable" {
		t.Errorf("objects = %v", objs)
	}
	if _, err := SimulateObjects([]byte(`"simulate": 3`)); err == nil {
		t.Error("a non-object simulate value was accepted")
	}
}
