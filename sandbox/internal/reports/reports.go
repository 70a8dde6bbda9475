// Package reports builds sales reports: the result of the sandbox's report
// flow (POST /v1/reports → 202 → poll → 303 → the report).
package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dataset"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
)

// Kind is the job kind of report jobs.
const Kind jobs.Kind = "report"

// Params is what a client asks for.
type Params struct {
	Title string    `json:"title"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"` // inclusive
}

// Days is the number of days the report covers.
func (p Params) Days() int { return int(p.To.Sub(p.From).Hours()/24) + 1 }

// Input is what a report job carries: the parameters and the scenario that
// decides how the simulated run goes.
type Input struct {
	Params   Params            `json:"params"`
	Scenario simulate.Scenario `json:"scenario"`
}

// Row is one day of the report.
type Row struct {
	Date         string `json:"date"`
	Orders       int    `json:"orders"`
	RevenueCents int64  `json:"revenue_cents"`
	Refunds      int    `json:"refunds"`
}

// Report is the finished result.
type Report struct {
	Title   string   `json:"title"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	Days    []Row    `json:"days"`
	Totals  Row      `json:"totals"`
	Regions []string `json:"regions"`
}

// Build computes the report for p.
func Build(p Params) Report {
	r := Report{Title: p.Title, From: p.From.Format(time.DateOnly), To: p.To.Format(time.DateOnly), Regions: dataset.Regions()}
	r.Totals.Date = r.From + "/" + r.To
	for d := p.From; !d.After(p.To); d = d.AddDate(0, 0, 1) {
		row := Row{Date: d.Format(time.DateOnly)}
		for i := range dataset.Regions() {
			s := dataset.Day(d, i)
			row.Orders += s.Orders
			row.RevenueCents += s.RevenueCents
			row.Refunds += s.Refunds
		}
		r.Days = append(r.Days, row)
		r.Totals.Orders += row.Orders
		r.Totals.RevenueCents += row.RevenueCents
		r.Totals.Refunds += row.Refunds
	}
	return r
}

// sections are the steps of a report, in order.
var sections = []string{"loading orders", "loading refunds", "aggregating by day", "computing totals", "rendering"}

// Plan is how a report job runs: one step per section of the report.
func Plan(in Input, scale float64) (jobs.Plan, error) {
	return simulate.Plan(in.Scenario, len(sections), scale)
}

// Work is what report jobs do: report each section, then build the report.
func Work() jobs.Work {
	return jobs.Work{
		Message: func(_ jobs.Job, i int) string {
			i = min(max(i, 0), len(sections)-1)
			return fmt.Sprintf("%s (%d of %d)", sections[i], i+1, len(sections))
		},
		Result: func(_ context.Context, job jobs.Job) ([]byte, error) {
			var in Input
			if err := json.Unmarshal(job.Input, &in); err != nil {
				return nil, fmt.Errorf("decoding report input: %w", err)
			}
			out, err := json.Marshal(Build(in.Params))
			if err != nil {
				return nil, fmt.Errorf("encoding report: %w", err)
			}
			return out, nil
		},
	}
}
