package api

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/humatest"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
)

// TestProblemsAreMadeInOnePlace: outside problems.go, nothing in the
// package builds a problem from the catalog; handlers return errors and
// problemFor decides. The spec's examples (examples.go) are the exception:
// they show problems, they answer no request.
func TestProblemsAreMadeInOnePlace(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"problems.go", "examples.go"}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || slices.Contains(allowed, name) {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "Catalog" && sel.Sel.Name == "New" {
				t.Errorf("%s: Catalog.New outside problems.go; return an error and let problemFor make the problem", fset.Position(sel.Pos()))
			}
			return true
		})
	}
}

// TestSimulateSchemaIsTheScenarioRules: the scenario's bounds are checked
// once, by the schema, so the schema must say what the sandbox accepts: the
// longest duration, the outcomes, and the fail codes (deferred catalog
// entries that a request can cause).
func TestSimulateSchemaIsTheScenarioRules(t *testing.T) {
	reg := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	s := reg.Schema(reflect.TypeFor[Simulate](), false, "")
	if s.Ref != "" {
		s = reg.SchemaFromRef(s.Ref)
	}
	dur := s.Properties["duration_seconds"]
	if dur.Maximum == nil || *dur.Maximum != MaxSimulatedSeconds || dur.Minimum == nil || *dur.Minimum != 0 {
		t.Errorf("duration_seconds bounds %v..%v, want 0..%d", dur.Minimum, dur.Maximum, MaxSimulatedSeconds)
	}
	var outcomes []string
	for _, o := range simulate.Outcomes() {
		outcomes = append(outcomes, string(o))
	}
	if got := enumStrings(s.Properties["outcome"]); !slices.Equal(got, outcomes) {
		t.Errorf("outcome enum %v, want simulate.Outcomes() %v", got, outcomes)
	}
	c := problems.New("https://docs.example")
	var codes []string
	for _, code := range c.Deferred() {
		if e, _ := c.Entry(code); e.Scenario["outcome"] == "fail" {
			codes = append(codes, code)
		}
	}
	got := enumStrings(s.Properties["fail_code"])
	slices.Sort(got)
	slices.Sort(codes)
	if !slices.Equal(got, codes) {
		t.Errorf("fail_code enum %v, want the catalog's failable codes %v", got, codes)
	}
	// Everything the schema lets through is a valid scenario.
	in := &Simulate{DurationSeconds: ptr(float64(MaxSimulatedSeconds)), Outcome: "fail", FailCode: codes[0], FailAtPercent: 100}
	sc, errs := in.resolve(1, "body.simulate")
	if len(errs) > 0 {
		t.Fatalf("resolve: %v", errs)
	}
	if err := sc.Validate(MaxSimulatedSeconds * 1e9); err != nil {
		t.Errorf("the schema's extreme values make an invalid scenario: %v", err)
	}
}

func enumStrings(s *huma.Schema) []string {
	var out []string
	for _, v := range s.Enum {
		out = append(out, v.(string))
	}
	return out
}

// TestHumaErrorsUseTheirAPIsCatalog: Huma's error hooks are one per
// process, but each API's validation problems name its own catalog, even
// with another API registered after it.
func TestHumaErrorsUseTheirAPIsCatalog(t *testing.T) {
	type served struct {
		api  humatest.TestAPI
		key  string
		base string
	}
	var all []served
	for _, base := range []string{"https://one.example", "https://two.example"} {
		_, api := humatest.New(t, Config("test", "1"))
		reg, key := newKeys(t, newTestDB(t))
		Register(api, Deps{
			Engine: stubEngine{}, Keys: reg, Catalog: problems.New(base),
			Clock: clock.Real(), Logger: slog.New(slog.DiscardHandler), Scale: 1, Retention: 24 * time.Hour,
		})
		all = append(all, served{api, key, base})
	}
	for _, s := range all {
		resp := s.api.Do("POST", "/v1/reports", "Authorization: Bearer "+s.key, strings.NewReader(`{"from":1,"to":"2026-01-02"}`))
		var p problems.Problem
		if err := json.Unmarshal(resp.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s: %d %s", s.base, resp.Code, resp.Body)
		}
		if resp.Code != 422 || !strings.HasPrefix(p.Type, s.base) {
			t.Errorf("the API with catalog %s answered %d with type %q, want 422 and its own catalog", s.base, resp.Code, p.Type)
		}
	}
}
