// Command events follows a job on the Accepted sandbox live, with
// server-sent events instead of polling, and resumes where it left off
// (Last-Event-ID) when the connection drops.
//
// It needs only the Go standard library:
//
//	go run ./examples/go/events
//
// Environment:
//
//	ACCEPTED_URL        the sandbox (default http://localhost:8080)
//	ACCEPTED_KEY        your API key; when empty, a new sandbox key is made and printed
//	ACCEPTED_JOB        a job id to follow; when empty, a new report is started
//	ACCEPTED_SIMULATE   the new report's sandbox scenario as JSON, e.g. {"duration_seconds":20}
//	ACCEPTED_DROP_ONCE  1: drop the connection once after the first event, to see the resume
//
// Exit status: 0 the job succeeded, 1 error, 3 the job failed, 130 interrupted.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Event is one server-sent event.
type Event struct {
	ID, Type, Data string
}

// Job is the part of the job object (each event's data) this program reads.
type Job struct {
	ID              string `json:"id"`
	Status          string `json:"status"`
	PercentComplete int    `json:"percent_complete"`
	Message         string `json:"message"`
	ResultURL       string `json:"result_url"`
	Error           *struct {
		Code, Title string
	} `json:"error"`
}

// fatalError is an answer that reconnecting cannot fix (401, 404, 410…).
type fatalError struct{ error }

type stream struct {
	base, key string
	dropOnce  bool
	lastID    string        // the id of the last event received
	job       Job           // the job as the last event showed it
	retry     time.Duration // the server's reconnection hint
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx))
}

func run(ctx context.Context) int {
	s := &stream{base: env("ACCEPTED_URL", "http://localhost:8080"), key: os.Getenv("ACCEPTED_KEY"),
		dropOnce: os.Getenv("ACCEPTED_DROP_ONCE") == "1", retry: 2 * time.Second}
	if s.key == "" {
		var k struct{ Key string }
		if err := s.post(ctx, "/v1/sandbox/keys", nil, http.StatusCreated, &k); err != nil {
			fmt.Fprintln(os.Stderr, "getting a sandbox key:", err)
			return 1
		}
		s.key = k.Key
		fmt.Fprintf(os.Stderr, "using a new sandbox key %s (set ACCEPTED_KEY to reuse it)\n", s.key)
	}
	jobID := os.Getenv("ACCEPTED_JOB")
	if jobID == "" {
		body := `{"title":"Live","from":"2026-01-01","to":"2026-01-31"}`
		if sim := os.Getenv("ACCEPTED_SIMULATE"); sim != "" {
			body = strings.TrimSuffix(body, "}") + `,"simulate":` + sim + "}"
		}
		var job Job
		if err := s.post(ctx, "/v1/reports", []byte(body), http.StatusAccepted, &job); err != nil {
			fmt.Fprintln(os.Stderr, "starting a report:", err)
			return 1
		}
		jobID = job.ID
		fmt.Printf("started %s\n", jobID)
	}

	job, err := s.follow(ctx, "/v1/jobs/"+jobID+"/events")
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "interrupted; the job goes on (DELETE /v1/jobs/"+jobID+" cancels it)")
		return 130
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	case job.Status == "succeeded":
		fmt.Printf("done: the result is at %s\n", job.ResultURL)
		return 0
	case job.Status == "failed" && job.Error != nil:
		fmt.Fprintf(os.Stderr, "job %s failed: %s: %s\n", job.ID, job.Error.Code, job.Error.Title)
		return 3
	default:
		fmt.Printf("job %s ended %s\n", job.ID, job.Status)
		return 1
	}
}

// region resume
// follow reads the job's event stream until its terminal event. When the
// connection drops it waits the server's retry hint (doubling while
// reconnects keep failing) and reconnects with Last-Event-ID, so the server
// sends only what changed since the last event we have.
func (s *stream) follow(ctx context.Context, path string) (Job, error) {
	wait := s.retry
	for {
		seen := s.lastID
		done, err := s.connect(ctx, path)
		if done || ctx.Err() != nil || errors.As(err, new(fatalError)) {
			return s.job, err
		}
		if s.lastID != seen { // events arrived: the connection was good
			wait = s.retry
		}
		fmt.Printf("connection lost (%v); reconnecting in %s with Last-Event-ID: %s\n", err, wait, s.lastID)
		select {
		case <-ctx.Done():
			return s.job, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// endregion resume

// connect opens the stream once and reads events until the terminal one
// (done), the end of the stream, or an error.
func (s *stream) connect(ctx context.Context, path string) (done bool, err error) {
	ctx, drop := context.WithCancel(ctx)
	defer drop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return false, fatalError{err}
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Accept", "text/event-stream")
	if s.lastID != "" {
		req.Header.Set("Last-Event-ID", s.lastID)
	}
	res, err := http.DefaultClient.Do(req) // no client timeout: the stream is long-lived
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusNoContent: // finished, and we already have its last event
		return true, nil
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return false, errors.New(res.Status)
	case res.StatusCode != http.StatusOK:
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return false, fatalError{fmt.Errorf("GET %s: %s %s", path, res.Status, msg)}
	}
	err = readEvents(res.Body, func(ev Event, retry time.Duration) error {
		if retry > 0 {
			s.retry = retry
		}
		if ev.ID != "" {
			s.lastID = ev.ID
		}
		if err := json.Unmarshal([]byte(ev.Data), &s.job); err != nil {
			return fatalError{fmt.Errorf("event %s: %w", ev.ID, err)}
		}
		fmt.Printf("event %s %s: %s %d%%  %s\n", ev.ID, ev.Type, s.job.Status, s.job.PercentComplete, s.job.Message)
		if ev.Type != "progress" {
			done = true
			return io.EOF
		}
		if s.dropOnce { // for the demo: lose the connection once, as a flaky network would
			s.dropOnce = false
			fmt.Printf("dropping the connection after event %s\n", ev.ID)
			drop()
		}
		return nil
	})
	switch {
	case done:
		return true, nil
	case err == nil: // the server closed the stream (streams last 5 minutes)
		return false, errors.New("the stream ended")
	}
	return false, err
}

// readEvents parses text/event-stream (WHATWG HTML §9.2) and calls fn for
// each event; fn's error stops the reading. Comments (": keep-alive") are
// skipped; retry sets the reconnection time.
func readEvents(r io.Reader, fn func(Event, time.Duration) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sc.Split(scanLines)
	var ev Event
	var data []string
	var retry time.Duration
	for sc.Scan() {
		line := sc.Text()
		if line == "" { // a blank line dispatches the event
			if len(data) > 0 {
				ev.Data = strings.Join(data, "\n")
				if err := fn(ev, retry); err != nil {
					return err
				}
			}
			ev.Type, data, retry = "", nil, 0 // the id carries over, as the spec says
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment
		case "event":
			ev.Type = value
		case "data":
			data = append(data, value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				ev.ID = value
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	return sc.Err()
}

// scanLines splits at "\n", "\r\n" or a lone "\r", the three line ends
// event streams allow.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0 && atEOF && len(data) > 0:
		return len(data), data, nil
	case i < 0:
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data): // "\r", then maybe "\n"
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil // a "\r" at the end: wait to see if "\n" follows
}

// post sends a JSON POST and decodes the answer when it has status want.
func (s *stream) post(ctx context.Context, path string, body []byte, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("POST %s: %s %s", path, res.Status, msg)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
