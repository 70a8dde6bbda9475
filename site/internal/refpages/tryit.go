package refpages

import (
	"encoding/json"
	"strings"

	"github.com/a-h/templ"

	"github.com/accepted-dev/accepted/site/internal/apiref"
	"github.com/accepted-dev/accepted/site/internal/codesamples"
)

// TryIt is one try-it placeholder: the operation, and for a guide's panel
// the scenario to preselect and a body to start from. Curl is the command
// shown when JavaScript is off; empty means the operation's own sample.
type TryIt struct {
	Op       *apiref.Operation
	Scenario string // request example to preselect
	Body     string // body to start from instead of the example's
	Curl     string
}

// TryItPanel renders the placeholder the try-it script turns into a live
// panel. Without JavaScript it shows the request as a curl command. The
// script reads everything it needs from data- attributes, so it never loads
// the spec.
func TryItPanel(t TryIt) templ.Component {
	if t.Curl == "" {
		t.Curl = curlOf(t.Op)
	}
	return tryIt(t)
}

type tryExample struct {
	Name    string `json:"n"`
	Summary string `json:"s,omitempty"`
	Value   string `json:"v"`
}

// tryExamples are the JSON request examples (the scenarios) as a JSON array.
func tryExamples(op *apiref.Operation) string {
	if op.Body == nil {
		return ""
	}
	for _, mt := range op.Body.Content {
		if !strings.Contains(mt.Type, "json") {
			continue
		}
		var out []tryExample
		for _, e := range mt.Examples {
			name := e.Name
			if name == "" {
				name = "example"
			}
			out = append(out, tryExample{Name: name, Summary: e.Summary, Value: e.Value})
		}
		if len(out) == 0 {
			return ""
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	return ""
}

// tryFlow is the whole client of an operation that answers 202, in each
// language, as a JSON object by language with codesamples.Token
// placeholders, for "Copy as" to fill in with the request it sent.
func tryFlow(op *apiref.Operation) string {
	fs := codesamples.FollowTemplates(op.Request)
	if len(fs) == 0 {
		return ""
	}
	m := map[string]string{}
	for _, f := range fs {
		m[f.Lang] = f.Code
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// tryParams are the path parameters as a JSON array of [name, example].
func tryParams(op *apiref.Operation) string {
	var out [][2]string
	for _, p := range op.Params {
		if p.In != "path" {
			continue
		}
		ex := ""
		if len(p.Examples) > 0 {
			ex = strings.Trim(p.Examples[0].Value, `"`)
		} else if p.Schema != nil && len(p.Schema.Examples) > 0 {
			ex = strings.Trim(p.Schema.Examples[0], `"`)
		}
		out = append(out, [2]string{p.Name, ex})
	}
	if len(out) == 0 {
		return ""
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// tryAsync reports whether the operation answers 202 Accepted, so the
// panel follows the job.
func tryAsync(op *apiref.Operation) bool {
	for _, r := range op.Responses {
		if r.Status == "202" {
			return true
		}
	}
	return false
}

// tryStream reports whether a success response is text/event-stream.
func tryStream(op *apiref.Operation) bool {
	for _, r := range op.Responses {
		if r.StatusClass() != "2xx" {
			continue
		}
		for _, mt := range r.Content {
			if strings.HasPrefix(mt.Type, "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// tryCallback reports whether the body takes a callback_url, so the panel
// offers the visitor a built-in inbox to receive the webhook.
func tryCallback(op *apiref.Operation) bool {
	if len(op.Callbacks) > 0 {
		return true
	}
	if op.Body == nil {
		return false
	}
	for _, mt := range op.Body.Content {
		if mt.Schema == nil {
			continue
		}
		for _, p := range mt.Schema.Properties {
			if p.Name == "callback_url" {
				return true
			}
		}
	}
	return false
}
