package app

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/clock"
)

// TestGeneratedClients checks the clients generated from the committed spec
// (generated/openapi.json) as CI must: for oapi-codegen and ogen
// (examples/go/clients, a Go module of its own) and for openapi-typescript
// with openapi-fetch (examples/ts), each pinned, it
//
//   - regenerates the code in a copy of the example and fails when it differs
//     from the committed code (the spec changed, the code did not follow);
//   - builds the example program on the committed code;
//   - runs it as a process against a live sandbox: a report to the end, a
//     job that fails with upstream_unavailable, and Ctrl-C on a running job.
//
// go, node and npm are needed; outside CI (CI unset) a missing one skips,
// as in TestExamples. npm ci runs in a temporary copy of examples/ts, so
// it reaches the npm registry, or npm's cache.
func TestGeneratedClients(t *testing.T) {
	if testing.Short() {
		t.Skip("generates, builds and runs the generated clients as processes")
	}
	gc := &gcEnv{
		root: exModuleRoot(t),
		ts:   newSandbox(t, nil, withScale(0.01)),
		// A job on this sandbox never gets past its first step (its clock
		// stands still), so it is surely running when Ctrl-C lands.
		frozen: newSandbox(t, nil, withScale(1), withFakeClock(clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)))),
	}
	spec := filepath.Join(gc.root, "generated", "openapi.json")

	// The Go generators and the Go build run beside npm and tsc: most of
	// the time is spent compiling and installing, not waiting on the sandbox.
	t.Run("go/generated", func(t *testing.T) {
		t.Parallel()
		goCmd := exNeed(t, "go")
		mod := filepath.Join(gc.root, "examples", "go", "clients")
		tmp := t.TempDir()
		work := filepath.Join(tmp, "examples", "go", "clients")
		gcCopyTree(t, mod, work)
		gcCopyTree(t, spec, filepath.Join(tmp, "generated", "openapi.json"))
		gcRun(t, 3*time.Minute, "go generate (oapi-codegen and ogen, pinned in examples/go/clients/go.mod)", work, gcGoEnv(), goCmd, "generate")
		gcSameTree(t, mod, work, "run `go generate` in examples/go/clients and commit the result")
	})
	t.Run("go/flows", func(t *testing.T) {
		t.Parallel()
		goCmd := exNeed(t, "go")
		bin := t.TempDir()
		gcRun(t, 3*time.Minute, "go build ./cmd/... in examples/go/clients", filepath.Join(gc.root, "examples", "go", "clients"),
			gcGoEnv(), goCmd, "build", "-o", bin+string(filepath.Separator), "./cmd/...")
		for _, name := range []string{"oapi-flow", "ogen-flow"} {
			t.Run(name, func(t *testing.T) { t.Parallel(); gc.flows(t, filepath.Join(bin, name)) })
		}
	})
	t.Run("ts", func(t *testing.T) {
		t.Parallel()
		node, npm := exNeed(t, "node"), exNeed(t, "npm")
		ex := filepath.Join(gc.root, "examples", "ts")
		tmp := t.TempDir()
		work := filepath.Join(tmp, "examples", "ts")
		gcCopyTree(t, ex, work, "node_modules", "dist")
		gcCopyTree(t, spec, filepath.Join(tmp, "generated", "openapi.json"))
		env := []string{"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"}
		gcRun(t, 3*time.Minute, "npm ci (the versions pinned in examples/ts/package-lock.json)", work, env, npm, "ci", "--ignore-scripts")
		gcRun(t, time.Minute, "npm run generate (openapi-typescript)", work, env, npm, "run", "generate")
		gcSameTree(t, filepath.Join(ex, "src", "api.d.ts"), filepath.Join(work, "src", "api.d.ts"),
			"run `npm run generate` in examples/ts and commit src/api.d.ts")
		gcRun(t, 2*time.Minute, "npm run build (tsc)", work, env, npm, "run", "build")
		gc.flows(t, node, filepath.Join(work, "dist", "flow.js"))
	})
}

// gcEnv is what the generated clients' runs share.
type gcEnv struct {
	root   string
	ts     *testSandbox
	frozen *testSandbox
}

