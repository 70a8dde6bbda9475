package app

import "testing"

// stuck runs examples/curl/stuck.sh, the walk-through of the guide "When a
// job is stuck or failed", and checks that each step showed what the guide
// says it shows.
func (ex *exEnv) stuck(t *testing.T) {
	p := ex.start(t, "curl", "stuck")
	if code := p.wait(t); code != 0 {
		t.Fatalf("stuck.sh exited %d", code)
	}
	out := p.stdout.String()
	for _, re := range []string{
		`(?m)^1\. accepted (job_[a-z2-7]{26}); its status monitor is /v1/jobs/job_`,
		`(?m)^2\. GET /v1/jobs/job_\S+: 200, (queued|processing) at \d+%, Retry-After: \d+$`,
		`(?m)^3\. job_\S+ ended failed: job_stalled \(`,
		`(?m)^4\. failed: job_\S+ \(report\) at \S+: job_stalled$`,
		`(?m)^5\. dead letter msg_\S+: disabled: 410 Gone`,
		`(?m)^   redeliver with POST /v1/imports/imp_[a-z2-7]{26}/deliveries$`,
		`(?m)^6\. redelivered msg_\S+: delivered$`,
		`(?m)^7\. job_\S+: trace_id `,
		`(?m)^   for support: job job_\S+, trace \S+, created 20\d\d-`,
		`(?m)^8\. a poll after a burst of 60 answered 429 rate_limited: Retry-After: \d+$`,
		`(?m)^   RateLimit-Policy: "poll";q=\d+;w=\d+`,
	} {
		exMustMatch(t, "stuck.sh's output", out, re)
	}
}
