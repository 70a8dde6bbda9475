package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// TestBoundedAnswers is R43 against the attacks that found it: no answer is
// larger than a fixed bound, and a body cannot make the sandbox do work or
// hold memory out of proportion to what an import may be. Each attack has
// a budget; the numbers before the bounds are in the comments. The two that
// measure memory run alone; the others run in parallel after them.
func TestBoundedAnswers(t *testing.T) {
	ts := newSandbox(t, nil)

	// 4,000 unknown fields (40 KB) answered 160 MB (each error carried the
	// whole request as its value) after 11 s and 1.7 GB of allocation.
	t.Run("unknown_fields_answer_at_most_16KiB", func(t *testing.T) {
		key := ts.key(t)
		var b strings.Builder
		b.WriteString(`{"title":"x","from":"2026-01-01","to":"2026-01-31"`)
		for i := range 4000 {
			fmt.Fprintf(&b, `,"f%04d":0`, i)
		}
		b.WriteString("}")
		r, alloc := ts.measure(t, http.MethodPost, "/v1/reports", key, b.String())
		t.Logf("%d B body: %d %d B answer, %.1f MB allocated", b.Len(), r.StatusCode, len(r.body), float64(alloc)/1e6)
		if len(r.body) > problems.MaxBytes {
			t.Errorf("answered %d bytes, over the %d bytes of R43", len(r.body), problems.MaxBytes)
		}
		p := mustListedProblem(t, r, 4000)
		for _, fe := range p.Errors {
			if fe.Message != "unexpected property" || fe.Value != "object with 4003 fields" {
				t.Errorf("error %+v: want an unexpected property summarised as the object's size", fe)
			}
		}
	})

	// 87,000 empty rows (255 KiB, under the body limit) answered 36 MB and
	// allocated 111 to 259 MB per request: Huma decoded and validated every
	// row before it looked at maxItems.
	t.Run("oversized_import_refused_before_parsing", func(t *testing.T) {
		key := ts.key(t)
		body := `{"rows":[` + strings.Repeat("{},", 86999) + `{}]}`
		r, alloc := ts.measure(t, http.MethodPost, "/v1/imports", key, body)
		t.Logf("%d B body: %d, %d B answer, %.1f MB allocated", len(body), r.StatusCode, len(r.body), float64(alloc)/1e6)
		if r.StatusCode != http.StatusUnprocessableEntity || len(r.body) > 1024 {
			t.Fatalf("got %d with %d bytes, want a 422 under 1 KiB: %.300s", r.StatusCode, len(r.body), r.body)
		}
		var p problems.Problem
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Code != problems.ValidationFailed || len(p.Errors) != 1 || p.Errors[0].Location != "body.rows" || p.Errors[0].Value != "array of 87000 items" ||
			!strings.HasPrefix(p.Detail, "body.rows: ") || !strings.Contains(p.Detail, "87000") {
			t.Errorf("problem %s: want validation_failed naming body.rows and its 87000 items", r.body)
		}
		// The body is read once more than Huma reads it (256 KiB) and
		// scanned without an allocation per row; the rest is the request's
		// own cost and what runs beside it.
		if alloc > 8<<20 {
			t.Errorf("the request allocated %.1f MB, want under 8 MiB", float64(alloc)/1e6)
		}
		// Nothing was created, and a body at the limit still parses.
		if ok := ts.do(t, http.MethodPost, "/v1/imports", key, importBody("", rows("A-1"))); ok.StatusCode != http.StatusAccepted {
			t.Errorf("a one-row import after the refusal: %d %s", ok.StatusCode, ok.body)
		}
	})

	t.Run("import_row_limit_is_exact", func(t *testing.T) {
		t.Parallel()
		key := ts.key(t)
		skus := make([]string, 1001)
		for i := range skus {
			skus[i] = fmt.Sprintf("EDGE-%04d", i)
		}
		r := ts.do(t, http.MethodPost, "/v1/imports", key, importBody("", rows(skus...)))
		if r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "array of 1001 items") {
			t.Errorf("1,001 rows: %d %.300s", r.StatusCode, r.body)
		}
		// ROWS reaches the same field (encoding/json matches names without
		// case), so it is counted too.
		upper := `{"ROWS":[` + strings.Repeat("{},", 1500) + `{}]}`
		if r := ts.do(t, http.MethodPost, "/v1/imports", key, upper); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "array of 1501 items") {
			t.Errorf("1,501 rows under ROWS: %d %.300s", r.StatusCode, r.body)
		}
		if r := ts.do(t, http.MethodPost, "/v1/imports", key, importBody("", rows(skus[:1000]...))); r.StatusCode != http.StatusAccepted {
			t.Errorf("1,000 rows: %d %.300s", r.StatusCode, r.body)
		}
	})

	// Per-row schema errors are listed up to 20 and counted.
	t.Run("many_faults_list_20_and_count_the_rest", func(t *testing.T) {
		t.Parallel()
		key := ts.key(t)
		bad := rows(make([]string, 1000)...)
		for i, r := range bad {
			r["sku"], r["price_cents"] = fmt.Sprintf("NEG-%04d", i), -1
		}
		r := ts.do(t, http.MethodPost, "/v1/imports", key, importBody("", bad))
		p := mustListedProblem(t, r, 1000)
		for i, fe := range p.Errors {
			if fe.Location != fmt.Sprintf("body.rows[%d].price_cents", i) || fe.Value != -1.0 {
				t.Errorf("error %d: %+v, want row %d's price_cents and its value", i, fe, i)
			}
		}
	})

	t.Run("rejections_are_paged", func(t *testing.T) {
		t.Parallel()
		key := ts.key(t)
		skus := make([]string, 1000)
		for i := range skus {
			skus[i] = fmt.Sprintf("OLD-%s-%04d", strings.Repeat("X", 50), i)
		}
		start := ts.mustStart(t, key, "/v1/imports", importBody("", rows(skus...)))
		ts.mustFollow(t, key, start.Header.Get("Location"))
		path := "/v1/imports/" + start.json(t)["import_id"].(string)

		type page struct {
			Outcome       string `json:"outcome"`
			TotalRows     int    `json:"total_rows"`
			RejectedCount int    `json:"rejected_count"`
			Rejected      []struct {
				Row int    `json:"row"`
				SKU string `json:"sku"`
			} `json:"rejected"`
			NextPageToken string `json:"next_page_token"`
		}
		get := func(query url.Values) (page, response) {
			t.Helper()
			r := ts.do(t, http.MethodGet, path+"?"+query.Encode(), key, nil)
			var p page
			if r.StatusCode == http.StatusOK {
				if err := json.Unmarshal(r.body, &p); err != nil {
					t.Fatal(err)
				}
			}
			return p, r
		}
		// The default page is 100 rows; following the tokens reads every
		// row once, in request order, and the last page has no token.
		var rowsSeen []int
		var tokens []string
		q := url.Values{}
		for range 20 {
			p, r := get(q)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("GET %s?%s: %d %.300s", path, q.Encode(), r.StatusCode, r.body)
			}
			if p.RejectedCount != 1000 || p.TotalRows != 1000 || p.Outcome != "import.failed" || len(p.Rejected) > 100 {
				t.Fatalf("page: rejected_count %d, total_rows %d, outcome %s, %d rows", p.RejectedCount, p.TotalRows, p.Outcome, len(p.Rejected))
			}
			if len(r.body) > 32<<10 {
				t.Errorf("a page of 100 rejected rows is %d bytes", len(r.body))
			}
			for _, rj := range p.Rejected {
				rowsSeen = append(rowsSeen, rj.Row)
			}
			if p.NextPageToken == "" {
				break
			}
			tokens = append(tokens, p.NextPageToken)
			q = url.Values{"page_token": {p.NextPageToken}}
		}
		if len(rowsSeen) != 1000 || len(tokens) != 9 {
			t.Fatalf("read %d rows over %d pages, want 1000 over 10", len(rowsSeen), len(tokens)+1)
		}
		for i, row := range rowsSeen {
			if row != i+1 {
				t.Fatalf("row %d of the pages is row %d of the request, want %d", i, row, i+1)
			}
		}
		// A token names the same page every time.
		a, _ := get(url.Values{"page_token": {tokens[4]}})
		b, _ := get(url.Values{"page_token": {tokens[4]}})
		if len(a.Rejected) != 100 || a.Rejected[0].Row != 501 || b.Rejected[0].Row != 501 || a.NextPageToken != b.NextPageToken {
			t.Errorf("page 6 twice: %d rows from row %d, then from row %d", len(a.Rejected), a.Rejected[0].Row, b.Rejected[0].Row)
		}
		// page_size: up to 1,000 in one page, and another size from a token.
		if all, _ := get(url.Values{"page_size": {"1000"}}); len(all.Rejected) != 1000 || all.NextPageToken != "" {
			t.Errorf("page_size 1000: %d rows, next %q", len(all.Rejected), all.NextPageToken)
		}
		if p, _ := get(url.Values{"page_size": {"300"}, "page_token": {tokens[8]}}); len(p.Rejected) != 100 || p.Rejected[0].Row != 901 || p.NextPageToken != "" {
			t.Errorf("the last page with page_size 300: %d rows from %d", len(p.Rejected), p.Rejected[0].Row)
		}
		// Out of bounds, a token of another import, or no token at all: 422
		// naming the parameter.
		other := ts.mustStart(t, key, "/v1/imports", importBody("", rows("OLD-1", "OLD-2")))
		ts.mustFollow(t, key, other.Header.Get("Location"))
		for _, c := range []struct {
			query url.Values
			where string
		}{
			{url.Values{"page_size": {"1001"}}, "query.page_size"},
			{url.Values{"page_size": {"0"}}, "query.page_size"},
			{url.Values{"page_token": {"not-a-token"}}, "query.page_token"},
			{url.Values{"page_token": {"a+b/c="}}, "query.page_token"},
		} {
			if _, r := get(c.query); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), c.where) {
				t.Errorf("?%s: %d %.300s, want 422 naming %s", c.query.Encode(), r.StatusCode, r.body, c.where)
			}
		}
		otherPath := "/v1/imports/" + other.json(t)["import_id"].(string)
		if r := ts.do(t, http.MethodGet, otherPath+"?page_token="+tokens[0], key, nil); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), "query.page_token") {
			t.Errorf("another import's token: %d %.300s", r.StatusCode, r.body)
		}
	})
}

