package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The guide fixture (testdata/content/guides/try.md) holds, in order: a
// report panel (#p0), a slow report panel (#p1) and an export panel (#p2),
// under a lifecycle diagram.
const guide = "/guides/try/"

// pick chooses an option of a select and fires change, as a user's choice does.
func pick(t *testing.T, tb *tab, sel, value string) {
	t.Helper()
	eval[bool](t, tb, fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); return true; })()`, sel, value))
}

func TestTryItReportFollowsThe202ToTheResult(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+guide)
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	contains(t, "202 response", tb.text(t, "#p0 .tryit-response"),
		"HTTP 202 Accepted", "location: /v1/jobs/job_", "retry-after: ", `"status": "queued"`)
	contains(t, "timeline", tb.text(t, "#p0 .tryit-timeline"),
		"POST /v1/reports", "202 Accepted", "GET /v1/jobs/job_", "303 See Other → /v1/reports/rpt_", "200 OK")
	contains(t, "result", tb.text(t, "#p0 .tryit-result"), "Report: January sales", "total")
	if n := eval[int](t, tb, `document.querySelectorAll(".lifecycle .lit[data-state=succeeded]").length`); n == 0 {
		t.Error("the lifecycle diagram does not light up succeeded")
	}
	if v := eval[float64](t, tb, `document.querySelector("#p0 progress").value`); v != 100 {
		t.Errorf("progress bar at %v, want 100", v)
	}
	// The key came by itself and stays for the session.
	if key := eval[string](t, tb, `sessionStorage.getItem("accepted.key") || ""`); !strings.HasPrefix(key, "sk_") {
		t.Errorf("sandbox key in sessionStorage: %q", key)
	}
}

func TestTryItExportDownloads(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+"/reference/exports/")
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 a.tryit-download"))
	href := eval[string](t, tb, `document.querySelector("#p0 a.tryit-download").href`)
	if !strings.HasPrefix(href, "blob:") {
		t.Errorf("download link %q is not a blob URL", href)
	}
	contains(t, "export result", tb.text(t, "#p0 .tryit-result"), "Download sales-", ".csv", "rows", "SHA-256 matches")
	contains(t, "timeline", tb.text(t, "#p0 .tryit-timeline"), "POST /v1/exports", "303 See Other → /v1/exports/exp_", "/file")
	// The reference page has no diagram of its own: the panel holds the
	// build's strip of job states, lit up, linked to the guide's diagram.
	if n := eval[int](t, tb, `document.querySelectorAll("#p0 .lifecycle-strip .lit[data-state=succeeded]").length`); n == 0 {
		t.Error("the panel's strip of job states does not light up succeeded")
	}
}

func TestTryItLiveEvents(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+guide)
	tb.do(t, click(`#p0 input[value=sse]`), click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	timeline := tb.text(t, "#p0 .tryit-timeline")
	contains(t, "SSE timeline", timeline, "/events", "text/event-stream", "event: succeeded", "303 See Other → /v1/reports/rpt_")
	if strings.Count(timeline, "GET /v1/jobs/job_") != 2 { // the stream, then the monitor for its 303
		t.Errorf("SSE mode polled:\n%s", timeline)
	}
}

func TestTryItFailureLinksTheCatalog(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+guide)
	pick(t, tb, "#p0 select", "upstream_unavailable")
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-failed"))
	href := eval[string](t, tb, `document.querySelector("#p0 .tryit-result a").getAttribute("href")`)
	if href != "/errors/#upstream_unavailable" {
		t.Errorf("catalog link %q", href)
	}
	contains(t, "failure", tb.text(t, "#p0 .tryit-result"), "The job failed", "upstream_unavailable in the error catalog")
	contains(t, "status", tb.text(t, "#p0 .tryit-status"), "Job failed: upstream_unavailable")
	// The link leads to the catalog entry.
	tb.do(t, click("#p0 .tryit-result a"), chromedp.WaitVisible(chromedp.CSS("#upstream_unavailable")))
}

