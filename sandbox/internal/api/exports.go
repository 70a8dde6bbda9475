package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/exports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

const maxExportDays = 366

// CreateExportInput starts an export.
type CreateExportInput struct {
	Body  ExportRequest
	input exports.Input
}

// ExportRequest is the body of createExport.
type ExportRequest struct {
	Format      string    `json:"format" enum:"csv,ndjson" doc:"File format: csv (with a header row) or ndjson (one JSON object per line)." example:"csv"`
	From        string    `json:"from" maxLength:"10" format:"date" doc:"First day to export (inclusive), YYYY-MM-DD." example:"2026-01-01"`
	To          string    `json:"to" maxLength:"10" format:"date" doc:"Last day to export (inclusive), YYYY-MM-DD; at most 366 days after from." example:"2026-03-31"`
	Granularity string    `json:"granularity,omitempty" enum:"day,hour" default:"day" doc:"One row per region per day, or per hour." example:"day"`
	Simulate    *Simulate `json:"simulate,omitempty" doc:"Sandbox only: how this job should go. Leave it out for a normal run."`
}

// Resolve runs the checks a schema cannot express.
func (in *CreateExportInput) Resolve(huma.Context) []error {
	from, to, errs := dateRange(in.Body.From, in.Body.To, maxExportDays)
	p := exports.Params{Format: in.Body.Format, From: from, To: to, Granularity: in.Body.Granularity}
	if p.Granularity == "" {
		p.Granularity = "day"
	}
	sc, serrs := in.Body.Simulate.resolve(exportSeconds(p), "body.simulate")
	in.input = exports.Input{Params: p, Scenario: sc}
	return append(errs, serrs...)
}

// exportSeconds is the default simulated duration: a few seconds plus a
// little per row, up to two minutes.
func exportSeconds(p exports.Params) float64 {
	if p.To.Before(p.From) {
		return 3
	}
	return min(3+float64(p.Rows())/200, 120)
}

// ExportIDParam names an export.
type ExportIDParam struct {
	ID string `path:"id" maxLength:"64" pattern:"^exp_[a-z0-9]+$" doc:"The export id (from the job's links.resource)." example:"exp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
}

// Export describes an export and, once it is ready, its file.
type Export struct {
	ID          string      `json:"id" maxLength:"64" pattern:"^exp_[a-z0-9]+$" example:"exp_3u2k4v7qzbx6dcm5ey8f1hwra9" doc:"The export id."`
	JobID       string      `json:"job_id" maxLength:"64" pattern:"^job_[a-z0-9]+$" example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9" doc:"The job producing the file."`
	Status      string      `json:"status" enum:"queued,processing,succeeded,failed,canceled" doc:"The job's status." example:"succeeded"`
	Format      string      `json:"format" enum:"csv,ndjson" example:"csv"`
	From        string      `json:"from" maxLength:"10" example:"2026-01-01"`
	To          string      `json:"to" maxLength:"10" example:"2026-03-31"`
	Granularity string      `json:"granularity" enum:"day,hour" example:"day"`
	File        *ExportFile `json:"file,omitempty" doc:"Present once the job succeeded."`
}

// ExportFile describes a ready file.
type ExportFile struct {
	URL         string `json:"url" maxLength:"128" format:"uri-reference" doc:"Download URL." example:"/v1/exports/exp_3u2k4v7qzbx6dcm5ey8f1hwra9/file"`
	Name        string `json:"name" maxLength:"64" example:"sales-20260101-20260331.csv"`
	ContentType string `json:"content_type" maxLength:"64" example:"text/csv; charset=utf-8"`
	Rows        int    `json:"rows" minimum:"0" maximum:"26352" doc:"Data rows (not counting a CSV header)." example:"273"`
	Bytes       int64  `json:"bytes" minimum:"0" maximum:"16777216" example:"11748"`
	SHA256      string `json:"sha256" maxLength:"64" pattern:"^[0-9a-f]{64}$" doc:"Hex SHA-256 of the file, to check a download." example:"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"`
}

// ExportOutput is the export resource.
type ExportOutput struct {
	Body Export
}

// FileOutput streams an export file.
type FileOutput struct {
	Body func(huma.Context)
}

