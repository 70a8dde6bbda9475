package app

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestReadmeListsEveryFlag keeps the README's `sandbox serve` flags table
// true: every flag of serve has a row naming its environment variable, and
// no row names a flag that does not exist.
func TestReadmeListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("reading the README: %v", err)
	}
	_, table, ok := strings.Cut(string(readme), "## `sandbox serve` flags")
	if !ok {
		t.Fatal("the README has no \"## `sandbox serve` flags\" section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `-([a-z-]+)` \\(`(ACCEPTED_[A-Z_]+)`\\) \\| ([^|]*) \\|")
	rows, defaults := map[string]string{}, map[string]string{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		rows[m[1]] = m[2]
		defaults[m[1]] = m[3]
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg Config
	bindFlags(fs, &cfg, func(string) string { return "" })
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := rows[f.Name]
		if !ok {
			t.Errorf("the README's flags table has no row for -%s (%s)", f.Name, f.Usage)
			return
		}
		if !strings.Contains(f.Usage, "env "+env) {
			t.Errorf("README: -%s is set by %s, but the flag's help names another variable: %q", f.Name, env, f.Usage)
		}
		// A flag.Value whose zero value is not its default (-inbox-bytes,
		// -rate-limits) has no DefValue to compare.
		if def := defaults[f.Name]; f.DefValue != "" && strings.HasPrefix(def, "`") && strings.HasSuffix(def, "`") && strings.Count(def, "`") == 2 && !sameDefault(strings.Trim(def, "`"), f.DefValue) {
			t.Errorf("README: -%s defaults to %s, but the flag's default is %q", f.Name, def, f.DefValue)
		}
		delete(rows, f.Name)
	})
	for name := range rows {
		t.Errorf("the README's flags table lists -%s, which serve does not have", name)
	}
}

// sameDefault compares a default as the README writes it with the flag's:
// durations by value (24h is 24h0m0s), anything else case-insensitively.
func sameDefault(readme, flag string) bool {
	if a, err := time.ParseDuration(readme); err == nil {
		b, err := time.ParseDuration(flag)
		return err == nil && a == b
	}
	return strings.EqualFold(readme, flag)
}
