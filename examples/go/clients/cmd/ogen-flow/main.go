// Command ogen-flow runs the report flow with the client that ogen
// generates from the sandbox's spec (package ogenapi): it gets a key,
// starts a report, polls the status monitor as Retry-After says, reads the
// 303 See Other as "done, the result is at Location", and prints the
// report. A failed job prints its error-catalog code; Ctrl-C cancels the
// job.
//
//	cd examples/go/clients && go run ./cmd/ogen-flow
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
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/accepted-dev/accepted/examples/go/clients/ogenapi"
	"github.com/ogen-go/ogen/validate"
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
	var simulate ogenapi.OptSimulate
	if s := os.Getenv("ACCEPTED_SIMULATE"); s != "" {
		var sim ogenapi.Simulate
		if err := sim.UnmarshalJSON([]byte(s)); err != nil {
			fmt.Fprintln(os.Stderr, "ACCEPTED_SIMULATE:", err)
			return 1
		}
		simulate.SetTo(sim)
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
	fmt.Printf("started %s (%s): %s; status at %s\n", job.ID, job.Kind, job.Status, job.StatusURL)

	job, location, err := f.poll(ctx, job, wait)
	switch {
	case interrupted.Err() != nil:
		return f.cancel(job)
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Fprintf(os.Stderr, "gave up after %ds; the job goes on: %s\n", timeout, job.StatusURL)
		return 1
	case err != nil:
		fmt.Fprintln(os.Stderr, "polling:", err)
		return 1
	case job.Status == ogenapi.JobStatusFailed:
		return failure(job)
	case job.Status == ogenapi.JobStatusCanceled:
		fmt.Printf("%s was canceled\n", job.ID)
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
	api *ogenapi.Client
	key string
}

// region client
// newFlow builds the generated client on an http.Client that does not
// follow redirects. The status monitor answers 303 See Other when the job
// has succeeded. Go's http.Client would follow it by itself, and ogen would
// then fail to decode the report as a Job ("unexpected field"). Kept as it
// is, the 303 arrives as a *GetJobSeeOtherHeaders, with its Location.
func newFlow(base, key string) (*flow, error) {
	f := &flow{key: key}
	httpClient := &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	api, err := ogenapi.NewClient(base, bearer{f}, ogenapi.WithClient(httpClient))
	f.api = api
	return f, err
}

// bearer is the spec's bearerAuth: ogen asks it for the key on every
// operation that needs one (all but POST /v1/sandbox/keys).
type bearer struct{ f *flow }

func (b bearer) BearerAuth(context.Context, ogenapi.OperationName) (ogenapi.BearerAuth, error) {
	return ogenapi.BearerAuth{Token: b.f.key}, nil
}

// endregion client

// newKey asks the sandbox for an API key (createSandboxKey).
func (f *flow) newKey(ctx context.Context) (string, error) {
	res, err := f.api.CreateSandboxKey(ctx)
	if err != nil {
		return "", err
	}
	k, ok := res.(*ogenapi.SandboxKeyHeaders)
	if !ok {
		return "", problemError("POST /v1/sandbox/keys", res)
	}
	return k.Response.Key, nil
}

// region start
// start creates the report (createReport). The Idempotency-Key makes a
// retry safe: if the first POST reached the server but its answer was
// lost, the retry replays that answer instead of starting a second job.
// It returns the job and how long to wait before the first poll.
func (f *flow) start(ctx context.Context, simulate ogenapi.OptSimulate) (ogenapi.Job, time.Duration, error) {
	body := &ogenapi.ReportRequest{
		Title:    ogenapi.NewOptString("January"),
		From:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		To:       time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC),
		Simulate: simulate,
	}
	params := ogenapi.CreateReportParams{IdempotencyKey: ogenapi.NewOptString(newUUID())}
	res, err := f.api.CreateReport(ctx, body, params)
	if isNetworkError(err) && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "POST failed (%v); retrying once with the same Idempotency-Key\n", err)
		res, err = f.api.CreateReport(ctx, body, params)
	}
	if err != nil {
		return ogenapi.Job{}, 0, err
	}
	// A 202 is a *JobHeaders; anything else is a 4xx problem: nothing was created.
	accepted, ok := res.(*ogenapi.JobHeaders)
	if !ok {
		return ogenapi.Job{}, 0, problemError("POST /v1/reports", res)
	}
	wait := time.Duration(accepted.RetryAfter.Or(1)) * time.Second
	return accepted.Response, wait, nil
}

// endregion start

