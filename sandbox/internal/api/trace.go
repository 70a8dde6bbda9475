package api

import (
	"context"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/problems"
	"github.com/accepted-dev/accepted/sandbox/internal/telemetry"
)

// Every answer names its trace in the Trace-Id header (the server's
// handler sets it); a problem repeats it as trace_id, and a job says which
// trace started it, so whatever a developer pastes into a support request
// leads an operator to the trace.

// withTrace is p with the trace id of ctx's request, as a copy: a problem
// value may be shared.
func withTrace(ctx context.Context, p *problems.Problem) *problems.Problem {
	id := telemetry.TraceID(ctx)
	if p == nil || id == "" || p.TraceID == id {
		return p
	}
	cp := *p
	cp.TraceID = id
	return &cp
}

// traceProblems is a Huma transformer: problems Huma writes (those handlers
// return, and those it raises itself) carry the trace id.
func traceProblems(ctx huma.Context, _ string, v any) (any, error) {
	if p, ok := v.(*problems.Problem); ok {
		return withTrace(ctx.Context(), p), nil
	}
	return v, nil
}

// traceID is the trace id in a job's traceparent.
func traceID(traceparent string) string {
	if traceparent == "" {
		return ""
	}
	return telemetry.TraceIDOf(traceparent)
}
