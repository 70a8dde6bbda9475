package apiref

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/accepted-dev/accepted/site/internal/codesamples"
)

var specs = []string{"testdata/async.json", "testdata/pets.yaml"}

func mustLoad(t *testing.T, file string) *Doc {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Load(data)
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	return doc
}

func findOp(t *testing.T, doc *Doc, id string) *Operation {
	t.Helper()
	for i := range doc.Operations {
		if doc.Operations[i].ID == id {
			return &doc.Operations[i]
		}
	}
	t.Fatalf("no operation %q", id)
	return nil
}

// allOps lists operations, webhook requests and callback requests.
func allOps(doc *Doc) []*Operation {
	var out []*Operation
	var add func(op *Operation)
	add = func(op *Operation) {
		out = append(out, op)
		for i := range op.Callbacks {
			for j := range op.Callbacks[i].Operations {
				add(&op.Callbacks[i].Operations[j])
			}
		}
	}
	for i := range doc.Operations {
		add(&doc.Operations[i])
	}
	for i := range doc.Webhooks {
		add(&doc.Webhooks[i].Operation)
	}
	return out
}

// walkSchemas calls fn on every schema node reachable from the document.
func walkSchemas(doc *Doc, fn func(where string, s *Schema)) {
	var walk func(where string, s *Schema)
	walk = func(where string, s *Schema) {
		if s == nil {
			return
		}
		fn(where, s)
		for _, c := range s.Properties {
			walk(where+"."+c.Name, c)
		}
		walk(where+"[]", s.Items)
		walk(where+"{}", s.AdditionalProperties)
		walk(where+"!", s.Not)
		for _, alts := range [][]*Schema{s.OneOf, s.AnyOf, s.AllOf} {
			for _, c := range alts {
				walk(where+"|", c)
			}
		}
	}
	for _, op := range allOps(doc) {
		for _, p := range op.Params {
			walk(op.Anchor+" param "+p.Name, p.Schema)
		}
		if op.Body != nil {
			for _, c := range op.Body.Content {
				walk(op.Anchor+" body", c.Schema)
			}
		}
		for _, r := range op.Responses {
			for _, h := range r.Headers {
				walk(op.Anchor+" header "+h.Name, h.Schema)
			}
			for _, c := range r.Content {
				walk(op.Anchor+" "+r.Status, c.Schema)
			}
		}
	}
	for _, m := range doc.Models {
		walk("model "+m.Name, m.Schema)
	}
}

func TestLoadBothSpecs(t *testing.T) {
	for _, f := range specs {
		doc := mustLoad(t, f)
		if doc.Title == "" || doc.Version == "" || len(doc.Operations) == 0 || len(doc.Models) == 0 {
			t.Errorf("%s: thin document: %q %q %d ops %d models", f, doc.Title, doc.Version, len(doc.Operations), len(doc.Models))
		}
		n := 0
		for _, tag := range doc.Tags {
			n += len(tag.Operations)
			for _, op := range tag.Operations {
				if op.Tag != tag.Name {
					t.Errorf("%s: %s listed under %q but tagged %q", f, op.Anchor, tag.Name, op.Tag)
				}
			}
		}
		if n != len(doc.Operations) {
			t.Errorf("%s: tags hold %d operations, document has %d", f, n, len(doc.Operations))
		}
	}
}

func TestEveryRefResolves(t *testing.T) {
	for _, f := range specs {
		doc := mustLoad(t, f)
		models := map[string]string{}
		for _, m := range doc.Models {
			models[m.Name] = m.Anchor
		}
		refs := 0
		walkSchemas(doc, func(where string, s *Schema) {
			if s.Ref == "" {
				return
			}
			refs++
			if a, ok := models[s.Ref]; !ok || a != s.RefAnchor || a == "" {
				t.Errorf("%s: %s: $ref %q has anchor %q, model anchor %q", f, where, s.Ref, s.RefAnchor, a)
			}
			if !s.Cycle && !s.Truncated && len(s.Types) == 0 && !s.HasChildren() && len(s.Enum) == 0 {
				t.Errorf("%s: %s: $ref %q was not expanded", f, where, s.Ref)
			}
		})
		if refs == 0 {
			t.Errorf("%s: no $ref seen", f)
		}
	}
}

