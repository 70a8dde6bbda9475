// Command oapi-flow runs the report flow with the client that oapi-codegen
// generates from the sandbox's spec (package oapi): it gets a key, starts a
// report, polls the status monitor as Retry-After says, reads the 303 See
// Other as "done, the result is at Location", and prints the report. A
// failed job prints its error-catalog code; Ctrl-C cancels the job.
//
//	cd examples/go/clients && go run ./cmd/oapi-flow
//
// Environment:
//
//	ACCEPTED_URL       the sandbox (default http://localhost:8080)
//	ACCEPTED_KEY       your API key; when empty, a new sandbox key is made and printed
//	ACCEPTED_SIMULATE  a sandbox scenario as JSON, e.g. {"outcome":"fail","fail_code":"upstream_unavailable"}
//	ACCEPTED_TIMEOUT   seconds to wait for the job in all (default 300)
//
// Exit status: 0 done, 1 error or timeout, 3 the job failed, 130 cancelled
// by a signal.
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/accepted-dev/accepted/examples/go/clients/oapi"
	openapi_types "github.com/oapi-codegen/runtime/types"
)

func main() {
	os.Exit(run())
}

func run() int {
	base := env("ACCEPTED_URL", "http://localhost:8080")
	timeout, err := strconv.Atoi(env("ACCEPTED_TIMEOUT", "300"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ACCEPTED_TIMEOUT must be whole seconds:", err)
		return 1
	}
	var simulate *oapi.Simulate
	if s := os.Getenv("ACCEPTED_SIMULATE"); s != "" {
		if err := json.Unmarshal([]byte(s), &simulate); err != nil {
			fmt.Fprintln(os.Stderr, "ACCEPTED_SIMULATE:", err)
			return 1
		}
	}
	f, err := newFlow(base, os.Getenv("ACCEPTED_KEY"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ACCEPTED_URL:", err)
		return 1
	}

	// Ctrl-C and SIGTERM end interrupted; the deadline ends ctx only.
	interrupted, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(interrupted, time.Duration(timeout)*time.Second)
	defer cancel()

	if f.key == "" {
		if f.key, err = f.newKey(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "getting a sandbox key:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "using a new sandbox key %s (set ACCEPTED_KEY to reuse it)\n", f.key)
	}

	job, wait, err := f.start(ctx, simulate)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the job:", err)
		return 1
	}
	fmt.Printf("started %s (%s): %s; status at %s\n", job.Id, job.Kind, job.Status, job.StatusUrl)

	job, location, err := f.poll(ctx, job, wait)
	switch {
	case interrupted.Err() != nil:
		return f.cancel(job)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(os.Stderr, "gave up after %ds; the job goes on: %s\n", timeout, job.StatusUrl)
		return 1
	case err != nil:
		fmt.Fprintln(os.Stderr, "polling:", err)
		return 1
	case job.Status == oapi.JobStatusFailed:
		return failure(job)
	case job.Status == oapi.JobStatusCanceled:
		fmt.Printf("%s was canceled\n", job.Id)
		return 1
	}
	if err := f.printReport(ctx, location); err != nil {
		fmt.Fprintln(os.Stderr, "reading the result:", err)
		return 1
	}
	return 0
}

// flow holds the generated client and the API key it sends.
type flow struct {
	api *oapi.ClientWithResponses
	key string
}

// region client
// newFlow builds the generated client on an http.Client that does not
// follow redirects. The status monitor answers 303 See Other when the job
// has succeeded. Go's http.Client would follow it by itself, and the
// generated GetJob would then decode the report as a Job: no error, an
// empty status, and the report lost. Kept as it is, the 303 arrives in
// JSON303, with its Location in Headers303.
func newFlow(base, key string) (*flow, error) {
	f := &flow{key: key}
	httpClient := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	api, err := oapi.NewClientWithResponses(base,
		oapi.WithHTTPClient(httpClient),
		// The spec's bearerAuth: every request but POST /v1/sandbox/keys needs the key.
		oapi.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if f.key != "" {
				req.Header.Set("Authorization", "Bearer "+f.key)
			}
			return nil
		}))
	f.api = api
	return f, err
}

