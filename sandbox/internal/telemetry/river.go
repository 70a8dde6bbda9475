package telemetry

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// metadataKey holds, in a River job's metadata, the trace context of
// whoever inserted it.
const metadataKey = "otel"

// RiverMiddleware traces River: an insert stores the trace context of its
// caller in the job's metadata, and each run of the job is a span whose
// parent is that context. So the runs that work a job accepted by a POST
// are children of the POST's span, in its trace, and a webhook queued by
// the run that ended the job belongs to that trace too. (River's own
// otelriver links a run to its insert instead, starting a new trace per
// run, which is not what a support request that quotes one trace id
// needs.) A job snoozed between steps makes one span per run.
type RiverMiddleware struct {
	river.MiddlewareDefaults

	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

var (
	_ rivertype.JobInsertMiddleware = (*RiverMiddleware)(nil)
	_ rivertype.WorkerMiddleware    = (*RiverMiddleware)(nil)
)

// NewRiverMiddleware traces with tp, carrying the context with p.
func NewRiverMiddleware(tp trace.TracerProvider, p propagation.TextMapPropagator) *RiverMiddleware {
	return &RiverMiddleware{tracer: tp.Tracer(instrumentation), propagator: p}
}

// InsertMany stores the caller's trace context in each job's metadata.
func (m *RiverMiddleware) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return doInner(ctx)
	}
	c := propagation.MapCarrier{}
	m.propagator.Inject(ctx, c)
	for _, p := range params {
		meta := map[string]any{}
		if len(p.Metadata) > 0 {
			if err := json.Unmarshal(p.Metadata, &meta); err != nil {
				continue // not an object: leave it as it is
			}
		}
		meta[metadataKey] = map[string]string(c)
		if b, err := json.Marshal(meta); err == nil {
			p.Metadata = b
		}
	}
	return doInner(ctx)
}

// Work runs the job inside a span, a child of the context stored at insert.
func (m *RiverMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	var meta struct {
		Otel map[string]string `json:"otel"`
	}
	if len(job.Metadata) > 0 && json.Unmarshal(job.Metadata, &meta) == nil && len(meta.Otel) > 0 {
		ctx = m.propagator.Extract(ctx, propagation.MapCarrier(meta.Otel))
	}
	ctx, span := m.tracer.Start(ctx, "river.work/"+job.Kind, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "river"),
			attribute.String("messaging.destination.name", job.Queue),
			attribute.Int64("river.job.id", job.ID),
			attribute.String("river.job.kind", job.Kind),
			attribute.Int("river.job.attempt", job.Attempt),
		))
	defer span.End()
	err := doInner(ctx)
	var snooze *river.JobSnoozeError
	switch {
	case err == nil:
	case errors.As(err, &snooze):
		span.SetAttributes(attribute.String("river.snooze", snooze.Duration.String()))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}
