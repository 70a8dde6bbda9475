package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestTryItCrossOrigin is R37 in a real browser: the site is served from one
// origin (go run ./site serve, with connect-src for the sandbox) and the
// sandbox from another (with -cors-origins naming the site). The panel must
// read Location and Retry-After from the 202 (Access-Control-Expose-Headers),
// and follow the job, 303 included, to the result.
func TestTryItCrossOrigin(t *testing.T) {
	e := mustEnv(t)
	sitePort := freePort(t)
	siteOrigin := fmt.Sprintf("http://127.0.0.1:%d", sitePort)
	sandboxURL, err := start(e.sandbox, "serve", "-database", "memory", "-addr", "127.0.0.1:0", "-time-scale", timeScale, "-cors-origins", siteOrigin)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "site")
	if err := e.buildSite(dir, sandboxURL); err != nil {
		t.Fatal(err)
	}
	got, err := start(e.siteBin, "serve", "-addr", fmt.Sprintf("127.0.0.1:%d", sitePort), "-dir", dir, "-sandbox-url", sandboxURL)
	if err != nil {
		t.Fatal(err)
	}
	if got != siteOrigin {
		t.Fatalf("site serves at %s, want %s", got, siteOrigin)
	}

	tb := newTab(t, e)
	tb.open(t, siteOrigin+guide)
	if title := tb.text(t, "#p0 .tryit-title"); !contains1(title, sandboxURL) {
		t.Errorf("panel does not name the sandbox at %s: %q", sandboxURL, title)
	}
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	contains(t, "cross-origin 202", tb.text(t, "#p0 .tryit-response"),
		"HTTP 202 Accepted", "location: /v1/jobs/job_", "retry-after: ", "ratelimit: ", "ratelimit-policy: ")
	contains(t, "timeline", tb.text(t, "#p0 .tryit-timeline"), "303 See Other → /v1/reports/rpt_")
	contains(t, "copied request", eval[string](t, tb, `(document.querySelector("#p0 .tryit-copy button").click(), new Promise(r => setTimeout(() => r(document.querySelector("#p0 .tryit-copy-out").textContent), 1500)))`),
		"curl -i -X POST '"+sandboxURL+"/v1/reports'")
}

func contains1(s, sub string) bool { return strings.Contains(s, sub) }