func TestBrokenRefFails(t *testing.T) {
	spec := `{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok","content":{"application/json":{"schema":{"$ref":"#/components/schemas/Nope"}}}}}}}}}`
	if _, err := Load([]byte(spec)); err == nil || !strings.Contains(err.Error(), "#/components/schemas/Nope") {
		t.Fatalf("Load = %v, want an unresolved $ref error", err)
	}
}

func TestRejectsNonOpenAPI3(t *testing.T) {
	for _, in := range []string{`{"swagger":"2.0"}`, ``, `[1]`, `openapi: [`} {
		if _, err := Load([]byte(in)); err == nil {
			t.Errorf("Load(%q) succeeded", in)
		}
	}
}

func TestCyclesTerminate(t *testing.T) {
	doc := mustLoad(t, "testdata/async.json")
	var cat *Model
	for i := range doc.Models {
		if doc.Models[i].Name == "Category" {
			cat = &doc.Models[i]
		}
	}
	if cat == nil {
		t.Fatal("no Category model")
	}
	var parent, children *Schema
	for _, p := range cat.Schema.Properties {
		switch p.Name {
		case "parent":
			parent = p
		case "children":
			children = p
		}
	}
	if parent == nil || !parent.Cycle || parent.Ref != "Category" || parent.RefAnchor != cat.Anchor {
		t.Errorf("parent = %+v, want a Cycle link to Category", parent)
	}
	if children == nil || children.Items == nil || !children.Items.Cycle {
		t.Errorf("children items = %+v, want a Cycle link", children)
	}
	// Inline, in the operation, the first level expands and the next is cut.
	op := findOp(t, doc, "list-categories")
	items := op.Responses[0].Content[0].Schema.Items
	if items.Cycle || len(items.Properties) != 3 {
		t.Errorf("first level should expand: %+v", items)
	}
	// Mutual recursion across models (Pet → Owner → Pet) terminates too.
	pets := mustLoad(t, "testdata/pets.yaml")
	cycles := 0
	walkSchemas(pets, func(_ string, s *Schema) {
		if s.Cycle {
			cycles++
		}
	})
	if cycles == 0 {
		t.Error("pets: no cycle found in Pet ⇄ Owner")
	}
}

func TestAnchorsUniqueAndURLSafe(t *testing.T) {
	safe := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	for _, f := range specs {
		doc := mustLoad(t, f)
		seen := map[string]string{}
		check := func(what, a string) {
			if !safe.MatchString(a) {
				t.Errorf("%s: %s anchor %q is not URL-safe", f, what, a)
			}
			if prev, dup := seen[a]; dup {
				t.Errorf("%s: anchor %q used by %s and %s", f, a, prev, what)
			}
			seen[a] = what
		}
		for _, op := range allOps(doc) {
			check("operation "+op.Method+" "+op.Path, op.Anchor)
			for _, r := range op.Responses {
				check("response "+op.Anchor+" "+r.Status, r.Anchor)
			}
		}
		for _, m := range doc.Models {
			check("model "+m.Name, m.Anchor)
		}
		for _, s := range doc.SecuritySchemes {
			check("scheme "+s.Name, s.Anchor)
		}
		slugs := map[string]bool{}
		for _, tag := range doc.Tags {
			if !safe.MatchString(tag.Slug) || slugs[tag.Slug] {
				t.Errorf("%s: tag slug %q", f, tag.Slug)
			}
			slugs[tag.Slug] = true
		}
	}
}

func TestAnchorsAreOperationIDBased(t *testing.T) {
	doc := mustLoad(t, "testdata/pets.yaml")
	if a := findOp(t, doc, "showPetById").Anchor; a != "show-pet-by-id" {
		t.Errorf("anchor = %q", a)
	}
	if op := doc.Operations[3]; op.ID != "" || op.Anchor != "put-pets-pet-id" {
		t.Errorf("fallback anchor = %q (id %q)", op.Anchor, op.ID)
	}
}

