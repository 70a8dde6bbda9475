package app

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestConformanceR39 is R39: the Idempotency-Key record and the job it
// answers for commit together. A fault between the two (in the job's
// transaction, before the record names the job) leaves neither: the
// request fails, no job exists, and a retry with the key makes exactly one.
// A crash after both committed but before the answer was stored leaves a
// record naming its job: a retry answers that job, and makes no other.
func TestConformanceR39(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var fault atomic.Value // the point to fail at, or ""
			fault.Store("")
			ts := newSandbox(t, nil, withBackend(backend), func(_ *Config, d *Deps) {
				d.Fault = func(point string) error {
					if fault.Load() == point {
						return errors.New("fault injected at " + point)
					}
					return nil
				}
			})
			key := ts.key(t)
			count := func() int {
				n, err := ts.s.JobCount(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				return n
			}

			t.Run("fault_between_record_and_job", func(t *testing.T) {
				before := count()
				fault.Store("idempotency-link")
				r := ts.do(t, http.MethodPost, "/v1/reports", key, reportBody(nil), "Idempotency-Key", "worst-1")
				if r.StatusCode != http.StatusInternalServerError {
					t.Fatalf("with the fault: %d %s, want 500", r.StatusCode, r.body)
				}
				if n := count(); n != before {
					t.Fatalf("the fault left %d jobs, want %d: a job without its record", n, before)
				}
				fault.Store("")
				first := ts.mustStartWith(t, key, "/v1/reports", reportBody(nil), "Idempotency-Key", "worst-1")
				second := ts.mustStartWith(t, key, "/v1/reports", reportBody(nil), "Idempotency-Key", "worst-1")
				if first.json(t)["id"] != second.json(t)["id"] || second.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("retries made jobs %v and %v, want one replayed", first.json(t)["id"], second.json(t)["id"])
				}
				if n := count(); n != before+1 {
					t.Errorf("%d jobs after the retries, want %d", n, before+1)
				}
			})

			t.Run("crash_before_the_answer_is_stored", func(t *testing.T) {
				before := count()
				fault.Store("idempotency-complete")
				first := ts.mustStartWith(t, key, "/v1/reports", reportBody(nil), "Idempotency-Key", "worst-2")
				fault.Store("")
				again := ts.mustStartWith(t, key, "/v1/reports", reportBody(nil), "Idempotency-Key", "worst-2")
				if again.json(t)["id"] != first.json(t)["id"] || again.Header.Get("Idempotent-Replayed") != "true" {
					t.Errorf("the retry answered job %v (replayed %q), want %v", again.json(t)["id"], again.Header.Get("Idempotent-Replayed"), first.json(t)["id"])
				}
				if again.Header.Get("Location") != first.Header.Get("Location") {
					t.Errorf("the retry's Location %q, want %q", again.Header.Get("Location"), first.Header.Get("Location"))
				}
				if n := count(); n != before+1 {
					t.Errorf("%d jobs, want %d", n, before+1)
				}
			})
		})
	}
}
