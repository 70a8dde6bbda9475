// Command poll starts a job on the Accepted sandbox and follows it to the
// end: it polls the status monitor as Retry-After says, follows the 303 See
// Other to the result, reports a failed job by its error-catalog code, and
// cancels the job if you press Ctrl-C.
//
// It needs only the Go standard library:
//
//	go run ./examples/go/poll
//
// Environment:
//
//	ACCEPTED_URL       the sandbox (default http://localhost:8080)
//	ACCEPTED_KEY       your API key; when empty, a new sandbox key is made and printed
//	ACCEPTED_KIND      report (default) or export
//	ACCEPTED_SIMULATE  a sandbox scenario as JSON, e.g. {"outcome":"fail","fail_code":"upstream_unavailable"}
//	ACCEPTED_TIMEOUT   seconds to wait for the job in all (default 300)
//	ACCEPTED_OUT       directory an export is saved in (default .)
//
// Exit status: 0 done, 1 error or timeout, 3 the job failed, 130 cancelled
// by a signal.
package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Job is the part of the sandbox's job object this client reads.
type Job struct {
	ID              string   `json:"id"`
	Kind            string   `json:"kind"`
	Status          string   `json:"status"`
	StatusURL       string   `json:"status_url"`
	PercentComplete int      `json:"percent_complete"`
	Message         string   `json:"message"`
	Error           *Problem `json:"error"`
	Links           struct {
		Resource string `json:"resource"`
	} `json:"links"`
}

