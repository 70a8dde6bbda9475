package markdown

import (
	"errors"
	"strings"
	"testing"

	"github.com/accepted-dev/accepted/site/internal/highlight"
)

func newTryItMarkdown(t *testing.T, calls *[]string) *Markdown {
	t.Helper()
	hl, err := highlight.New(highlight.DefaultLight, highlight.DefaultDark)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Highlighter: hl, TryIt: func(op, scenario, body string) (string, error) {
		*calls = append(*calls, op+"|"+scenario+"|"+body)
		if op != "createReport" {
			return "", errors.New("no operation with that id")
		}
		return `<div class="try-it" data-operation="createReport"></div>`, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTryItBlock(t *testing.T) {
	var calls []string
	m := newTryItMarkdown(t, &calls)
	res, err := m.Render("guide.md", []byte("Intro.\n\n```tryit operation=createReport scenario=slow\n{\"from\":\"2026-01-01\"}\n```\n\nAfter.\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.TryIt || !strings.Contains(res.HTML, `<div class="try-it" data-operation="createReport"></div>`) {
		t.Errorf("TryIt=%v HTML:\n%s", res.TryIt, res.HTML)
	}
	if len(calls) != 1 || calls[0] != `createReport|slow|{"from":"2026-01-01"}` {
		t.Errorf("calls = %q", calls)
	}
	if strings.Contains(res.Text, "from") {
		t.Errorf("search text holds the body: %q", res.Text)
	}
	plain, err := m.Render("plain.md", []byte("No panel.\n"), Options{})
	if err != nil || plain.TryIt {
		t.Errorf("page without a panel: TryIt=%v, %v", plain.TryIt, err)
	}
}

func TestTryItBlockErrors(t *testing.T) {
	var calls []string
	m := newTryItMarkdown(t, &calls)
	for name, tc := range map[string]struct{ src, want string }{
		"no operation":      {"\n```tryit\n```\n", "guide.md:2: tryit block needs operation="},
		"unknown operation": {"```tryit operation=nope\n```\n", "guide.md:1: tryit operation=nope: no operation with that id"},
		"scenario on go":    {"```go scenario=slow\n```\n", "guide.md:1: fence attribute scenario is only for tryit blocks"},
	} {
		_, err := m.Render("guide.md", []byte(tc.src), Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
	// Without the hook a tryit block is an error, not a silent gap.
	if _, err := newMarkdown(t).Render("guide.md", []byte("```tryit operation=createReport\n```\n"), Options{}); err == nil || !strings.Contains(err.Error(), "no API reference") {
		t.Errorf("no hook: %v", err)
	}
}

func TestGoatStatesAddressable(t *testing.T) {
	art := "+--------+     +------------+     +-----------+\n| queued +---->| processing +---->| succeeded |\n+--------+     +-----+------+     +-----------+\n                     |\n                     v\n                +--------+\n                | failed |  (queue)\n                +--------+\n"
	res := render(t, "```goat title=\"Job lifecycle\"\n"+art+"```\n")
	h := res.HTML
	if !strings.Contains(h, `<figure class="diagram lifecycle">`) {
		t.Errorf("figure not marked as a lifecycle:\n%s", h)
	}
	for _, st := range []string{"queued", "processing", "succeeded", "failed"} {
		if n := strings.Count(h, "<text class='state' data-state='"+st+"'"); n != len(st) {
			t.Errorf("%s: %d characters marked, want %d", st, n, len(st))
		}
		if strings.Count(h, "<rect class='state-box' data-state='"+st+"'") != 1 {
			t.Errorf("%s: no box", st)
		}
	}
	// "queue" inside "(queue)" is not a state, and nothing else is marked.
	if strings.Count(h, "data-state=") != len("queuedprocessingsucceededfailed")+4 {
		t.Errorf("%d data-state attributes", strings.Count(h, "data-state="))
	}
	if strings.Contains(h, "style=") {
		t.Error("inline style")
	}
	// states= picks other words; a diagram without them is left alone.
	res = render(t, "```goat title=\"Flow\" states=\"client\"\n+--------+\n| client |\n+--------+\n```\n")
	if !strings.Contains(res.HTML, "data-state='client'") {
		t.Errorf("states= ignored:\n%s", res.HTML)
	}
	res = render(t, "```goat title=\"Flow\"\n+--------+\n| client |\n+--------+\n| failed |\n+--------+\n```\n")
	if strings.Contains(res.HTML, "data-state") || strings.Contains(res.HTML, "lifecycle") {
		t.Errorf("marked a diagram without states:\n%s", res.HTML)
	}
}
