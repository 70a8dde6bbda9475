package api

import (
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/callbacks"
	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/sse"
)

// TestSpecBoundsAreTheCodes: a size bound the spec states (R43) is the
// constant the code enforces, so that changing one without the other fails
// here rather than in a client.
func TestSpecBoundsAreTheCodes(t *testing.T) {
	reg := huma.NewMapRegistry("#/components/schemas/", huma.DefaultSchemaNamer)
	prop := func(typ reflect.Type, path ...string) *huma.Schema {
		t.Helper()
		s := reg.Schema(typ, true, "")
		for _, name := range path {
			if s.Ref != "" {
				s = reg.SchemaFromRef(s.Ref)
			}
			if name == "[]" {
				s = s.Items
			} else {
				s = s.Properties[name]
			}
			if s == nil {
				t.Fatalf("%s has no %s", typ, strings.Join(path, "."))
			}
		}
		if s.Ref != "" {
			s = reg.SchemaFromRef(s.Ref)
		}
		return s
	}
	num := func(f *float64) int {
		if f == nil {
			return -1
		}
		return int(*f)
	}
	length := func(p *int) int {
		if p == nil {
			return -1
		}
		return *p
	}
	tag := func(typ reflect.Type, field, key string) int {
		f, _ := typ.FieldByName(field)
		n, err := strconv.Atoi(f.Tag.Get(key))
		if err != nil {
			t.Fatalf("%s.%s has no %s tag", typ, field, key)
		}
		return n
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"ImportRequest.rows maxItems", length(prop(reflect.TypeFor[ImportRequest](), "rows").MaxItems), imports.MaxRows},
		{"Import.rejected maxItems", length(prop(reflect.TypeFor[Import](), "rejected").MaxItems), maxRejectedPage},
		{"Import.rejected_count maximum", num(prop(reflect.TypeFor[Import](), "rejected_count").Maximum), imports.MaxRows},
		{"Import.total_rows maximum", num(prop(reflect.TypeFor[Import](), "total_rows").Maximum), imports.MaxRows},
		{"getImport page_size maximum", tag(reflect.TypeFor[GetImportInput](), "PageSize", "maximum"), maxRejectedPage},
		{"getImport page_size default", tag(reflect.TypeFor[GetImportInput](), "PageSize", "default"), defaultRejectedPage},
		{"RejectedRow.row maximum", num(prop(reflect.TypeFor[RejectedRow](), "row").Maximum), imports.MaxRows},
		{"RejectedRow.sku maxLength", length(prop(reflect.TypeFor[RejectedRow](), "sku").MaxLength), length(prop(reflect.TypeFor[ImportRow](), "sku").MaxLength)},
		{"ImportEventData.rejected maxItems", length(prop(reflect.TypeFor[ImportEventData](), "rejected").MaxItems), callbacks.MaxRejectedInEvent},
		{"Problem.errors maxItems", length(prop(reflect.TypeFor[problems.Problem](), "errors").MaxItems), problems.MaxErrors},
		{"Job.message maxLength", length(prop(reflect.TypeFor[Job](), "message").MaxLength), jobs.MaxMessageLen},
		{"Job.estimated_seconds_remaining maximum (the longest job at the slowest time scale, 100)", num(prop(reflect.TypeFor[Job](), "estimated_seconds_remaining").Maximum), MaxSimulatedSeconds * 100},
		{"Last-Event-ID maxLength", tag(reflect.TypeFor[JobEventsInput](), "LastEventID", "maxLength"), sse.MaxLastEventIDLen},
		{"last_event_id maxLength", tag(reflect.TypeFor[JobEventsInput](), "LastEventIDQuery", "maxLength"), sse.MaxLastEventIDLen},
	} {
		if c.got != c.want {
			t.Errorf("%s is %d in the spec, %d in the code", c.what, c.got, c.want)
		}
	}
}

// TestPageTokens: a token names a place in one import's rejections and
// nothing else.
func TestPageTokens(t *testing.T) {
	tok := pageToken("imp_abc", 101)
	if row, ok := pageStart("imp_abc", tok); !ok || row != 101 {
		t.Errorf("pageStart(pageToken(imp_abc, 101)) = %d, %v", row, ok)
	}
	for _, bad := range []string{pageToken("imp_other", 101), pageToken("imp_abc", 0), pageToken("imp_abc", imports.MaxRows+1), "!!", "aW1wX2FiYw"} {
		if row, ok := pageStart("imp_abc", bad); ok {
			t.Errorf("pageStart(imp_abc, %q) = %d, want refused", bad, row)
		}
	}
}

// TestCountRows: the pre-check counts what encoding/json would decode
// into rows, and nothing it cannot read.
func TestCountRows(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`{"rows":[]}`, 0},
		{`{"rows":[{}]}`, 1},
		{` { "a" : [1,{"b":"]"}] , "ROWS" : [ {"x":"\"]"} , [1,[2]], "s", 1.5e3, true, null ] } `, 6},
		{`{"rows":[{},{}],"rows":[{}]}`, 2},
		{`{"r\u006fws":[1,2,3]}`, 3},
		{`{"rowſ":[1,2]}`, 2}, // ſ folds to s, as encoding/json matches it
		{`{"callback_url":"https://x","rows":[{"sku":"A","name":"{[\"","quantity":1,"price_cents":2}]}`, 1},
		{`[1,2]`, 0},
		{`{"rows":[1,2`, 0},
		{`{"rows":{"a":1}}`, 0},
		{``, 0},
		{`{"rows":[1 2]}`, 0},
		{`{"rows":"` + strings.Repeat("{},", 2000) + `"}`, 0},
		{`{"rows":[` + strings.Repeat("{},", 2000) + `{}]}`, 2001},
		{`{"rows":[` + strings.Repeat("{},", 2000) + `{}]} trailing`, 0}, // not JSON: Huma answers 400
	} {
		if got := countRows([]byte(c.in)); got != c.want {
			t.Errorf("countRows(%.80s) = %d, want %d", c.in, got, c.want)
		}
	}
}