func TestAsyncFlavour(t *testing.T) {
	doc := mustLoad(t, "testdata/async.json")
	create := findOp(t, doc, "create-report")
	if create.FollowAnchor != "get-job" || !strings.Contains(create.FollowHint, "Location") || !strings.Contains(create.FollowHint, "Retry-After") {
		t.Errorf("FollowHint = %q → %q", create.FollowHint, create.FollowAnchor)
	}
	if create.Security[0] != "bearer" {
		t.Errorf("Security = %q", create.Security)
	}
	r := create.Responses[0]
	if r.Status != "202" || len(r.Headers) != 2 || r.Headers[1].Name != "Retry-After" || r.Headers[1].Examples[0].Value != "2" {
		t.Errorf("202 = %+v", r)
	}
	if ex := r.Content[0].Examples[0]; ex.Name != "queued" || ex.Summary != "A queued job" || ex.Generated {
		t.Errorf("202 example = %+v", ex)
	}
	body := create.Body.Content[0]
	if !body.Examples[0].Generated || strings.Contains(body.Examples[0].Value, "$schema") {
		t.Errorf("request example should be generated without readOnly $schema:\n%s", body.Examples[0].Value)
	}
	props := map[string]*Schema{}
	for _, p := range body.Schema.Properties {
		props[p.Name] = p
	}
	if k := props["kind"]; !k.Required || len(k.Enum) != 3 || k.Enum[0] != `"sales"` {
		t.Errorf("kind = %+v", k)
	}
	if e := props["emails"]; e.TypeLabel() != "array of string<email> | null" || !slices.Contains(e.Constraints(), "at most 5 items") {
		t.Errorf("emails: %q %q", e.TypeLabel(), e.Constraints())
	}
	if s := props["scenario"]; !s.HasConst || s.Const != `"slow"` {
		t.Errorf("scenario const = %+v", s)
	}
	if !body.Schema.NoAdditional {
		t.Error("additionalProperties: false lost")
	}

	get := findOp(t, doc, "get-job")
	statuses := []string{}
	for _, r := range get.Responses {
		statuses = append(statuses, r.Status)
	}
	if !slices.Equal(statuses, []string{"200", "303", "404", "410"}) {
		t.Errorf("statuses = %v", statuses)
	}
	if p := get.Params[0]; p.Name != "id" || p.In != "path" || !p.Required {
		t.Errorf("path-level param = %+v", p)
	}
	if c := get.Responses[3].Content[0]; c.Type != "application/problem+json" || c.Schema.Ref != "ErrorModel" || !strings.Contains(c.Examples[0].Value, "job-expired") {
		t.Errorf("410 = %+v", c)
	}
	job := get.Responses[0].Content[0].Schema
	for _, p := range job.Properties {
		switch p.Name {
		case "result_url":
			if !p.Nullable || p.Format != "uri" || len(p.AnyOf) != 0 {
				t.Errorf("anyOf [uri, null] should fold to a nullable uri: %+v", p)
			}
		case "status":
			if p.Ref != "JobStatus" || len(p.Enum) != 5 || !p.Required {
				t.Errorf("status = %+v", p)
			}
		case "error":
			if p.Ref != "ErrorModel" || !p.Nullable {
				t.Errorf("error = %+v", p)
			}
		}
	}
	if findOp(t, doc, "list-categories").Security != nil {
		t.Error("security: [] should make the operation public")
	}
	if !findOp(t, doc, "cancel-job").Deprecated {
		t.Error("deprecated lost")
	}

	imp := findOp(t, doc, "create-import")
	if len(imp.Callbacks) != 1 || imp.Callbacks[0].Expression != "{$request.body#/callback_url}" ||
		imp.Callbacks[0].Operations[0].Kind != KindCallback || imp.Callbacks[0].Operations[0].Body == nil {
		t.Errorf("callbacks = %+v", imp.Callbacks)
	}
	var names []string
	for _, w := range doc.Webhooks {
		names = append(names, w.Name)
		if w.Operation.Kind != KindWebhook || w.Operation.Body == nil || w.Operation.Body.Content[0].Schema.Ref != "ImportEvent" {
			t.Errorf("webhook %s = %+v", w.Name, w.Operation)
		}
	}
	if !slices.Equal(names, []string{"import.complete", "import.failed", "import.partial"}) {
		t.Errorf("webhooks = %v", names)
	}
	if doc.Servers[0] != "https://sandbox.accepted.dev/" {
		t.Errorf("server variables: %v", doc.Servers)
	}
	for _, m := range doc.Models {
		if m.Name == "Job" && (len(m.UsedBy) == 0 || m.UsedBy[0].Anchor != "create-report") {
			t.Errorf("Job.UsedBy = %v", m.UsedBy)
		}
	}
}

