package problems

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// sent is a problem as Huma writes it: its JSON encoder, newline included.
func sent(t *testing.T, p *Problem) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := huma.DefaultJSONFormat.Marshal(&buf, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// worstProblem is the largest problem a request could cause, its strings
// made of fill: 4,000 errors whose every string is longer than a body
// holds, values that are huge objects, arrays and strings, and a detail,
// instance and job of megabytes.
func worstProblem(c *Catalog, fill string) *Problem {
	worst := strings.Repeat(fill, (1<<20)/len(fill))
	big := map[string]any{}
	for i := range 5000 {
		big[strings.Repeat("k", i)] = worst
	}
	values := []any{worst, big, make([]any, 87000), json.Number(strings.Repeat("9", 100000)), struct{ A, B string }{worst, worst}, &worst}
	errs := make([]*FieldError, 4000)
	location := "body." + worst
	for i := range errs {
		errs[i] = &FieldError{Location: location, Message: worst, Value: values[i%len(values)]}
	}
	p := c.New(ValidationFailed, ErrorsDetail(len(errs), MaxErrors)+" "+worst).WithInstance("/v1/reports/" + worst).WithJob(worst)
	p.ListErrors(errs)
	return p
}

// TestProblemWorstCaseFits16KiB: the worst problem, with strings of each
// kind of character JSON writes longest for its length (plain ASCII,
// control characters, invalid UTF-8, quotes, HTML, multi-byte and the line
// separators), is at most MaxBytes as sent and still says how many errors
// there were.
func TestProblemWorstCaseFits16KiB(t *testing.T) {
	c := New("https://docs.accepted.example/a/long/enough/path/to/the/docs")
	largest := 0
	for _, fill := range []string{"a", "\x01", "\xff", `"`, "<>&", "é", "€", "😀", "\u2028", "a\x01\xff\"<é€😀"} {
		out := sent(t, worstProblem(c, fill))
		largest = max(largest, len(out))
		if len(out) > MaxBytes {
			t.Errorf("the worst problem of %q is %d bytes sent, over %d", fill, len(out), MaxBytes)
		}
		var back Problem
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Errors) != MaxErrors || back.ErrorsOmitted != 4000-MaxErrors || !strings.HasPrefix(back.Detail, ErrorsDetail(4000, MaxErrors)) {
			t.Errorf("%q: %d errors listed and %d omitted, detail %.80q", fill, len(back.Errors), back.ErrorsOmitted, back.Detail)
		}
		for _, fe := range back.Errors {
			if s, ok := fe.Value.(string); ok && utf8.RuneCountInString(s) > maxValue {
				t.Errorf("%q: a value of %d characters", fill, utf8.RuneCountInString(s))
			}
		}
	}
	t.Logf("the largest worst case is %d bytes sent, of %d", largest, MaxBytes)

	// Only a docs base of kilobytes could leave that over: then fewer
	// errors are listed, the detail says how many, and the count stays
	// exact.
	long := New("https://docs.accepted.example/" + strings.Repeat("d", 8000))
	out := sent(t, worstProblem(long, "a"))
	var back Problem
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if len(out) > MaxBytes || len(back.Errors) >= MaxErrors || len(back.Errors)+back.ErrorsOmitted != 4000 ||
		!strings.HasPrefix(back.Detail, ErrorsDetail(4000, len(back.Errors))) {
		t.Errorf("long docs base: %d bytes, %d listed + %d omitted, detail %.80q", len(out), len(back.Errors), back.ErrorsOmitted, back.Detail)
	}
}