// mustListedProblem checks a problem about total errors: 20 listed, the
// rest counted, and a detail that says so.
func mustListedProblem(t *testing.T, r response, total int) problems.Problem {
	t.Helper()
	var p problems.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("%v: %.300s", err, r.body)
	}
	if r.StatusCode != http.StatusUnprocessableEntity || p.Code != problems.ValidationFailed {
		t.Fatalf("got %d %s, want 422 validation_failed", r.StatusCode, p.Code)
	}
	want := fmt.Sprintf("%d problems with the request; the first 20 are listed in errors.", total)
	if len(p.Errors) != problems.MaxErrors || p.ErrorsOmitted != total-problems.MaxErrors || p.Detail != want {
		t.Errorf("%d errors listed, %d omitted, detail %q; want 20, %d and %q", len(p.Errors), p.ErrorsOmitted, p.Detail, total-20, want)
	}
	return p
}

// measure sends one request as do does, and reports what the process
// allocated while it was answered (the client's reading included, the
// spec check of the answer not): an indicator of what one request costs.
func (ts *testSandbox) measure(t *testing.T, method, path, key, body string) (response, uint64) {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	r := response{res, raw}
	req.Body = io.NopCloser(bytes.NewReader(nil))
	checkSpec(t, req, res, raw)
	if res.StatusCode >= 400 {
		ts.checkProblem(t, r)
	}
	return r, after.TotalAlloc - before.TotalAlloc
}
