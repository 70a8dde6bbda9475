package api

import (
	"testing"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
)

// TestPollAfter pins the Retry-After a running job's monitor sends: a fifth
// of the time left, rounded up to whole seconds, at least 1 and at most 30,
// so a client polls a handful of times per job whatever its length; a job
// past its estimate gets a fifth of its expected run time.
func TestPollAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	queued := func(expected time.Duration) jobs.Job {
		return jobs.Job{Status: jobs.StatusQueued, Expected: expected}
	}
	running := func(expected, elapsed time.Duration) jobs.Job {
		return jobs.Job{Status: jobs.StatusProcessing, Expected: expected, StartedAt: now.Add(-elapsed)}
	}
	for _, tc := range []struct {
		name string
		job  jobs.Job
		want string
	}{
		{"instant job: at least 1", queued(0), "1"},
		{"5 s left: 1", queued(5 * time.Second), "1"},
		{"5.1 s left: rounded up to 2", queued(5100 * time.Millisecond), "2"},
		{"a minute left: 12", queued(time.Minute), "12"},
		{"150 s left: 30", queued(150 * time.Second), "30"},
		{"151 s left: capped at 30", queued(151 * time.Second), "30"},
		{"ten minutes: capped at 30", queued(10 * time.Minute), "30"},
		{"running, 40 of 60 s gone: 20 s left, 4", running(time.Minute, 40*time.Second), "4"},
		{"running past its estimate: a fifth of the whole, 12", running(time.Minute, 2*time.Minute), "12"},
	} {
		if got := pollAfter(tc.job, now); got != tc.want {
			t.Errorf("%s: Retry-After %s, want %s", tc.name, got, tc.want)
		}
	}
}