func (h *handlers) registerExports(api huma.API) {
	op := huma.Operation{
		OperationID: "createExport",
		Path:        "/v1/exports",
		Tags:        []string{"Exports"},
		Summary:     "Start an export",
		Description: "Starts writing sales data between two dates to a CSV or NDJSON file. Poll the `Location` and watch `percent_complete` rise; " +
			"when the job succeeds the monitor answers 303 See Other to the file's download URL.",
	}
	h.startOperation(api, &op)
	huma.Register(api, op, func(ctx context.Context, in *CreateExportInput) (*AcceptedOutput, error) {
		plan, err := exports.Plan(in.input, h.Scale)
		return h.accept(ctx, exports.Kind, in.input, plan, err)
	})

	get := huma.Operation{
		OperationID: "getExport",
		Method:      http.MethodGet,
		Path:        "/v1/exports/{id}",
		Tags:        []string{"Exports"},
		Summary:     "Describe an export",
		Description: "The export resource: its parameters, its job's status, and, once the job succeeded, the file's name, size, row count, SHA-256 and download URL.",
		Security:    []map[string][]string{{bearerScheme: {}}},
	}
	h.documentProblems(api, &get, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.ValidationFailed)
	huma.Register(api, get, h.getExport)

	file := huma.Operation{
		OperationID: "downloadExport",
		Method:      http.MethodGet,
		Path:        "/v1/exports/{id}/file",
		Tags:        []string{"Exports"},
		Summary:     "Download an export file",
		Description: "Streams the finished file with `Content-Type`, `Content-Disposition` and an exact `Content-Length`; this is where the status monitor's 303 points. " +
			"Before the job succeeded this answers 409 `result_not_ready`.",
		Security: []map[string][]string{{bearerScheme: {}}},
		Responses: map[string]*huma.Response{"200": {
			Description: "The file.",
			Headers: map[string]*huma.Param{
				"Content-Disposition": {Description: "attachment, with the file name.", Schema: &huma.Schema{Type: "string", MaxLength: ptr(128)}, Example: `attachment; filename="sales-20260101-20260331.csv"`},
				"Content-Length":      {Description: "The file's size in bytes.", Schema: &huma.Schema{Type: "integer", Format: "int64", Minimum: ptr(0.0), Maximum: ptr(16777216.0)}},
			},
			Content: map[string]*huma.MediaType{
				"text/csv":             {Schema: &huma.Schema{Type: "string"}, Example: "at,region,orders,revenue_cents,refunds\n2026-01-01T00:00:00Z,eu-west,212,838460,27\n"},
				"application/x-ndjson": {Schema: &huma.Schema{Type: "string"}, Example: `{"at":"2026-01-01T00:00:00Z","region":"eu-west","orders":212,"revenue_cents":838460,"refunds":27}` + "\n"},
			},
		}},
	}
	h.documentProblems(api, &file, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.ResultNotReady, problems.ValidationFailed)
	huma.Register(api, file, h.downloadExport)
}

func (h *handlers) getExport(ctx context.Context, in *ExportIDParam) (*ExportOutput, error) {
	instance := "/v1/exports/" + in.ID
	id, ok := jobIDFor(in.ID, exportPrefix)
	if !ok {
		return nil, h.problemFor(ctx, jobs.ErrNotFound, instance)
	}
	j, err := h.Engine.Get(ctx, owner(ctx), id)
	if err == nil && j.Kind != exports.Kind {
		err = jobs.ErrNotFound
	}
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	var input exports.Input
	if err := jsonUnmarshal(j.Input, &input); err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	p := input.Params
	out := &ExportOutput{Body: Export{ID: in.ID, JobID: j.ID, Status: string(j.Status), Format: p.Format,
		From: p.From.Format(time.DateOnly), To: p.To.Format(time.DateOnly), Granularity: p.Granularity}}
	if j.Status == jobs.StatusSucceeded {
		f, err := resultJSON[exports.File](j)
		if err != nil {
			return nil, h.problemFor(ctx, err, instance)
		}
		out.Body.File = &ExportFile{URL: instance + "/file", Name: f.Name, ContentType: f.ContentType, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256}
	}
	return out, nil
}

func (h *handlers) downloadExport(ctx context.Context, in *ExportIDParam) (*FileOutput, error) {
	instance := "/v1/exports/" + in.ID + "/file"
	j, err := h.resultJob(ctx, in.ID, exportPrefix, exports.Kind, instance)
	if err != nil {
		return nil, err
	}
	f, err := resultJSON[exports.File](j)
	if err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	var input exports.Input
	if err := jsonUnmarshal(j.Input, &input); err != nil {
		return nil, h.problemFor(ctx, err, instance)
	}
	return &FileOutput{Body: func(hc huma.Context) {
		hc.SetHeader("Content-Type", f.ContentType)
		hc.SetHeader("Content-Disposition", `attachment; filename="`+f.Name+`"`)
		hc.SetHeader("Content-Length", strconv.FormatInt(f.Bytes, 10))
		hc.SetHeader("Cache-Control", "private, max-age=3600")
		hc.SetStatus(http.StatusOK)
		if _, err := exports.Write(hc.BodyWriter(), input.Params); err != nil {
			// Headers are gone; the short body tells the client (Content-Length mismatch).
			h.Logger.WarnContext(ctx, "export download interrupted", "export", in.ID, "err", err)
		}
	}}, nil
}