// endregion client

// newKey asks the sandbox for an API key (createSandboxKey).
func (f *flow) newKey(ctx context.Context) (string, error) {
	res, err := f.api.CreateSandboxKeyWithResponse(ctx)
	if err != nil {
		return "", err
	}
	if res.JSON201 == nil {
		return "", problemError("POST /v1/sandbox/keys", res.HTTPResponse, res.Body)
	}
	return res.JSON201.Key, nil
}

// region start
// start creates the report (createReport). The Idempotency-Key makes a
// retry safe: if the first POST reached the server but its answer was
// lost, the retry replays that answer instead of starting a second job.
// It returns the job and how long to wait before the first poll.
func (f *flow) start(ctx context.Context, simulate *oapi.Simulate) (oapi.Job, time.Duration, error) {
	title := "January"
	body := oapi.ReportRequest{
		Title:    &title,
		From:     openapi_types.Date{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		To:       openapi_types.Date{Time: time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)},
		Simulate: simulate,
	}
	idemKey := newUUID()
	params := &oapi.CreateReportParams{IdempotencyKey: &idemKey}
	res, err := f.api.CreateReportWithResponse(ctx, params, body)
	if isNetworkError(err) && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "POST failed (%v); retrying once with the same Idempotency-Key\n", err)
		res, err = f.api.CreateReportWithResponse(ctx, params, body)
	}
	if err != nil {
		return oapi.Job{}, 0, err
	}
	if res.JSON202 == nil { // a 4xx problem: nothing was created
		return oapi.Job{}, 0, problemError("POST /v1/reports", res.HTTPResponse, res.Body)
	}
	wait := time.Second
	if h := res.Headers202; h != nil && h.RetryAfter != nil {
		wait = time.Duration(*h.RetryAfter) * time.Second
	}
	return *res.JSON202, wait, nil
}

// endregion start

// region poll
// poll reads the status monitor (getJob) until the job is over, first
// after the 202's Retry-After. A running job answers 200 with Retry-After:
// we obey it. Without it, on 429 and on a 5xx, we back off (capped, with
// jitter). The 303 means the job succeeded: its Location is the result.
func (f *flow) poll(ctx context.Context, job oapi.Job, wait time.Duration) (oapi.Job, string, error) {
	for attempt := 0; ; attempt++ {
		if err := sleep(ctx, wait); err != nil {
			return job, "", err
		}
		wait = backoff(attempt) // unless the server says otherwise
		res, err := f.api.GetJobWithResponse(ctx, job.Id)
		switch {
		case err != nil && ctx.Err() != nil:
			return job, "", ctx.Err()
		case isNetworkError(err): // a GET is safe to repeat
			fmt.Fprintf(os.Stderr, "poll failed (%v); retrying in %s\n", err, wait)
		case err != nil: // the answer did not decode: asking again will not help
			return job, "", err
		case res.StatusCode() == http.StatusSeeOther: // done: the result is at Location
			if res.JSON303 != nil {
				job = *res.JSON303
			}
			if res.Headers303 == nil || res.Headers303.Location == nil {
				return job, "", errors.New("303 without a Location")
			}
			return job, *res.Headers303.Location, nil
		case res.JSON200 != nil:
			job = *res.JSON200
			if job.Status == oapi.JobStatusFailed || job.Status == oapi.JobStatusCanceled {
				return job, "", nil
			}
			if h := res.Headers200; h != nil && h.RetryAfter != nil {
				wait, attempt = time.Duration(*h.RetryAfter)*time.Second, -1 // the server knows best
			}
			fmt.Printf("%s: %s %d%%; next poll in %s  %s\n", job.Id, job.Status, job.PercentComplete, wait, deref(job.Message))
		case res.StatusCode() == http.StatusTooManyRequests || res.StatusCode() >= 500:
			if s, ok := retryAfter(res.HTTPResponse); ok {
				wait = max(wait, s)
			}
			fmt.Printf("%s: %s; next poll in %s\n", job.Id, res.Status(), wait)
		default: // 401, 404, 410: polling again will not help
			return job, "", problemError("GET /v1/jobs/"+job.Id, res.HTTPResponse, res.Body)
		}
	}
}

