package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpListsEveryFlag(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"build": {"-out", "-content", "-generated", "-examples", "-rulesets", "-base-url", "-site-url", "-sandbox-url"},
		"serve": {"-addr", "-dir"},
	} {
		var out bytes.Buffer
		_ = run(context.Background(), []string{cmd, "-h"}, &out, slog.New(slog.DiscardHandler))
		for _, f := range flags {
			if !strings.Contains(out.String(), f+" ") && !strings.Contains(out.String(), f+"\n") {
				t.Errorf("%s -h does not document %s:\n%s", cmd, f, out.String())
			}
		}
	}
}

func TestBuildCommand(t *testing.T) {
	td := filepath.Join("internal", "build", "testdata", "site")
	out := filepath.Join(t.TempDir(), "site")
	rulesets := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rulesets, "functions"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rulesets, "functions", "f.js"), []byte("export default () => [];\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"build", "-out", out,
		"-content", filepath.Join(td, "content"), "-generated", filepath.Join(td, "generated"),
		"-examples", filepath.Join(td, "examples"), "-rulesets", rulesets, "-sandbox-url", "http://127.0.0.1:9999"},
		os.Stderr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "rulesets", "functions", "f.js")); err != nil {
		t.Errorf("ruleset not published: %v", err)
	}
	page, err := os.ReadFile(filepath.Join(out, "guides", "poll", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte(`<meta name="accepted-sandbox" content="http://127.0.0.1:9999">`)) {
		t.Error("sandbox URL not in page")
	}
	if err := run(context.Background(), []string{"nope"}, &bytes.Buffer{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("unknown command accepted")
	}
}
