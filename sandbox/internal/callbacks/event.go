package callbacks

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/imports"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/problems"
)

// The payload of an import's webhook. The API documents these types as the
// spec's ImportEvent schema, so what is sent and what is documented are one
// definition.

// MaxRejectedInEvent bounds the rejected rows a webhook carries, so the
// payload stays far under the 20 kB Standard Webhooks asks for; the rest
// are at result_url.
const MaxRejectedInEvent = 20

// ImportEvent is the payload of every import webhook.
type ImportEvent struct {
	Type      string          `json:"type" enum:"import.complete,import.partial,import.failed" doc:"The event type." example:"import.partial"`
	Timestamp time.Time       `json:"timestamp" maxLength:"35" doc:"When the import ended (RFC 3339)."`
	Data      ImportEventData `json:"data"`
}

// ImportEventData is the data of an import webhook.
type ImportEventData struct {
	ImportID      string            `json:"import_id" maxLength:"64" pattern:"^imp_[a-z0-9]+$" doc:"The import." example:"imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	JobID         string            `json:"job_id" maxLength:"64" pattern:"^job_[a-z0-9]+$" doc:"The job that ran it." example:"job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Status        string            `json:"status" enum:"succeeded,failed,canceled" doc:"The job's terminal status. An import whose every row was rejected still succeeded as a job (its event is import.failed)." example:"succeeded"`
	TotalRows     int               `json:"total_rows" minimum:"0" maximum:"1000" doc:"Rows sent." example:"3"`
	Imported      int               `json:"imported" minimum:"0" maximum:"1000" doc:"Rows imported." example:"2"`
	RejectedCount int               `json:"rejected_count" minimum:"0" maximum:"1000" doc:"Rows rejected." example:"1"`
	Rejected      []RejectedRow     `json:"rejected" maxItems:"20" doc:"The first 20 rejected rows; all of them are at result_url."`
	ResultURL     string            `json:"result_url,omitempty" doc:"The import's result, once its job succeeded (absolute URL; same API key)." example:"https://sandbox.example.com/v1/imports/imp_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	StatusURL     string            `json:"status_url" doc:"The job's status monitor (absolute URL)." example:"https://sandbox.example.com/v1/jobs/job_3u2k4v7qzbx6dcm5ey8f1hwra9"`
	Error         *problems.Problem `json:"error,omitempty" doc:"Why the job failed, when status is failed: a problem from the error catalog."`
}

// RejectedRow is a row that was not imported.
type RejectedRow struct {
	Row    int    `json:"row" minimum:"1" maximum:"1000" doc:"The row's position in the request, from 1." example:"3"`
	SKU    string `json:"sku" maxLength:"64" example:"MUG-BLUE-350"`
	Reason string `json:"reason" maxLength:"256" doc:"Why, and what to do about it." example:"duplicate of row 1: SKU MUG-BLUE-350 appears more than once in this import; merge the rows or remove this one"`
}

// The API's paths that an event links to (absolute, from the public URL).
// They are the API's: its tests follow the links an event carries.

// ImportID is the import id of an import job: the two share their random
// part.
func ImportID(jobID string) string { return "imp_" + strings.TrimPrefix(jobID, "job_") }

func statusPath(jobID string) string { return "/v1/jobs/" + jobID }

func importPath(jobID string) string { return "/v1/imports/" + ImportID(jobID) }

// event is the type and data of a finished import's webhook.
func (s *Service) event(j jobs.Job, in imports.Input) (string, ImportEventData) {
	base := s.public.Load().String()
	d := ImportEventData{ImportID: ImportID(j.ID), JobID: j.ID, Status: string(j.Status), TotalRows: len(in.Rows),
		StatusURL: base + statusPath(j.ID), Rejected: []RejectedRow{}}
	if j.Status != jobs.StatusSucceeded {
		// A cancelled job says so in status; a failed one carries its problem.
		if j.Status == jobs.StatusFailed {
			code, detail := problems.InternalError, "The import job failed."
			if j.Failure != nil {
				code, detail = j.Failure.Code, j.Failure.Detail
			}
			d.Error = s.cfg.Catalog.New(code, detail).WithJob(j.ID).WithInstance(statusPath(j.ID))
		}
		return imports.EventFailed, d
	}
	var r imports.Result
	if err := json.Unmarshal(j.Output, &r); err != nil {
		s.cfg.Logger.Error("import result unreadable: its webhook says import.failed", "job", j.ID, "err", err)
		return imports.EventFailed, d
	}
	d.TotalRows, d.Imported, d.RejectedCount = r.TotalRows, r.Imported, len(r.Rejected)
	for _, rj := range r.Rejected[:min(len(r.Rejected), MaxRejectedInEvent)] {
		d.Rejected = append(d.Rejected, RejectedRow(rj))
	}
	d.ResultURL = base + importPath(j.ID)
	return r.Event(), d
}