// TestProblemWithinBoundsIsUnchanged: an ordinary problem is written as it
// always was.
func TestProblemWithinBoundsIsUnchanged(t *testing.T) {
	p := New("http://localhost:8080").New(ValidationFailed, "body.to: must not be before from").WithInstance("/v1/reports")
	p.ListErrors([]*FieldError{{Location: "body.to", Message: "must not be before from", Value: "2026-01-01"}})
	want := `{"type":"http://localhost:8080/errors#validation_failed","title":"Request failed validation","status":422,` +
		`"detail":"body.to: must not be before from","instance":"/v1/reports","code":"validation_failed",` +
		`"errors":[{"location":"body.to","message":"must not be before from","value":"2026-01-01"}]}` + "\n"
	if got := string(sent(t, p)); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestListErrorsCountsTheRest(t *testing.T) {
	p := &Problem{}
	p.ListErrors(make([]*FieldError, 25))
	if len(p.Errors) != MaxErrors || p.ErrorsOmitted != 5 {
		t.Errorf("%d listed, %d omitted", len(p.Errors), p.ErrorsOmitted)
	}
	p.ListErrors(make([]*FieldError, 3))
	if len(p.Errors) != 3 || p.ErrorsOmitted != 0 {
		t.Errorf("%d listed, %d omitted", len(p.Errors), p.ErrorsOmitted)
	}
	if out, _ := json.Marshal(p); strings.Contains(string(out), "errors_omitted") {
		t.Errorf("errors_omitted is sent when nothing was left out: %s", out)
	}
	if got := ErrorsDetail(4000, 20); got != "4000 problems with the request; the first 20 are listed in errors." {
		t.Errorf("ErrorsDetail(4000, 20) = %q", got)
	}
	if got := ErrorsDetail(3, 3); got != "3 problems with the request; see errors." {
		t.Errorf("ErrorsDetail(3, 3) = %q", got)
	}
}

func TestSummarise(t *testing.T) {
	s := "héllo"
	for _, c := range []struct {
		in   any
		want any
	}{
		{nil, nil}, {true, true}, {1.5, 1.5}, {42, 42}, {"short", "short"},
		{map[string]any{"a": 1}, "object with 1 field"},
		{map[string]any{"a": 1, "b": 2}, "object with 2 fields"},
		{make([]any, 87000), "array of 87000 items"},
		{[]string{"x"}, "array of 1 item"},
		{map[string]int{}, "object with 0 fields"},
		{struct{ A, B int }{}, "object with 2 fields"},
		{&s, "héllo"},
		{uint8(7), uint8(7)},
		{json.Number("12"), "12"},
	} {
		if got := Summarise(c.in); got != c.want {
			t.Errorf("Summarise(%T %v) = %v, want %v", c.in, c.in, got, c.want)
		}
	}
	long := Summarise(strings.Repeat("é", 500)).(string)
	if !strings.HasSuffix(long, "…") || encodedLen(long) > maxValue || !utf8.ValidString(long) {
		t.Errorf("a long string summarised to %d bytes: %q", len(long), long)
	}
}

func TestCut(t *testing.T) {
	for _, c := range []struct {
		in    string
		limit int
		want  string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "…"},
		{"abcdef", 5, "ab…"},
		{"ééé", 5, "é…"},              // é is 2 bytes, … is 3
		{"\x01\x01\x01", 12, "\x01…"}, // a control character is 6 escaped
		{"a\xffb", 7, "a…"},           // invalid UTF-8 is written as \ufffd
		{`""""`, 7, `""…`},
	} {
		got := Cut(c.in, c.limit)
		if got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
		if n := len(mustJSONString(t, got)) - 2; n > c.limit {
			t.Errorf("Cut(%q, %d) encodes to %d bytes", c.in, c.limit, n)
		}
	}
}

func mustJSONString(t *testing.T, s string) []byte {
	t.Helper()
	out, err := json.Marshal(s) // escapes HTML: the larger of the two encodings
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCatalogFitsTheSchema: the Problem schema bounds what the catalog
// itself writes, so its titles and codes must fit.
func TestCatalogFitsTheSchema(t *testing.T) {
	for _, e := range New("http://localhost:8080").Entries() {
		if utf8.RuneCountInString(e.Title) > 100 || len(e.Code) > 64 {
			t.Errorf("%s: title of %d characters or code of %d, over the schema's 100 and 64", e.Code, utf8.RuneCountInString(e.Title), len(e.Code))
		}
	}
}
