// Command producer is the server side of a 202 Accepted API in plain
// net/http: the few pieces a team needs to offer its own long-running
// operation the way the Accepted sandbox does.
//
//	POST /v1/reports      202 Accepted, Location: the status monitor, Retry-After, the job
//	GET  /v1/jobs/{id}    200 and Retry-After while it runs; 303 See Other to the result once done
//	GET  /v1/reports/{id} the result
//	DELETE /v1/jobs/{id}  cancel
//
// The work runs in a goroutine on the server's lifetime context, never the
// request's: the request ends with the 202, the work goes on. Jobs live in a
// map; a real service would keep them in its database.
//
//	go run ./examples/go/producer
//	ACCEPTED_URL=http://127.0.0.1:8090 ACCEPTED_KEY=any go run ./examples/go/poll
//
// Environment:
//
//	ACCEPTED_LISTEN        where to listen (default 127.0.0.1:8090; port 0 picks a free one)
//	ACCEPTED_WORK_SECONDS  how long each report takes (default 5)
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// retention is how long a finished job stays readable; after it, 410 Gone.
const retention = 24 * time.Hour

// Job is the one body every status answer carries.
type Job struct {
	ID              string    `json:"id"`
	Kind            string    `json:"kind"`
	Status          string    `json:"status"` // queued, processing, succeeded, failed, canceled
	StatusURL       string    `json:"status_url"`
	PercentComplete int       `json:"percent_complete"`
	SecondsLeft     int       `json:"estimated_seconds_remaining"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
	ResultURL       string    `json:"result_url,omitempty"`
	Error           *Problem  `json:"error,omitempty"`
}

// Problem is an RFC 9457 problem.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

// entry is a job with what only the server knows.
type entry struct {
	job    Job
	owner  string // the credentials that started it
	ends   time.Time
	cancel context.CancelFunc
	result json.RawMessage
}

type server struct {
	ctx  context.Context // the server's lifetime: work runs on it
	work time.Duration
	mu   sync.Mutex
	jobs map[string]*entry
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	secs, err := strconv.ParseFloat(env("ACCEPTED_WORK_SECONDS", "5"), 64)
	if err != nil {
		return fmt.Errorf("ACCEPTED_WORK_SECONDS: %w", err)
	}
	s := &server{ctx: ctx, work: time.Duration(secs * float64(time.Second)), jobs: map[string]*entry{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/reports", s.accept)
	mux.HandleFunc("GET /v1/jobs/{id}", s.status)
	mux.HandleFunc("DELETE /v1/jobs/{id}", s.cancel)
	mux.HandleFunc("GET /v1/reports/{id}", s.result)

	ln, err := net.Listen("tcp", env("ACCEPTED_LISTEN", "127.0.0.1:8090"))
	if err != nil {
		return err
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done() // the signal also stops the work, through s.ctx
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := srv.Shutdown(shutdown); err != nil {
			log.Printf("shutting down: %v", err)
		}
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// region accept
// accept validates the request at once (a bad one gets a 4xx problem and no
// job), records the job, starts the work and answers 202 with the status
// monitor in Location, a first Retry-After, and the job itself.
func (s *server) accept(w http.ResponseWriter, r *http.Request) {
	var req struct{ Title, From, To string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "malformed_request", "Request could not be parsed", err.Error())
		return
	}
	from, err1 := time.Parse(time.DateOnly, req.From)
	to, err2 := time.Parse(time.DateOnly, req.To)
	if err1 != nil || err2 != nil || to.Before(from) {
		problem(w, http.StatusUnprocessableEntity, "validation_failed", "Request failed validation", "from and to must be YYYY-MM-DD dates, from first")
		return
	}
	now := time.Now().UTC()
	id := "job_" + strings.ToLower(rand.Text()) // 130 random bits: ids cannot be guessed
	ctx, cancel := context.WithCancel(s.ctx)    // not r.Context(): that ends with this response
	e := &entry{owner: r.Header.Get("Authorization"), ends: now.Add(s.work), cancel: cancel, job: Job{
		ID: id, Kind: "report", Status: "queued", StatusURL: "/v1/jobs/" + id, CreatedAt: now, UpdatedAt: now,
	}}
	s.mu.Lock()
	s.jobs[id] = e
	job := s.view(e, now)
	s.mu.Unlock()
	go s.runReport(ctx, e, req.Title, from, to)

	w.Header().Set("Location", job.StatusURL)
	w.Header().Set("Retry-After", retryAfter(job))
	writeJSON(w, http.StatusAccepted, job)
}

// endregion accept

// region status
// status is the monitor: 200 with Retry-After while the job runs, 303 See
// Other to the result once it succeeded, 200 with the problem if it failed.
// Only the credentials that started a job can see it (404 for others, so ids
// cannot be probed), and a long-finished job is 410 Gone.
func (s *server) status(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	job := s.view(e, time.Now())
	s.mu.Unlock()
	switch job.Status {
	case "queued", "processing":
		w.Header().Set("Retry-After", retryAfter(job))
		writeJSON(w, http.StatusOK, job)
	case "succeeded":
		w.Header().Set("Location", job.ResultURL)
		writeJSON(w, http.StatusSeeOther, job)
	default: // failed or canceled: terminal, no Retry-After
		writeJSON(w, http.StatusOK, job)
	}
}

// retryAfter asks for the next poll after about a fifth of the time left,
// 1 to 30 s, in delay-seconds.
func retryAfter(job Job) string {
	return strconv.Itoa(min(max(int(math.Ceil(float64(job.SecondsLeft)/5)), 1), 30))
}

// endregion status

// runReport does the work in steps, reporting progress, until done or
// cancelled. A panic or error would end the job failed with a problem.
func (s *server) runReport(ctx context.Context, e *entry, title string, from, to time.Time) {
	const steps = 5
	for i := range steps {
		s.update(e, func(j *Job) { j.Status, j.PercentComplete = "processing", i*100/steps })
		select {
		case <-ctx.Done():
			return // cancelled, or the server is stopping
		case <-time.After(s.work / steps):
		}
	}
	var days []map[string]any
	totals := map[string]any{"orders": 0, "revenue_cents": 0, "refunds": 0}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		orders := 100 + d.YearDay()%17
		days = append(days, map[string]any{"date": d.Format(time.DateOnly), "orders": orders, "revenue_cents": orders * 2599, "refunds": orders / 20})
		totals["orders"] = totals["orders"].(int) + orders
		totals["revenue_cents"] = totals["revenue_cents"].(int) + orders*2599
		totals["refunds"] = totals["refunds"].(int) + orders/20
	}
	rptID := "rpt_" + strings.TrimPrefix(e.job.ID, "job_")
	result, _ := json.Marshal(map[string]any{"id": rptID, "job_id": e.job.ID, "title": title,
		"from": from.Format(time.DateOnly), "to": to.Format(time.DateOnly), "days": days, "totals": totals})
	s.update(e, func(j *Job) {
		j.Status, j.PercentComplete, j.ResultURL = "succeeded", 100, "/v1/reports/"+rptID
		e.result = result
	})
}

// update changes a job under the lock, unless it already ended: terminal
// states never change.
func (s *server) update(e *entry, f func(*Job)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := e.job.Status; st == "succeeded" || st == "failed" || st == "canceled" {
		return
	}
	f(&e.job)
	e.job.UpdatedAt = time.Now().UTC()
}

// view is the job as clients see it now; the caller holds the lock.
func (s *server) view(e *entry, now time.Time) Job {
	j := e.job
	if j.Status == "queued" || j.Status == "processing" {
		j.SecondsLeft = max(int(math.Ceil(e.ends.Sub(now).Seconds())), 0)
	}
	return j
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	done := e.job.Status == "succeeded" || e.job.Status == "failed" || e.job.Status == "canceled"
	s.mu.Unlock()
	if done {
		problem(w, http.StatusConflict, "job_already_finished", "Job already finished", "")
		return
	}
	s.update(e, func(j *Job) { j.Status = "canceled" })
	e.cancel() // stops the work
	s.mu.Lock()
	job := s.view(e, time.Now())
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, job)
}

func (s *server) result(w http.ResponseWriter, r *http.Request) {
	r.SetPathValue("id", "job_"+strings.TrimPrefix(r.PathValue("id"), "rpt_"))
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	result := e.result
	s.mu.Unlock()
	if result == nil {
		problem(w, http.StatusConflict, "result_not_ready", "Result not ready", "poll the status monitor")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(result); err != nil {
		log.Printf("writing the result: %v", err) // the client went away
	}
}

// lookup finds the job named in the path for these credentials.
func (s *server) lookup(w http.ResponseWriter, r *http.Request) (*entry, bool) {
	s.mu.Lock()
	e, ok := s.jobs[r.PathValue("id")]
	expired := ok && !e.job.UpdatedAt.IsZero() && e.job.Status != "queued" && e.job.Status != "processing" &&
		time.Since(e.job.UpdatedAt) > retention
	s.mu.Unlock()
	switch {
	case !ok || e.owner != r.Header.Get("Authorization"):
		problem(w, http.StatusNotFound, "not_found", "Resource not found", "")
	case expired:
		problem(w, http.StatusGone, "job_expired", "Job expired", "")
	default:
		return e, true
	}
	return nil, false
}

func problem(w http.ResponseWriter, status int, code, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(Problem{Type: "https://example.com/errors#" + code, Title: title, Status: status, Code: code, Detail: detail}); err != nil {
		log.Printf("writing a problem: %v", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // a status changes: never cache it
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Printf("writing a response: %v", err)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