// Problem is an RFC 9457 problem; code is the error catalog's entry.
type Problem struct {
	Type   string `json:"type"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Status int    `json:"status"`
}

// client holds what every request needs.
type client struct {
	base *url.URL
	key  string
	http *http.Client
}

func main() {
	os.Exit(run())
}

func run() int {
	base, err := url.Parse(env("ACCEPTED_URL", "http://localhost:8080"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ACCEPTED_URL:", err)
		return 1
	}
	timeout, err := strconv.Atoi(env("ACCEPTED_TIMEOUT", "300"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ACCEPTED_TIMEOUT must be whole seconds:", err)
		return 1
	}
	c := &client{base: base, key: os.Getenv("ACCEPTED_KEY"), http: &http.Client{
		Timeout: 30 * time.Second,
		// Do not follow redirects: the 303 is how the monitor says "done".
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}

	// Ctrl-C and SIGTERM end interrupted; the deadline ends ctx only.
	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(interrupted, time.Duration(timeout)*time.Second)
	defer cancel()

	if c.key == "" {
		if c.key, err = c.newKey(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "getting a sandbox key:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "using a new sandbox key %s (set ACCEPTED_KEY to reuse it)\n", c.key)
	}

	kind := env("ACCEPTED_KIND", "report")
	body, err := requestBody(kind, os.Getenv("ACCEPTED_SIMULATE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ACCEPTED_SIMULATE:", err)
		return 1
	}
	job, wait, err := c.start(ctx, kind, body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the job:", err)
		return 1
	}
	fmt.Printf("started %s (%s): %s; status at %s\n", job.ID, job.Kind, job.Status, job.StatusURL)

	job, resultURL, err := c.poll(ctx, job, wait)
	switch {
	case interrupted.Err() != nil:
		return c.cancel(job)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(os.Stderr, "gave up after %ds; the job goes on: %s\n", timeout, c.abs(job.StatusURL))
		return 1
	case err != nil:
		fmt.Fprintln(os.Stderr, "polling:", err)
		return 1
	case job.Status == "failed":
		return failure(job)
	case job.Status == "canceled":
		fmt.Printf("%s was canceled\n", job.ID)
		return 1
	}
	if kind == "export" {
		err = c.saveExport(ctx, job, resultURL, env("ACCEPTED_OUT", "."))
	} else {
		err = c.printReport(ctx, resultURL)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reading the result:", err)
		return 1
	}
	return 0
}

// region start
// start sends the POST that creates the job. The Idempotency-Key makes a
// retry safe: if the first POST reached the server but its answer was
// lost, the retry replays that answer instead of starting a second job.
// It returns the job and how long to wait before the first poll.
func (c *client) start(ctx context.Context, kind string, body []byte) (Job, time.Duration, error) {
	idemKey := newUUID()
	res, err := c.do(ctx, http.MethodPost, "/v1/"+kind+"s", body, "Idempotency-Key", idemKey)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "POST failed (%v); retrying once with the same Idempotency-Key\n", err)
		res, err = c.do(ctx, http.MethodPost, "/v1/"+kind+"s", body, "Idempotency-Key", idemKey)
	}
	if err != nil {
		return Job{}, 0, err
	}
	if res.StatusCode != http.StatusAccepted { // a 4xx problem: nothing was created
		return Job{}, 0, problemError(res)
	}
	var job Job
	err = decode(res, &job)
	job.StatusURL = res.Header.Get("Location") // the status monitor (equal to status_url)
	wait, ok := retryAfter(res)
	if !ok {
		wait = time.Second
	}
	return job, wait, err
}

// endregion start

// region poll
// poll reads the status monitor until the job is over, first after the 202's
// Retry-After. A running job answers 200 with Retry-After: we obey it. Without
// it, and on 429 or 503, we back off (capped, with jitter so that clients do
// not poll in step). On success it returns the 303's Location: the result.
func (c *client) poll(ctx context.Context, job Job, wait time.Duration) (Job, string, error) {
	for attempt := 0; ; attempt++ {
		if err := sleep(ctx, wait); err != nil {
			return job, "", err
		}
		wait = backoff(attempt) // unless the server says otherwise
		res, err := c.do(ctx, http.MethodGet, job.StatusURL, nil)
		switch {
		case err != nil && ctx.Err() != nil:
			return job, "", ctx.Err()
		case err != nil: // a network error: a GET is safe to repeat
			fmt.Fprintf(os.Stderr, "poll failed (%v); retrying in %s\n", err, wait)
		case res.StatusCode == http.StatusSeeOther: // done: the result is at Location
			return job, c.abs(res.Header.Get("Location")), decode(res, &job)
		case res.StatusCode == http.StatusOK:
			if err := decode(res, &job); err != nil || job.Status == "failed" || job.Status == "canceled" {
				return job, "", err
			}
			if s, ok := retryAfter(res); ok {
				wait, attempt = s, -1 // the server knows best; restart the backoff
			}
			fmt.Printf("%s: %s %d%%; next poll in %s  %s\n", job.ID, job.Status, job.PercentComplete, wait, job.Message)
		case res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable:
			res.Body.Close()
			if s, ok := retryAfter(res); ok {
				wait = max(wait, s)
			}
			fmt.Printf("%s: %s; next poll in %s\n", job.ID, res.Status, wait)
		default: // 401, 404, 410: polling again will not help
			return job, "", problemError(res)
		}
	}
}

// endregion poll

// requestBody is the POST body: January 2026, and the sandbox scenario.
func requestBody(kind, simulate string) ([]byte, error) {
	body := map[string]any{"title": "January", "from": "2026-01-01", "to": "2026-01-31"}
	if kind == "export" {
		body = map[string]any{"format": "csv", "from": "2026-01-01", "to": "2026-01-31"}
	}
	if simulate != "" {
		if !json.Valid([]byte(simulate)) {
			return nil, fmt.Errorf("not JSON: %s", simulate)
		}
		body["simulate"] = json.RawMessage(simulate)
	}
	return json.Marshal(body)
}

// backoff is 1 s doubling per attempt, capped at 30 s, with "equal jitter":
// a random wait between half and all of it.
func backoff(attempt int) time.Duration {
	d := min(time.Second<<min(attempt, 5), 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

// retryAfter reads Retry-After as delay-seconds, the form the sandbox sends.
func retryAfter(res *http.Response) (time.Duration, bool) {
	s, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

// region result
// printReport reads the report the 303 pointed at.
func (c *client) printReport(ctx context.Context, resultURL string) error {
	var rep struct {
		ID, Title, From, To string
		Days                []json.RawMessage
		Totals              struct {
			Orders       int   `json:"orders"`
			RevenueCents int64 `json:"revenue_cents"`
			Refunds      int   `json:"refunds"`
		}
	}
	if err := c.getJSON(ctx, resultURL, &rep); err != nil {
		return err
	}
	fmt.Printf("report %s %q %s..%s: %d days, %d orders, revenue %d.%02d, %d refunds\n",
		rep.ID, rep.Title, rep.From, rep.To, len(rep.Days), rep.Totals.Orders,
		rep.Totals.RevenueCents/100, rep.Totals.RevenueCents%100, rep.Totals.Refunds)
	return nil
}

// endregion result

// region export
// saveExport downloads the file the 303 pointed at, hashing it on the way,
// and checks the hash against the one the export resource publishes.
func (c *client) saveExport(ctx context.Context, job Job, fileURL, dir string) error {
	var exp struct {
		File struct{ Name, SHA256 string } `json:"file"`
	}
	if err := c.getJSON(ctx, c.abs(job.Links.Resource), &exp); err != nil {
		return err
	}
	res, err := c.get(ctx, fileURL)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	path := filepath.Join(dir, filepath.Base(exp.File.Name))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), res.Body)
	if err = errors.Join(err, f.Close()); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != exp.File.SHA256 {
		os.Remove(path) // never leave a corrupt file that looks finished
		return fmt.Errorf("%s: sha256 %s, the export says %s", path, got, exp.File.SHA256)
	}
	fmt.Printf("saved %s (%d bytes), sha256 %s verified\n", path, n, exp.File.SHA256)
	return nil
}

// endregion export

// region failure
// failure reports a failed job. The error is an RFC 9457 problem whose
// code names an entry of the error catalog: branch on the code, show the
// title, and quote the job id to support.
func failure(job Job) int {
	p := job.Error
	if p == nil {
		p = &Problem{Code: "unknown", Title: "the job failed without an error"}
	}
	fmt.Fprintf(os.Stderr, "job %s failed: %s: %s\n", job.ID, p.Code, p.Title)
	if p.Detail != "" {
		fmt.Fprintf(os.Stderr, "  %s\n  more: %s\n", p.Detail, p.Type)
	}
	return 3
}

// endregion failure

// region cancel
// cancel runs after Ctrl-C or SIGTERM: DELETE on the status monitor stops
// the work on the server, so nobody pays for a result no one will read.
// The signal has ended the main context, so this request gets its own.
func (c *client) cancel(job Job) int {
	fmt.Fprintf(os.Stderr, "interrupted: canceling %s\n", job.ID)
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	res, err := c.do(ctx, http.MethodDelete, job.StatusURL, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cancel failed:", err)
		return 130
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		fmt.Fprintf(os.Stderr, "%s canceled\n", job.ID)
	case http.StatusConflict: // it finished first; its result stays readable
		fmt.Fprintf(os.Stderr, "%s had already finished\n", job.ID)
	default:
		fmt.Fprintln(os.Stderr, "cancel:", problemError(res))
	}
	return 130
}

// endregion cancel

// do sends one request with the API key.
func (c *client) do(ctx context.Context, method, path string, body []byte, headers ...string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.abs(path), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return c.http.Do(req)
}

// get sends a GET and turns any answer but 200 into an error.
func (c *client) get(ctx context.Context, path string) (*http.Response, error) {
	res, err := c.do(ctx, http.MethodGet, path, nil)
	if err == nil && res.StatusCode != http.StatusOK {
		return nil, problemError(res)
	}
	return res, err
}

func (c *client) getJSON(ctx context.Context, path string, v any) error {
	res, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	return decode(res, v)
}

// decode reads a JSON body and closes it.
func decode(res *http.Response, v any) error {
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}

// newKey asks the sandbox for an API key.
func (c *client) newKey(ctx context.Context) (string, error) {
	res, err := c.do(ctx, http.MethodPost, "/v1/sandbox/keys", nil)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusCreated {
		return "", problemError(res)
	}
	var k struct{ Key string }
	err = decode(res, &k)
	return k.Key, err
}

// abs resolves a URL the server sent (Location, links) against the base.
func (c *client) abs(ref string) string {
	u, err := c.base.Parse(ref)
	if err != nil {
		return ref
	}
	return u.String()
}

// problemError turns an error response into an error naming its catalog code.
func problemError(res *http.Response) error {
	defer res.Body.Close()
	var p Problem
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); ct == "application/problem+json" && json.Unmarshal(raw, &p) == nil {
		return fmt.Errorf("%s %s: %d %s: %s %s", res.Request.Method, res.Request.URL.Path, res.StatusCode, p.Code, p.Title, p.Detail)
	}
	return fmt.Errorf("%s %s: %s", res.Request.Method, res.Request.URL.Path, res.Status)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newUUID returns a random (version 4) UUID for the Idempotency-Key.
func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
