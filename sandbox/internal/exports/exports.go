// Package exports produces the files of the sandbox's export flow
// (POST /v1/exports → 202 → poll with progress → download).
//
// A file is never stored: it is a pure function of the export's parameters,
// so the job computes its size and digest once and the download streams it
// again with an exact Content-Length.
package exports

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/accepted-dev/accepted/sandbox/internal/dataset"
	"github.com/accepted-dev/accepted/sandbox/internal/jobs"
	"github.com/accepted-dev/accepted/sandbox/internal/simulate"
)

// Kind is the job kind of export jobs.
const Kind jobs.Kind = "export"

// Formats the sandbox can export.
const (
	CSV    = "csv"
	NDJSON = "ndjson"
)

// Params is what a client asks for.
type Params struct {
	Format      string    `json:"format"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`          // inclusive
	Granularity string    `json:"granularity"` // "day" or "hour"
}

// Input is what an export job carries.
type Input struct {
	Params   Params            `json:"params"`
	Scenario simulate.Scenario `json:"scenario"`
}

// File describes a finished export; it is the job's output.
type File struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Rows        int    `json:"rows"`
	Bytes       int64  `json:"bytes"`
	SHA256      string `json:"sha256"`
}

// ContentType returns the media type of a format.
func ContentType(format string) string {
	if format == NDJSON {
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}

func (p Params) step() time.Duration {
	if p.Granularity == "hour" {
		return time.Hour
	}
	return 24 * time.Hour
}

// Rows is the number of data rows the file will have.
func (p Params) Rows() int {
	periods := int(p.To.Add(24*time.Hour).Sub(p.From) / p.step())
	return periods * len(dataset.Regions())
}

type ndjsonRow struct {
	At           string `json:"at"`
	Region       string `json:"region"`
	Orders       int    `json:"orders"`
	RevenueCents int64  `json:"revenue_cents"`
	Refunds      int    `json:"refunds"`
}

// Write writes the file for p to w and returns the number of data rows.
func Write(w io.Writer, p Params) (int, error) {
	bw := bufio.NewWriterSize(w, 32<<10)
	rows := 0
	end := p.To.Add(24 * time.Hour)
	var cw *csv.Writer
	if p.Format == CSV {
		cw = csv.NewWriter(bw)
		if err := cw.Write([]string{"at", "region", "orders", "revenue_cents", "refunds"}); err != nil {
			return 0, fmt.Errorf("writing csv header: %w", err)
		}
	}
	enc := json.NewEncoder(bw)
	for t := p.From; t.Before(end); t = t.Add(p.step()) {
		for i := range dataset.Regions() {
			var s dataset.Sales
			if p.Granularity == "hour" {
				s = dataset.Hour(t, i)
			} else {
				s = dataset.Day(t, i)
			}
			at := s.At.Format(time.RFC3339)
			var err error
			if cw != nil {
				err = cw.Write([]string{at, s.Region, strconv.Itoa(s.Orders), strconv.FormatInt(s.RevenueCents, 10), strconv.Itoa(s.Refunds)})
			} else {
				err = enc.Encode(ndjsonRow{at, s.Region, s.Orders, s.RevenueCents, s.Refunds})
			}
			if err != nil {
				return rows, fmt.Errorf("writing row %d: %w", rows+1, err)
			}
			rows++
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return rows, fmt.Errorf("flushing csv: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return rows, fmt.Errorf("flushing export: %w", err)
	}
	return rows, nil
}

type counter struct{ n int64 }

func (c *counter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// Describe computes the file's metadata without keeping its bytes.
func Describe(p Params, name string) (File, error) {
	h := sha256.New()
	var c counter
	rows, err := Write(io.MultiWriter(h, &c), p)
	if err != nil {
		return File{}, err
	}
	return File{Name: name, ContentType: ContentType(p.Format), Rows: rows, Bytes: c.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// steps is how many batches an export is written in: one per month of
// data, which is how a real exporter would page through a table, 1 to 12.
func (p Params) steps() int { return max(1, min(12, p.Rows()/len(dataset.Regions())/30+1)) }

// Plan is how an export job runs: one step per batch of rows.
func Plan(in Input, scale float64) (jobs.Plan, error) {
	return simulate.Plan(in.Scenario, in.Params.steps(), scale)
}

// FileName is the name of an export's file.
func FileName(p Params) string {
	return fmt.Sprintf("sales-%s-%s.%s", p.From.Format("20060102"), p.To.Format("20060102"), p.Format)
}

// Work is what export jobs do: report each batch, then describe the file.
func Work() jobs.Work {
	return jobs.Work{
		Message: func(job jobs.Job, i int) string {
			return fmt.Sprintf("writing rows: batch %d of %d", i+1, job.Plan.Steps)
		},
		Result: func(_ context.Context, job jobs.Job) ([]byte, error) {
			var in Input
			if err := json.Unmarshal(job.Input, &in); err != nil {
				return nil, fmt.Errorf("decoding export input: %w", err)
			}
			f, err := Describe(in.Params, FileName(in.Params))
			if err != nil {
				return nil, err
			}
			return json.Marshal(f)
		},
	}
}