// flows runs one client (argv) three times at once, then checks each run:
// a report to the end (with a key the program gets for itself), a job that
// fails, and Ctrl-C while the job runs.
func (gc *gcEnv) flows(t *testing.T, argv ...string) {
	start := func(sandbox *testSandbox, key string, env ...string) *exProc {
		t.Helper()
		base := []string{"ACCEPTED_URL=" + sandbox.srv.URL, "ACCEPTED_KEY=" + key, "ACCEPTED_SIMULATE=", "ACCEPTED_TIMEOUT=20"}
		return exStart(t, t.TempDir(), append(base, env...), argv...)
	}
	cancelKey := gc.frozen.key(t)
	canceled := start(gc.frozen, cancelKey, `ACCEPTED_SIMULATE={"duration_seconds":5}`)
	report := start(gc.ts, "")
	failed := start(gc.ts, gc.ts.key(t), `ACCEPTED_SIMULATE={"outcome":"fail","fail_code":"upstream_unavailable"}`)

	exCheck(t,
		"cancel", func(t *testing.T) {
			job := canceled.await(t, `(?m)^started (job_[a-z0-9]+)`)[1]
			if err := canceled.cmd.Process.Signal(os.Interrupt); err != nil {
				t.Fatal(err)
			}
			if code := canceled.wait(t); code != 130 {
				t.Fatalf("exit %d after SIGINT, want 130", code)
			}
			if st := gc.frozen.do(t, http.MethodGet, "/v1/jobs/"+job, cancelKey, nil).json(t)["status"]; st != "canceled" {
				t.Errorf("after SIGINT the job is %v on the server, want canceled", st)
			}
			exMustMatch(t, "stderr", canceled.stderr.String(), job+` canceled`)
		},
		"report", func(t *testing.T) {
			if code := report.wait(t); code != 0 {
				t.Fatalf("exit %d, want 0", code)
			}
			out := report.stdout.String()
			exMustMatch(t, "stdout", out, `(?m)^started job_[a-z0-9]+ \(report\)`)
			exMustMatch(t, "stdout", out, `(?m)^report rpt_[a-z0-9]+ "January" 2026-01-01\.\.2026-01-31: 31 days, [1-9][0-9]* orders`)
			exMustMatch(t, "stderr", report.stderr.String(), `using a new sandbox key sk_sandbox_\w+`)
		},
		"failure", func(t *testing.T) {
			if code := failed.wait(t); code != 3 {
				t.Fatalf("exit %d, want 3", code)
			}
			job := exMustMatch(t, "stdout", failed.stdout.String(), `(?m)^started (job_[a-z0-9]+)`)[1]
			e, _ := gc.ts.s.Catalog().Entry("upstream_unavailable")
			want := fmt.Sprintf("job %s failed: upstream_unavailable: %s", job, e.Title)
			if !strings.Contains(failed.stderr.String(), want) {
				t.Errorf("stderr lacks %q", want)
			}
			exMustMatch(t, "stderr", failed.stderr.String(), `more: http://\S+/errors#upstream_unavailable\n`)
		})
}

// gcGoEnv is the go command's environment for the examples' module: never
// a workspace, and go.mod and go.sum as committed.
func gcGoEnv() []string {
	return []string{"GOWORK=off", "GOFLAGS=" + strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=readonly")}
}

// gcRun runs a command to its end, failing the test if it fails or takes
// longer than timeout. what says what is being waited for.
func gcRun(t *testing.T, timeout time.Duration, what, dir string, env []string, argv ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second // a child left holding the output pipe must not hold the test
	began := time.Now()
	out, err := cmd.CombinedOutput()
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s: not done after %s (in %s)\n%s", what, timeout, dir, out)
	case err != nil:
		t.Fatalf("%s: %v (in %s)\n%s", what, err, dir, out)
	}
	t.Logf("%s: %s", what, time.Since(began).Round(10*time.Millisecond))
}

// gcCopyTree copies the file or directory src to dst, leaving out the
// directories named in skip.
func gcCopyTree(t *testing.T, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != src && slices.Contains(skip, d.Name()) {
			return filepath.SkipDir
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// gcSameTree fails the test unless the files under got (a file or a
// directory) are those under want, byte for byte; fix says how to mend it.
func gcSameTree(t *testing.T, want, got, fix string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		files := map[string][]byte{}
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			if rel == "." { // root is a file
				rel = filepath.Base(root)
			}
			files[filepath.ToSlash(rel)], err = os.ReadFile(path)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	w, g := read(want), read(got)
	var drift []string
	for name, data := range g {
		switch old, ok := w[name]; {
		case !ok:
			drift = append(drift, name+" is new")
		case !bytes.Equal(old, data):
			drift = append(drift, name+" differs: "+gcFirstDiff(old, data))
		}
	}
	for name := range w {
		if _, ok := g[name]; !ok {
			drift = append(drift, name+" is no longer generated")
		}
	}
	if len(drift) > 0 {
		slices.Sort(drift)
		t.Errorf("the committed code is not what the pinned generator makes from generated/openapi.json now: %s\n  %s",
			fix, strings.Join(drift, "\n  "))
	}
}

// gcFirstDiff describes the first line where two files part.
func gcFirstDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d is %q, would be %q", i+1, x, y)
		}
	}
	return "in line endings"
}
