package app

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// guideSample is a ```sh block of a page in content/.
type guideSample struct {
	file, code string
}

var (
	shFence    = regexp.MustCompile("(?ms)^([ \t]*)```sh\n(.*?)\n[ \t]*```")
	docID      = regexp.MustCompile(`\b(job|inb|imp)_[a-z2-7]{26}\b`)
	statusLine = regexp.MustCompile(`(?m)^HTTP/[0-9.]+ ([0-9]{3})`)
	// A problem body printed on its own (curl -s) starts with its type.
	problemBody = regexp.MustCompile(`(?m)^\{"type":"`)
	// What sh says of a command the reader's machine may not have.
	missingCommand = regexp.MustCompile(`(?m): (command )?not found$`)
)

// guideSamples reads every shell sample in the guides and the FAQ.
func guideSamples(t *testing.T, root string) []guideSample {
	t.Helper()
	var out []guideSample
	content := os.DirFS(filepath.Join(root, "content"))
	err := fs.WalkDir(content, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(name) != ".md" {
			return err
		}
		data, err := fs.ReadFile(content, name)
		if err != nil {
			return err
		}
		for _, m := range shFence.FindAllStringSubmatch(string(data), -1) {
			code := m[2]
			if indent := m[1]; indent != "" { // a fence inside a list item
				code = strings.ReplaceAll("\n"+code, "\n"+indent, "\n")[1:]
			}
			out = append(out, guideSample{file: name, code: code})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGuideSamples runs every shell sample in content/ against a live
// sandbox, as a reader who has done "Start here" would: ACCEPTED_URL and
// ACCEPTED_KEY are set, and each id the text uses (job_…, inb_…, imp_…)
// stands for a real one of the reader's own. examples/ is covered by
// TestExamples; this covers the commands written into the pages.
//
// A sample must exit 0 with no 5xx and no problem in what it prints,
// unless the table below says what else the page promises.
func TestGuideSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the guides' shell samples as processes")
	}
	exNeed(t, "sh")
	exNeed(t, "curl")
	root := exModuleRoot(t)
	samples := guideSamples(t, root)
	if len(samples) < 30 {
		t.Fatalf("only %d shell samples found in content/", len(samples))
	}
	// Served as `make run` serves it: on 127.0.0.1, so its inbox URLs say
	// 127.0.0.1, while the pages write localhost.
	sv := runServing(t, testConfig(), nil, "")
	t.Cleanup(func() {
		sv.sigterm()
		if err := <-sv.stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ts := sv.testSandbox
	_, port, _ := net.SplitHostPort(sv.ln.Addr().String())
	// What a page says a sample shows, when it is not a plain success.
	expect := []struct {
		marker string // a sample containing this
		exit   int
		output string // must appear in what it prints
		seen   bool
	}{
		{marker: `ACCEPTED_SIMULATE='{"outcome":"fail"`, exit: 1, output: "exit status 3"}, // the poll example's status for a failed job, which go run reports as 1
		{marker: "OTHER_KEY", output: "404 Not Found"},                                     // another key's job
		{marker: "?n=[1-30]", output: "429"},                                               // polling too fast
		{marker: `echo "$ACCEPTED_KEY"`, output: "sk_"},                                    // the key really was read
	}

	for i, s := range samples {
		wantExit, wantOut := 0, ""
		for j := range expect {
			if strings.Contains(s.code, expect[j].marker) {
				expect[j].seen = true
				wantExit, wantOut = expect[j].exit, expect[j].output
			}
		}
		t.Run(s.file+"#"+strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			key := ts.key(t)
			code := strings.ReplaceAll(s.code, "http://localhost:8080", "http://localhost:"+port)
			for _, id := range uniq(docID.FindAllString(code, -1)) {
				code = strings.ReplaceAll(code, id, ts.standIn(t, key, id, s))
			}
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "sh", "-c", code)
			cmd.Dir = dir
			if strings.Contains(code, "go run ./examples/") {
				cmd.Dir = root
			}
			cmd.Env = append(os.Environ(), "ACCEPTED_URL="+ts.srv.URL, "ACCEPTED_KEY="+key, "ACCEPTED_OUT="+dir)
			outb, _ := cmd.CombinedOutput()
			out, exit := string(outb), cmd.ProcessState.ExitCode()

			if m := missingCommand.FindString(out); m != "" {
				t.Errorf("a command in the sample is missing on this machine (%s)\n%s\n---\n%s", m, s.code, out)
			}
			if exit != wantExit {
				t.Errorf("exit %d, want %d\n%s\n---\n%s", exit, wantExit, s.code, out)
			}
			if wantOut != "" {
				if !strings.Contains(out, wantOut) {
					t.Errorf("output lacks %q\n%s\n---\n%s", wantOut, s.code, out)
				}
				return
			}
			for _, m := range statusLine.FindAllStringSubmatch(out, -1) {
				if m[1][0] == '4' || m[1][0] == '5' {
					t.Errorf("answered %s\n%s\n---\n%s", m[1], s.code, out)
				}
			}
			if strings.Contains(out, "application/problem+json") || problemBody.MatchString(out) {
				t.Errorf("printed a problem\n%s\n---\n%s", s.code, out)
			}
		})
	}
	for _, e := range expect {
		if !e.seen {
			t.Errorf("no sample contains %q any more: update the table", e.marker)
		}
	}
}

// standIn makes, for key, a real object of the kind of the page's example
// id: a finished job (an export on the exports guide, else a report), a
// running one for a sample that cancels it, an inbox, or a finished
// import whose webhook reached an inbox.
func (ts *testSandbox) standIn(t *testing.T, key, docID string, s guideSample) string {
	t.Helper()
	switch docID[:3] {
	case "inb":
		return ts.mustInbox(t, key).ID
	case "imp":
		in := ts.mustInbox(t, key)
		r := ts.mustStart(t, key, "/v1/imports", importBody(in.URL, rows("MUG-1", "OLD-MUG")))
		ts.mustFollow(t, key, r.Header.Get("Location"))
		id := path.Base(r.json(t)["links"].(map[string]any)["resource"].(string))
		waitFor(t, "the first delivery to be over", func() bool { // a redelivery needs it
			st := ts.do(t, http.MethodGet, "/v1/imports/"+id+"/deliveries", key, nil).json(t)["state"]
			return st == "delivered" || st == "failed"
		})
		return id
	}
	if strings.Contains(s.code, "-X DELETE") {
		r := ts.mustStart(t, key, "/v1/reports", reportBody(map[string]any{"duration_seconds": 600}))
		return r.json(t)["id"].(string)
	}
	path, body := "/v1/reports", reportBody(nil)
	if s.file == "guides/exports.md" {
		path, body = "/v1/exports", map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-31"}
	}
	r := ts.mustStart(t, key, path, body)
	ts.mustFollow(t, key, r.Header.Get("Location"))
	return r.json(t)["id"].(string)
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
