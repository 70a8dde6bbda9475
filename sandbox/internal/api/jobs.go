package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// JobIDParam names a job in the path.
type JobIDParam struct {
	ID string `path:"id" maxLength:"64" pattern:"^job_[a-z0-9]+$" doc:"The job id from the 202 response." example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
}

// JobOutput is the status monitor's answer: 200 while the job runs or once
// it failed or was cancelled, 303 See Other to the result once it succeeded.
type JobOutput struct {
	Status       int
	Location     string `header:"Location" doc:"Present on 303: where the result is."`
	RetryAfter   string `header:"Retry-After" doc:"Present while the job is queued or processing: seconds to wait before the next poll."`
	CacheControl string `header:"Cache-Control" maxLength:"64" doc:"Always no-store: a job's status must not be served from a cache."`
	Body         Job
}

// CancelOutput is the job after cancellation.
type CancelOutput struct {
	CacheControl string `header:"Cache-Control" maxLength:"64"`
	Body         Job
}

func (h *handlers) registerJobs(api huma.API) {
	get := huma.Operation{
		OperationID: "getJob",
		Method:      http.MethodGet,
		Path:        "/v1/jobs/{id}",
		Tags:        []string{"Jobs"},
		Summary:     "Poll a job (the status monitor)",
		Description: "The status monitor of every flow: the URL in the `Location` header of a 202.\n\n" +
			"- While the job is `queued` or `processing`: **200** with the job and `Retry-After`, the seconds to wait before polling again.\n" +
			"- Once it `succeeded`: **303 See Other** with `Location` set to the result. A client that follows redirects lands on the result; one that does not reads `Location` (or `result_url`).\n" +
			"- Once it `failed`: **200** with `status: failed` and an `error` problem from the error catalog. Polling again will not change it.\n" +
			"- Once it was `canceled`: **200** with `status: canceled`.\n\n" +
			"The monitor answers for the job's retention window after it ends (`expires_at`), then **410 Gone**. " +
			"Only the API key that started the job can read it; any other key gets 404.",
		Security:      []map[string][]string{{bearerScheme: {}}},
		DefaultStatus: http.StatusOK,
		Metadata:      map[string]any{policyKey: PolicyPoll},
	}
	h.documentProblems(api, &get, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.RateLimited, problems.ValidationFailed)
	get.Responses["303"] = &huma.Response{
		Description: "The job succeeded: follow `Location` to the result. The body is the finished job.",
		Headers: map[string]*huma.Param{
			"Location": {Description: "The result: the same URL as `result_url`.", Schema: &huma.Schema{Type: "string", Format: "uri-reference"}, Example: "/v1/reports/rpt_3u2k4v7qzbx6dcm5ey8f1hwra9"},
		},
		Content: map[string]*huma.MediaType{"application/json": {
			Schema: api.OpenAPI().Components.Schemas.Schema(jobType, true, ""),
		}},
	}
	huma.Register(api, get, h.getJob)

	del := huma.Operation{
		OperationID: "cancelJob",
		Method:      http.MethodDelete,
		Path:        "/v1/jobs/{id}",
		Tags:        []string{"Jobs"},
		Summary:     "Cancel a job",
		Description: "Cancels a job that is `queued` or `processing`: the work stops and the job ends `canceled`, a terminal state. " +
			"Answers 200 with the cancelled job. A job that already finished cannot be cancelled: 409 `job_already_finished`.",
		Security:      []map[string][]string{{bearerScheme: {}}},
		DefaultStatus: http.StatusOK,
	}
	h.documentProblems(api, &del, problems.Unauthorized, problems.NotFound, problems.JobExpired, problems.JobAlreadyFinished, problems.ValidationFailed)
	huma.Register(api, del, h.cancelJob)
}

func (h *handlers) getJob(ctx context.Context, in *JobIDParam) (*JobOutput, error) {
	j, err := h.Engine.Get(ctx, owner(ctx), in.ID)
	if err != nil {
		return nil, h.problemFor(ctx, err, statusURL(in.ID))
	}
	out := &JobOutput{CacheControl: "no-store", Body: h.view(j)}
	out.Status, out.Location, out.RetryAfter = h.pollAnswer(j)
	return out, nil
}

// pollAnswer is what the status monitor answers for j besides its body
// (getJob, and the poll shortcut): 303 with the result's Location once it
// succeeded, 200 otherwise, with Retry-After while it runs.
func (h *handlers) pollAnswer(j jobs.Job) (status int, location, retryAfter string) {
	switch {
	case j.Status == jobs.StatusSucceeded:
		return http.StatusSeeOther, resultURL(j), ""
	case !j.Status.Terminal():
		return http.StatusOK, "", pollAfter(j, h.Clock.Now())
	}
	return http.StatusOK, "", ""
}

func (h *handlers) cancelJob(ctx context.Context, in *JobIDParam) (*CancelOutput, error) {
	j, err := h.Engine.Cancel(ctx, owner(ctx), in.ID)
	if err != nil {
		return nil, h.problemFor(ctx, err, statusURL(in.ID))
	}
	return &CancelOutput{CacheControl: "no-store", Body: h.view(j)}, nil
}
