package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestTryItImportWebhooksInTheInbox starts an import whose callback_url is a
// built-in inbox the panel creates, and watches the webhook arrive beside
// the request with its signature checked step by step. Then the inbox is
// told to fail the next delivery, and the retry arrives after the 503.
func TestTryItImportWebhooksInTheInbox(t *testing.T) {
	e := mustEnv(t)
	if !strings.Contains(e.spec, `"createImport"`) || !strings.Contains(e.spec, `"/v1/sandbox/inboxes"`) {
		t.Skip("the sandbox has no imports or inboxes yet")
	}
	tb := newTab(t, e)
	tb.open(t, e.baseURL+"/reference/imports/")
	if op := eval[string](t, tb, `document.querySelector("#p0").dataset.operation`); op != "createImport" {
		t.Fatalf("first panel on the imports page is %s", op)
	}
	tb.do(t,
		click("#p0 button.tryit-primary"),
		visible("#p0 .tryit-result.tryit-succeeded"),
		visible("#p0 .tryit-deliveries > li"),
	)
	body := eval[string](t, tb, `document.querySelector("#p0 textarea").value`)
	inbox := eval[string](t, tb, `JSON.parse(sessionStorage.getItem("accepted.inbox")).url`)
	contains(t, "request body", body, `"callback_url": "`+inbox+`"`, "/v1/sandbox/inboxes/inb_")
	contains(t, "result", tb.text(t, "#p0 .tryit-result"), "Import: import.complete", "2 of 2 rows imported")
	if got := eval[[]int](t, tb, `[...document.querySelectorAll("#p0 .tryit-deliveries > li")].map((li) => li.value)`); !slices.Equal(got, []int{1}) {
		t.Errorf("the first delivery is numbered %v, want [1]", got)
	}
	first := tb.text(t, "#p0 .tryit-deliveries > li")
	contains(t, "delivery", first, "import.complete", "answered 204", "signature valid", "webhook-signature", "v1,", "Signature check, step by step")

	// Fail the next delivery with 503: the sandbox retries (5 s, compressed
	// by the time scale) and the second attempt is answered 204.
	pick(t, tb, "#p0 .tryit-fail select", "503")
	eval[bool](t, tb, `(() => { const i = document.querySelector("#p0 .tryit-fail input"); i.value = "1"; return true; })()`)
	tb.do(t, click("#p0 .tryit-fail button"))
	waitText(t, tb, "#p0 .tryit-status", "answer 503 to the next 1")
	tb.do(t, click("#p0 button.tryit-primary"), visible("#p0 .tryit-result.tryit-succeeded"))
	waitCount(t, tb, "#p0 .tryit-deliveries > li", 3)
	if got := eval[[]int](t, tb, `[...document.querySelectorAll("#p0 .tryit-deliveries > li")].map((li) => li.value)`); !slices.Equal(got, []int{3, 2, 1}) {
		t.Errorf("three deliveries, newest first, are numbered %v, want [3 2 1]", got)
	}
	all := tb.text(t, "#p0 .tryit-deliveries")
	contains(t, "retried deliveries", all, "answered 503", "answered 204")
}

// waitText waits until sel's text contains want.
func waitText(t *testing.T, tb *tab, sel, want string) {
	t.Helper()
	eval[bool](t, tb, `new Promise((ok) => { const f = () => (document.querySelector(`+jsString(sel)+`).textContent.includes(`+jsString(want)+`) ? ok(true) : setTimeout(f, 50)); f(); })`)
}

// waitCount waits until sel matches at least n elements.
func waitCount(t *testing.T, tb *tab, sel string, n int) {
	t.Helper()
	eval[bool](t, tb, `new Promise((ok) => { const f = () => (document.querySelectorAll(`+jsString(sel)+`).length >= `+itoa(n)+` ? ok(true) : setTimeout(f, 50)); f(); })`)
}