// region poll
// poll reads the status monitor (getJob) until the job is over, first
// after the 202's Retry-After. A running job answers 200 with Retry-After:
// we obey it. Without it, on 429 and on a 5xx, we back off (capped, with
// jitter). The 303 means the job succeeded: its Location is the result.
func (f *flow) poll(ctx context.Context, job ogenapi.Job, wait time.Duration) (ogenapi.Job, string, error) {
	for attempt := 0; ; attempt++ {
		if err := sleep(ctx, wait); err != nil {
			return job, "", err
		}
		wait = backoff(attempt) // unless the server says otherwise
		res, err := f.api.GetJob(ctx, ogenapi.GetJobParams{ID: job.ID})
		var unexpected *validate.UnexpectedStatusCodeError
		switch r := res.(type) {
		case nil:
			switch {
			case ctx.Err() != nil:
				return job, "", ctx.Err()
			case isNetworkError(err): // a GET is safe to repeat
				fmt.Fprintf(os.Stderr, "poll failed (%v); retrying in %s\n", err, wait)
			case errors.As(err, &unexpected) && unexpected.StatusCode >= 500: // not in the spec: a proxy's 502, a 503
				if s, ok := retryAfter(unexpected.Payload); ok {
					wait = max(wait, s)
				}
				fmt.Printf("%s: %d; next poll in %s\n", job.ID, unexpected.StatusCode, wait)
			default: // the answer did not decode: asking again will not help
				return job, "", err
			}
		case *ogenapi.GetJobSeeOtherHeaders: // done: the result is at Location
			location, ok := r.Location.Get()
			if !ok {
				return r.Response, "", errors.New("303 without a Location")
			}
			return r.Response, location, nil
		case *ogenapi.GetJobOKHeaders:
			job = r.Response
			if job.Status == ogenapi.JobStatusFailed || job.Status == ogenapi.JobStatusCanceled {
				return job, "", nil
			}
			if s, ok := r.RetryAfter.Get(); ok {
				wait, attempt = time.Duration(s)*time.Second, -1 // the server knows best
			}
			fmt.Printf("%s: %s %d%%; next poll in %s  %s\n", job.ID, job.Status, job.PercentComplete, wait, job.Message.Or(""))
		case *ogenapi.CreateExportConflictHeaders: // getJob's 429: ogen names a shared shape after its first use
			if s, ok := r.RetryAfter.Get(); ok {
				wait = max(wait, time.Duration(s)*time.Second)
			}
			fmt.Printf("%s: 429 %s; next poll in %s\n", job.ID, r.Response.Code, wait)
		default: // 401, 404, 410: polling again will not help
			return job, "", problemError("GET /v1/jobs/"+job.ID, res)
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
	res, err := f.api.GetReport(ctx, ogenapi.GetReportParams{ID: id})
	if err != nil {
		return err
	}
	got, ok := res.(*ogenapi.ReportHeaders)
	if !ok { // 409 result_not_ready, 410 job_expired…
		return problemError("GET "+location, res)
	}
	rep := got.Response
	fmt.Printf("report %s %q %s..%s: %d days, %d orders, revenue %d.%02d, %d refunds\n",
		rep.ID, rep.Title, rep.From, rep.To, len(rep.Days), rep.Totals.Orders,
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
func failure(job ogenapi.Job) int {
	p, ok := job.Error.Get()
	if !ok {
		p = ogenapi.Problem{Code: "unknown", Title: "the job failed without an error"}
	}
	fmt.Fprintf(os.Stderr, "job %s failed: %s: %s\n", job.ID, p.Code, p.Title)
	if detail, ok := p.Detail.Get(); ok {
		fmt.Fprintf(os.Stderr, "  %s\n  more: %s\n", detail, typeURI(p.Type))
	}
	return 3
}

// endregion failure

// typeURI prints a problem's type. ogen reads `format: uri` with
// url.ParseRequestURI, which leaves the fragment (#upstream_unavailable)
// in Path, so String() alone would print it as %23upstream_unavailable.
func typeURI(u url.URL) string {
	if path, fragment, ok := strings.Cut(u.Path, "#"); ok && u.Fragment == "" {
		u.Path, u.RawPath, u.Fragment = path, "", fragment
	}
	return u.String()
}

// region cancel
// cancel runs after Ctrl-C or SIGTERM: cancelJob (DELETE on the status
// monitor) stops the work on the server. The signal has ended the main
// context, so this request gets its own.
func (f *flow) cancel(job ogenapi.Job) int {
	fmt.Fprintf(os.Stderr, "interrupted: canceling %s\n", job.ID)
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	res, err := f.api.CancelJob(ctx, ogenapi.CancelJobParams{ID: job.ID})
	switch res.(type) {
	case nil:
		fmt.Fprintln(os.Stderr, "cancel failed:", err)
	case *ogenapi.CancelJobOKHeaders:
		fmt.Fprintf(os.Stderr, "%s canceled\n", job.ID)
	case *ogenapi.CancelJobConflict: // it finished first; its result stays readable
		fmt.Fprintf(os.Stderr, "%s had already finished\n", job.ID)
	default:
		fmt.Fprintln(os.Stderr, "cancel:", problemError("DELETE /v1/jobs/"+job.ID, res))
	}
	return 130
}

// endregion cancel

// problemError turns an error answer into an error naming its catalog code.
//
// ogen gives every error answer a type of its own (GetJobNotFound,
// CreateExportUnauthorizedHeaders…): some are the problem itself, others
// wrap it in Response beside the answer's headers. There is no interface
// they share, so this looks for the problem either way.
func problemError(what string, res any) error {
	problem := reflect.TypeFor[ogenapi.Problem]()
	v := reflect.Indirect(reflect.ValueOf(res))
	var p ogenapi.Problem
	switch {
	case v.Kind() != reflect.Struct:
		return fmt.Errorf("%s: unexpected answer %T", what, res)
	case v.Type().ConvertibleTo(problem):
		p = v.Convert(problem).Interface().(ogenapi.Problem)
	case v.FieldByName("Response").IsValid() && v.FieldByName("Response").Type() == problem:
		p = v.FieldByName("Response").Interface().(ogenapi.Problem)
	default:
		return fmt.Errorf("%s: unexpected answer %T", what, res)
	}
	return fmt.Errorf("%s: %d %s: %s %s", what, p.Status, p.Code, p.Title, p.Detail.Or(""))
}

// isNetworkError tells a failed exchange (worth retrying) from an answer
// the generated code could not decode (not worth it).
func isNetworkError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// retryAfter reads Retry-After as delay-seconds, the form the sandbox sends.
func retryAfter(res *http.Response) (time.Duration, bool) {
	if res == nil {
		return 0, false
	}
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

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
