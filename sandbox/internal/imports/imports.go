// Package imports is the sandbox's product import: a client sends rows of
// stock (SKU, name, quantity, price) and the warehouse takes them in the
// background. Checks that need only the request (types, bounds) are the
// API's, made before the 202; the checks here are the ones only the
// processing can make (duplicates within the import, what the warehouse
// knows about a SKU), so they end as per-row errors in the result rather
// than as a refused request.
package imports

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
)

// Kind is the job kind of imports.
const Kind jobs.Kind = "import"

// MaxRows bounds one import.
const MaxRows = 1000

// BatchRows is how many rows one step of the simulated run checks.
const BatchRows = 100

// DiscontinuedPrefix marks SKUs the warehouse no longer stocks.
const DiscontinuedPrefix = "OLD-"

// Event types sent when an import ends.
const (
	EventComplete = "import.complete" // every row imported
	EventPartial  = "import.partial"  // some rows rejected
	EventFailed   = "import.failed"   // nothing imported, or the job failed or was cancelled
)

// Events lists the event types an import can end with.
func Events() []string { return []string{EventComplete, EventPartial, EventFailed} }

// Row is one product line.
type Row struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Quantity   int    `json:"quantity"`
	PriceCents int64  `json:"price_cents"`
}

// Input is what an import job carries.
type Input struct {
	Rows        []Row             `json:"rows"`
	CallbackURL string            `json:"callback_url,omitempty"`
	Scenario    simulate.Scenario `json:"scenario"`
}

// Rejection says why one row was not imported, in words a person can act on.
type Rejection struct {
	Row    int    `json:"row"` // 1-based, as a spreadsheet counts
	SKU    string `json:"sku"`
	Reason string `json:"reason"`
}

// Result is what a finished import produced.
type Result struct {
	TotalRows int         `json:"total_rows"`
	Imported  int         `json:"imported"`
	Rejected  []Rejection `json:"rejected"`
}

// Event is the event type this result is announced with.
func (r Result) Event() string {
	switch {
	case r.TotalRows > 0 && r.Imported == r.TotalRows:
		return EventComplete
	case r.Imported > 0:
		return EventPartial
	default:
		return EventFailed
	}
}

// Check runs the checks only processing can make. Each rejected row gets
// one reason, the first that applies: a duplicate SKU, a discontinued SKU,
// or a quantity that would take stock below zero.
func Check(rows []Row) Result {
	res := Result{TotalRows: len(rows), Rejected: []Rejection{}}
	first := make(map[string]int, len(rows))
	for i, r := range rows {
		n := i + 1
		var reason string
		if prev, dup := first[r.SKU]; dup {
			reason = fmt.Sprintf("duplicate of row %d: SKU %s appears more than once in this import; merge the rows or remove this one", prev, r.SKU)
		} else {
			first[r.SKU] = n
			switch {
			case strings.HasPrefix(r.SKU, DiscontinuedPrefix):
				reason = fmt.Sprintf("SKU %s is discontinued in the warehouse (SKUs starting with %s are); remove the row or use the product's current SKU", r.SKU, DiscontinuedPrefix)
			case r.Quantity < 0:
				reason = fmt.Sprintf("quantity %d would take the stock of %s below zero; an import adds stock, so send 0 or more", r.Quantity, r.SKU)
			}
		}
		if reason != "" {
			res.Rejected = append(res.Rejected, Rejection{Row: n, SKU: r.SKU, Reason: reason})
			continue
		}
		res.Imported++
	}
	return res
}

// DefaultSeconds is the simulated duration of an import of n rows when the
// caller does not choose one: 2 s plus 1 s per 100 rows.
func DefaultSeconds(n int) float64 { return 2 + float64(n)/BatchRows }

// Steps is how many batches an import of n rows is checked in.
func Steps(n int) int { return max((n+BatchRows-1)/BatchRows, 1) }

// Plan is how an import job runs: one step per batch of rows.
func Plan(in Input, scale float64) (jobs.Plan, error) {
	return simulate.Plan(in.Scenario, Steps(len(in.Rows)), scale)
}

// Work is what import jobs do: report each batch of rows checked, then
// run the checks.
func Work() jobs.Work {
	return jobs.Work{
		Message: func(job jobs.Job, i int) string {
			var n int
			var in struct {
				Rows []json.RawMessage `json:"rows"`
			}
			if json.Unmarshal(job.Input, &in) == nil {
				n = len(in.Rows)
			}
			if n == 0 {
				return "checking rows"
			}
			from, to := i*BatchRows+1, min((i+1)*BatchRows, n)
			return fmt.Sprintf("checking rows %d–%d of %d", from, to, n)
		},
		Result: func(_ context.Context, job jobs.Job) ([]byte, error) {
			var in Input
			if err := json.Unmarshal(job.Input, &in); err != nil {
				return nil, fmt.Errorf("decoding import input: %w", err)
			}
			out, err := json.Marshal(Check(in.Rows))
			if err != nil {
				return nil, fmt.Errorf("encoding import result: %w", err)
			}
			return out, nil
		},
	}
}