func TestTryItCancel(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+guide)
	if v := eval[string](t, tb, `document.querySelector("#p1 select").value`); v != "slow" {
		t.Fatalf("the guide's scenario=slow is not preselected: %q", v)
	}
	tb.do(t,
		click("#p1 button.tryit-primary"),
		visible("#p1 button.tryit-danger"),
		click("#p1 button.tryit-danger"),
		visible("#p1 .tryit-result.tryit-canceled"),
	)
	contains(t, "timeline", tb.text(t, "#p1 .tryit-timeline"), "DELETE /v1/jobs/job_", "canceled")
	if n := eval[int](t, tb, `document.querySelectorAll(".lifecycle .lit[data-state=canceled]").length`); n == 0 {
		t.Error("the lifecycle diagram does not light up canceled")
	}
}

// TestTryItReplaysWithTheSameIdempotencyKey sends a report, then the same
// request again with the same Idempotency-Key: the sandbox replays the
// first answer (the same job, Idempotent-Replayed: true) and starts no
// second job. A changed body with that key is refused with
// idempotency_key_reused.
func TestTryItReplaysWithTheSameIdempotencyKey(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+guide)
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	jobID := `(() => { try { return JSON.parse(document.querySelector("#p0 .tryit-response .tryit-json").textContent).id; } catch { return ""; } })()`
	first := eval[string](t, tb, jobID)
	if !strings.HasPrefix(first, "job_") {
		t.Fatalf("no job id in the first response: %q", first)
	}
	tb.do(t, click("#p0 button.tryit-replay"), visible("#p0 .tryit-result.tryit-succeeded"))
	contains(t, "replayed response", tb.text(t, "#p0 .tryit-response"), "idempotent-replayed: true")
	contains(t, "status", tb.text(t, "#p0 .tryit-status")+tb.text(t, "#p0 .tryit-timeline"), "202 Accepted")
	if again := eval[string](t, tb, jobID); again != first {
		t.Errorf("replay answered job %q, want the first job %q", again, first)
	}
	// The same key with another body is a different request: refused.
	eval[bool](t, tb, `(() => { const b = document.querySelector("#p0 textarea"); const o = JSON.parse(b.value); o.title = "Another title"; b.value = JSON.stringify(o); return true; })()`)
	tb.expect("status of 422 (Unprocessable Entity)")
	tb.do(t, click("#p0 button.tryit-replay"), visible("#p0 .tryit-result.tryit-failed"))
	contains(t, "refused replay", tb.text(t, "#p0 .tryit-result"), "The request was refused", "idempotency_key_reused")
}

// TestTryItKeyboardOnly runs a report with the keyboard alone: Tab to the
// panel's Send button, Enter, then Tab to "Copy as curl" and press Space.
func TestTryItKeyboardOnly(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	tb.open(t, e.baseURL+guide)
	tabTo := func(js string) {
		t.Helper()
		for range 150 {
			if eval[bool](t, tb, js) {
				return
			}
			tb.do(t, chromedp.KeyEvent(kb.Tab))
		}
		t.Fatalf("Tab never reached %s", js)
	}
	tabTo(`document.activeElement === document.querySelector("#p0 button.tryit-primary")`)
	if o := eval[string](t, tb, `getComputedStyle(document.activeElement).outlineStyle`); o == "none" {
		t.Error("the focused Send button shows no focus outline")
	}
	tb.do(t, chromedp.KeyEvent(kb.Enter), visible("#p0 .tryit-result.tryit-succeeded"))
	tabTo(`document.activeElement.textContent === "curl" && !!document.activeElement.closest("#p0")`)
	tb.do(t, chromedp.KeyEvent(" "), visible("#p0 .tryit-copy-out"))
	contains(t, "copied curl", tb.text(t, "#p0 .tryit-copy-out"),
		"curl -i -X POST '"+e.baseURL+"/v1/reports'", "Authorization: Bearer sk_", "Idempotency-Key: ", `"title": "January sales"`)
	// The announcement follows the clipboard's answer (or its one-second
	// fallback), so it may come after the code is shown.
	waitText(t, tb, "#p0 [role=status]", "curl")
}

// runReport opens the reports reference at a width and runs its first
// panel to the result.
func runReport(t *testing.T, tb *tab, e *env, width int64) {
	t.Helper()
	tb.do(t, viewport(width))
	tb.open(t, e.baseURL+"/reference/reports/")
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
}