func TestPetsFlavour(t *testing.T) {
	doc := mustLoad(t, "testdata/pets.yaml")
	list := findOp(t, doc, "listPets")
	if got := list.Security; !slices.Equal(got, []string{"api_key", "oauth (read:pets)"}) {
		t.Errorf("Security = %q", got)
	}
	if list.Responses[0].Status != "200" {
		t.Errorf("YAML integer status key: %q", list.Responses[0].Status)
	}
	if ex := list.Responses[0].Content[0].Examples[0]; ex.Name != "two" || !strings.Contains(ex.Value, `"bark": "loud"`) {
		t.Errorf("examples map: %+v", ex)
	}
	if p := list.Params[0]; p.Schema.TypeLabel() != "integer<int32>" || !slices.Equal(p.Schema.Constraints(), []string{"≥ 1", "≤ 100"}) {
		t.Errorf("limit: %q %q", p.Schema.TypeLabel(), p.Schema.Constraints())
	}
	if r := list.Request; r.Auth == nil || r.Auth.Name != "X-API-Key" || len(r.Query) != 1 || r.Query[0].Value != "20" {
		t.Errorf("request = %+v", r)
	}
	show := findOp(t, doc, "showPetById")
	pet := show.Responses[0].Content[0].Schema
	if pet.Ref != "Pet" || len(pet.AllOf) != 2 || len(pet.OneOf) != 2 || pet.Discriminator != "kind" {
		t.Errorf("Pet = %+v", pet)
	}
	if got := doc.Operations[3].Body.Content[0].Examples[0].Value; got != `Loves <b>tennis</b> balls & "naps".` {
		t.Errorf("text example = %q", got)
	}
	if got := findOp(t, doc, "getInventory").Security; !slices.Equal(got, []string{"none"}) {
		t.Errorf("security [{}] = %q", got)
	}
	if doc.Servers[0] != "https://api.pets.example/v2" {
		t.Errorf("servers = %v", doc.Servers)
	}
	var newPet *Model
	for i := range doc.Models {
		if doc.Models[i].Name == "NewPet" {
			newPet = &doc.Models[i]
		}
	}
	for _, p := range newPet.Schema.Properties {
		if p.Name == "owner" && (p.Description != "Who looks after the pet." || p.Ref != "Owner") {
			t.Errorf("$ref sibling description: %+v", p)
		}
		if p.Name == "birthday" && p.TypeLabel() != "string<date> | null" {
			t.Errorf("birthday: %q", p.TypeLabel())
		}
	}
}

