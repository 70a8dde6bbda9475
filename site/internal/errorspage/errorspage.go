// Package errorspage renders the error catalog (generated/errors.json) as the
// /errors/ page. Every problem gets an element whose id is its code, so the
// "type" URI of a problem the sandbox returns (…/errors#job_stalled) opens
// the right entry.
package errorspage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/accepted-dev/accepted/site/internal/highlight"
)

// Problem is one entry of errors.json.
type Problem struct {
	Code        string          `json:"code"`
	Type        string          `json:"type"`
	Status      int             `json:"status"`
	Title       string          `json:"title"`
	When        string          `json:"when"` // "immediate" or "deferred"
	Retryable   bool            `json:"retryable"`
	Description string          `json:"description"`
	Action      string          `json:"action"`
	Example     json.RawMessage `json:"example"`
	Scenario    json.RawMessage `json:"scenario"`

	// Filled by Load: Description and Action as HTML, highlighted JSON.
	DescriptionHTML string `json:"-"`
	ActionHTML      string `json:"-"`
	ExampleHTML     string `json:"-"`
	ScenarioHTML    string `json:"-"`
	// ReproduceHTML is a try-it panel that makes this problem happen
	// (filled by the caller, which knows the API reference); empty when
	// no request can.
	ReproduceHTML string `json:"-"`
}

// Catalog is errors.json.
type Catalog struct {
	Base     string    `json:"base"`
	Problems []Problem `json:"problems"`
}

// Load parses errors.json, renders the Markdown of descriptions and actions
// with text (a safe Markdown renderer) and highlights the JSON of each entry.
func Load(data []byte, hl *highlight.Highlighter, text func(name, markdown string) (string, error)) (*Catalog, error) {
	var c Catalog
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("errors.json: %w", err)
	}
	seen := map[string]bool{}
	for i := range c.Problems {
		p := &c.Problems[i]
		if p.Code == "" || !validID(p.Code) {
			return nil, fmt.Errorf("errors.json: problem %d: code %q is not a usable anchor", i, p.Code)
		}
		if seen[p.Code] {
			return nil, fmt.Errorf("errors.json: code %q appears twice", p.Code)
		}
		seen[p.Code] = true
		if _, frag, ok := strings.Cut(p.Type, "#"); ok && frag != p.Code {
			return nil, fmt.Errorf("errors.json: %s: type %q points at #%s, not at its own entry", p.Code, p.Type, frag)
		}
		var err error
		if p.DescriptionHTML, err = text("errors.json "+p.Code, p.Description); err != nil {
			return nil, err
		}
		if p.ActionHTML, err = text("errors.json "+p.Code, p.Action); err != nil {
			return nil, err
		}
		if p.ExampleHTML, err = jsonHTML(hl, p.Example); err != nil {
			return nil, fmt.Errorf("errors.json: %s example: %w", p.Code, err)
		}
		if p.ScenarioHTML, err = jsonHTML(hl, p.Scenario); err != nil {
			return nil, fmt.Errorf("errors.json: %s scenario: %w", p.Code, err)
		}
	}
	return &c, nil
}

// Immediate and Deferred split the catalog the way a client meets it:
// in the response to the request, or later in the job's status.
func (c *Catalog) Immediate() []Problem { return c.filter("immediate") }

// Deferred lists the problems reported in a job's final status.
func (c *Catalog) Deferred() []Problem { return c.filter("deferred") }

// Other lists entries with an unknown "when".
func (c *Catalog) Other() []Problem {
	var out []Problem
	for _, p := range c.Problems {
		if p.When != "immediate" && p.When != "deferred" {
			out = append(out, p)
		}
	}
	return out
}

func (c *Catalog) filter(when string) []Problem {
	var out []Problem
	for _, p := range c.Problems {
		if p.When == when {
			out = append(out, p)
		}
	}
	return out
}

func jsonHTML(hl *highlight.Highlighter, raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return "", nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return "", err
	}
	return hl.HTML(buf.String(), "json")
}

func validID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ErrNoCatalog is returned by callers when generated/errors.json is absent.
var ErrNoCatalog = errors.New("no error catalog")