// TestTryItNoSideScrollAfterARun: after a run has filled the panel (the
// response, a timeline of five columns, the result), neither the page nor
// the timeline is wider than the screen, on a phone and on a desktop where
// the panel sits in the reference's second column.
func TestTryItNoSideScrollAfterARun(t *testing.T) {
	e := mustEnv(t)
	for _, w := range []int64{390, 1280} {
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			tb := newTab(t, e)
			runReport(t, tb, e, w)
			if got := eval[[]int](t, tb, `[document.documentElement.scrollWidth, innerWidth]`); got[0] > got[1] {
				t.Errorf("the page scrolls sideways: %d px wide at %d", got[0], got[1])
			}
			fit := eval[[]int](t, tb, `(() => { const p = document.querySelector("#p0"), tl = p.querySelector(".tryit-timeline");
				return [tl.scrollWidth, p.clientWidth, tl.getBoundingClientRect().right > p.getBoundingClientRect().right ? 1 : 0]; })()`)
			if fit[0] > fit[1] || fit[2] == 1 {
				t.Errorf("the timeline (%d px) does not fit its panel (%d px)", fit[0], fit[1])
			}
			// Every column is visible: the job status and progress too.
			shown := eval[string](t, tb, `[...document.querySelectorAll("#p0 .tryit-timeline td")].filter((c) => c.offsetWidth > 0).map((c) => c.textContent).join(" | ")`)
			contains(t, "visible timeline cells", shown, "queued", "succeeded", "100%")
			if w >= 1280 {
				cols := eval[int](t, tb, `(() => { const m = document.querySelector("#create-report .ref-op-main").getBoundingClientRect(), a = document.querySelector("#create-report .ref-op-aside").getBoundingClientRect(); return a.left >= m.right ? 2 : 1; })()`)
				if cols != 2 {
					t.Error("the samples and try-it are not beside the prose at 1280 px")
				}
			}
		})
	}
}

// TestTryItAxeAfterARun runs axe-core on a reference page and on a guide
// after a try-it run has added the response, the timeline, the result and
// copied code: no violation (scrollable boxes reachable by keyboard, unique
// landmarks, allowed roles).
func TestTryItAxeAfterARun(t *testing.T) {
	src := mustAxe(t)
	e := mustEnv(t)
	tb := newTab(t, e)
	runReport(t, tb, e, 1280)
	tb.do(t, click("#p0 button.tryit-flow"), visible("#p0 .tryit-copy-out"))
	if v := runAxe(t, tb, src); len(v) > 0 {
		t.Errorf("reference after a run: %d axe violations:\n  %s", len(v), strings.Join(v, "\n  "))
	}
	tb.do(t, viewport(390))
	tb.open(t, e.baseURL+guide)
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	if v := runAxe(t, tb, src); len(v) > 0 {
		t.Errorf("guide after a run, 390 px: %d axe violations:\n  %s", len(v), strings.Join(v, "\n  "))
	}
}

// TestTryItCopiesTheWholeFlow copies the follow-the-job client as curl
// after a run and runs it with sh against the same sandbox: it starts its
// own job with a fresh Idempotency-Key, polls, and prints the report.
func TestTryItCopiesTheWholeFlow(t *testing.T) {
	e := mustEnv(t)
	tb := newTab(t, e)
	runReport(t, tb, e, 1280)
	tb.do(t, click("#p0 button.tryit-flow"), visible("#p0 .tryit-copy-out"))
	waitText(t, tb, "#p0 [role=status]", "the whole flow as curl")
	script := tb.text(t, "#p0 .tryit-copy-out")
	contains(t, "copied flow", script, "URL='"+e.baseURL+"/v1/reports'", "KEY='sk_", "IDEMPOTENCY_KEY=$(od", "Retry-After", "while :; do", `"title": "January sales"`)
	if strings.Contains(script, "@@") {
		t.Errorf("a placeholder was left in:\n%s", script)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed: the copied script is not run")
	}
	file := filepath.Join(t.TempDir(), "follow.sh")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", file).CombinedOutput()
	if err != nil {
		t.Fatalf("the copied flow failed: %v\n%s\n%s", err, out, script)
	}
	contains(t, "the copied flow's output", string(out), "202", "result: "+e.baseURL+"/v1/reports/rpt_", `"title"`)
}