// endregion poll

// region result
// printReport reads the report the 303 pointed at. A generated client
// calls operations by their parameters, not by URL, so the report's id is
// taken from Location (/v1/reports/rpt_…) and passed to getReport.
func (f *flow) printReport(ctx context.Context, location string) error {
	id, err := reportID(location)
	if err != nil {
		return err
	}
	res, err := f.api.GetReportWithResponse(ctx, id)
	if err != nil {
		return err
	}
	if res.JSON200 == nil { // 409 result_not_ready, 410 job_expired…
		return problemError("GET "+location, res.HTTPResponse, res.Body)
	}
	rep := res.JSON200
	days := 0
	if rep.Days != nil {
		days = len(*rep.Days)
	}
	fmt.Printf("report %s %q %s..%s: %d days, %d orders, revenue %d.%02d, %d refunds\n",
		rep.Id, rep.Title, rep.From, rep.To, days, rep.Totals.Orders,
		rep.Totals.RevenueCents/100, rep.Totals.RevenueCents%100, rep.Totals.Refunds)
	return nil
}

// endregion result

// reportID takes a report's id from the Location of the monitor's 303.
func reportID(location string) (string, error) {
	u, err := url.Parse(location)
	if err != nil {
		return "", err
	}
	_, id, ok := strings.Cut(u.Path, "/v1/reports/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("the 303 points at %q, not at a report", location)
	}
	return id, nil
}

// region failure
// failure reports a failed job. Its error is an RFC 9457 problem whose
// code names an entry of the error catalog: branch on the code, show the
// title, and quote the job id to support.
func failure(job oapi.Job) int {
	p := job.Error
	if p == nil {
		p = &oapi.Problem{Code: "unknown", Title: "the job failed without an error"}
	}
	fmt.Fprintf(os.Stderr, "job %s failed: %s: %s\n", job.Id, p.Code, p.Title)
	if p.Detail != nil {
		fmt.Fprintf(os.Stderr, "  %s\n  more: %s\n", *p.Detail, p.Type)
	}
	return 3
}

// endregion failure

// region cancel
// cancel runs after Ctrl-C or SIGTERM: cancelJob (DELETE on the status
// monitor) stops the work on the server. The signal has ended the main
// context, so this request gets its own.
func (f *flow) cancel(job oapi.Job) int {
	fmt.Fprintf(os.Stderr, "interrupted: canceling %s\n", job.Id)
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	res, err := f.api.CancelJobWithResponse(ctx, job.Id)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "cancel failed:", err)
	case res.JSON200 != nil:
		fmt.Fprintf(os.Stderr, "%s canceled\n", job.Id)
	case res.StatusCode() == http.StatusConflict: // it finished first; its result stays readable
		fmt.Fprintf(os.Stderr, "%s had already finished\n", job.Id)
	default:
		fmt.Fprintln(os.Stderr, "cancel:", problemError("DELETE /v1/jobs/"+job.Id, res.HTTPResponse, res.Body))
	}
	return 130
}

// endregion cancel

// problemError turns an error answer into an error naming its catalog code.
func problemError(what string, res *http.Response, body []byte) error {
	var p oapi.Problem
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") && json.Unmarshal(body, &p) == nil {
		return fmt.Errorf("%s: %d %s: %s %s", what, res.StatusCode, p.Code, p.Title, deref(p.Detail))
	}
	return fmt.Errorf("%s: %s", what, res.Status)
}

// isNetworkError tells a failed exchange (worth retrying) from an answer
// the generated code could not decode (not worth it).
func isNetworkError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// retryAfter reads Retry-After as delay-seconds, the form the sandbox sends.
func retryAfter(res *http.Response) (time.Duration, bool) {
	s, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

// backoff is 1 s doubling per attempt, capped at 30 s, with "equal jitter":
// a random wait between half and all of it.
func backoff(attempt int) time.Duration {
	d := min(time.Second<<min(attempt, 5), 30*time.Second)
	return d/2 + rand.N(d/2+1)
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