func TestSamplesPlausible(t *testing.T) {
	py, pyErr := exec.LookPath("python3")
	dir := t.TempDir()
	for _, f := range specs {
		doc := mustLoad(t, f)
		for _, op := range doc.Operations {
			if len(op.Samples) != 4 {
				t.Fatalf("%s: %d samples", op.Anchor, len(op.Samples))
			}
			for _, s := range op.Samples {
				if op.Request.Auth != nil && !strings.Contains(s.Code, "ACCEPTED_KEY") {
					t.Errorf("%s %s: no key placeholder", op.Anchor, s.Lang)
				}
				if op.Request.FollowLocation && !strings.Contains(s.Code, "Location") {
					t.Errorf("%s %s: no follow comment", op.Anchor, s.Lang)
				}
				switch s.Lang {
				case "go":
					if _, err := parser.ParseFile(token.NewFileSet(), op.Anchor+".go", s.Code, 0); err != nil {
						t.Errorf("%s: Go sample: %v\n%s", op.Anchor, err, s.Code)
					}
				case "python":
					if pyErr != nil {
						continue
					}
					file := filepath.Join(dir, op.Anchor+".py")
					if err := os.WriteFile(file, []byte(s.Code), 0o644); err != nil {
						t.Fatal(err)
					}
					script := "import py_compile,sys; py_compile.compile(sys.argv[1], cfile=sys.argv[1]+'c', doraise=True)"
					if out, err := exec.Command(py, "-c", script, file).CombinedOutput(); err != nil {
						t.Errorf("%s: Python sample: %v\n%s", op.Anchor, err, out)
					}
				}
			}
		}
	}
	if pyErr != nil {
		t.Log("python3 not installed: Python samples not compiled")
	}
	doc := mustLoad(t, "testdata/async.json")
	curl := findOp(t, doc, "create-report").Samples[0].Code
	for _, want := range []string{`"https://sandbox.accepted.dev/v1/reports"`, `Authorization: Bearer $ACCEPTED_KEY`, `"kind": "sales"`, `Idempotency-Key: $IDEMPOTENCY_KEY"`, "IDEMPOTENCY_KEY=" + codesamples.FreshShell, "# 202 Accepted"} {
		if !strings.Contains(curl, want) {
			t.Errorf("curl sample lacks %q:\n%s", want, curl)
		}
	}
	// The spec's example key is never sent: a second run would replay the first job.
	for _, s := range findOp(t, doc, "create-report").Samples {
		if strings.Contains(s.Code, "4f1c2a7e-report-1") {
			t.Errorf("%s sample sends the example Idempotency-Key:\n%s", s.Lang, s.Code)
		}
	}
	doc.SetServer("http://127.0.0.1:8080")
	if !strings.Contains(findOp(t, doc, "get-job").Samples[0].Code, "http://127.0.0.1:8080/v1/jobs/job_8f2k1") {
		t.Errorf("SetServer: %s", findOp(t, doc, "get-job").Samples[0].Code)
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"createReport": "create-report", "get-job": "get-job", "GET /v1/jobs/{id}": "get-v1-jobs-id",
		"import.complete": "import-complete", "Ünïcode 2 Go": "n-code-2-go", "HTTPServer": "httpserver",
	} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// A header or parameter whose text is in its schema (as Huma writes them)
// shows that text; its own description wins when it has one.
func TestHeaderDescriptionFromSchema(t *testing.T) {
	doc := mustLoad(t, "testdata/async.json")
	for _, c := range []struct{ op, status, want string }{
		{"create-import", "202", "URL of the import's job (Huma puts a header's text in its schema)."},
		{"create-report", "202", "URL of the job to poll."},
	} {
		var got *Header
		for _, r := range findOp(t, doc, c.op).Responses {
			for i := range r.Headers {
				if r.Status == c.status && r.Headers[i].Name == "Location" {
					got = &r.Headers[i]
				}
			}
		}
		if got == nil {
			t.Fatalf("%s %s: no Location header", c.op, c.status)
		}
		if got.Description != c.want {
			t.Errorf("%s %s Location: description %q, want %q", c.op, c.status, got.Description, c.want)
		}
	}
}

func TestFollowSamplesFor202(t *testing.T) {
	doc := mustLoad(t, "testdata/async.json")
	if f := findOp(t, doc, "create-report").Follow; len(f) != 4 || !strings.Contains(f[0].Code, "https://sandbox.accepted.dev/v1/reports") {
		t.Errorf("create-report follow samples: %+v", f)
	}
	if f := findOp(t, doc, "get-job").Follow; f != nil {
		t.Errorf("get-job has follow samples")
	}
	doc.SetServer("http://127.0.0.1:8080")
	if f := findOp(t, doc, "create-report").Follow; !strings.Contains(f[2].Code, `"http://127.0.0.1:8080/v1/reports"`) {
		t.Errorf("SetServer left the follow samples:\n%s", f[2].Code)
	}
}
