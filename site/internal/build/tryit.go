package build

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/evanw/esbuild/pkg/api"

	"github.com/accepted-dev/accepted/site/internal/apiref"
	"github.com/accepted-dev/accepted/site/internal/codesamples"
	"github.com/accepted-dev/accepted/site/internal/refpages"
)

// tryItOps are the operations a guide's ```tryit block may name, by
// operationId, filled in by referencePages before any page is rendered.
type tryItOps struct {
	mu     sync.RWMutex
	doc    *apiref.Doc
	byID   map[string]*apiref.Operation
	loaded bool
}

func (t *tryItOps) set(doc *apiref.Doc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.doc, t.loaded = doc, true
	t.byID = map[string]*apiref.Operation{}
	for i := range doc.Operations {
		if op := &doc.Operations[i]; op.ID != "" {
			t.byID[op.ID] = op
		}
	}
}

// html renders the placeholder of a guide's try-it panel: the same one as
// on the operation's reference page, with the curl command rewritten for
// the scenario or body the guide chose.
func (t *tryItOps) html(id, scenario, body string) (string, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if !t.loaded {
		return "", fmt.Errorf("no generated/openapi.json to take the operation from")
	}
	op, ok := t.byID[id]
	if !ok {
		ids := make([]string, 0, len(t.byID))
		for k := range t.byID {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		return "", fmt.Errorf("no operation with operationId %q (known: %s)", id, strings.Join(ids, ", "))
	}
	req := op.Request
	switch {
	case body != "":
		req.Body = body
	case scenario != "":
		found := false
		if op.Body != nil {
			for _, mt := range op.Body.Content {
				for _, e := range mt.Examples {
					if e.Name == scenario {
						req.Body, found = e.Value, true
					}
				}
			}
		}
		if !found {
			return "", fmt.Errorf("operation %s has no request example named %q", id, scenario)
		}
	}
	curl := ""
	if samples := codesamples.For(req, t.doc.Server()); len(samples) > 0 && (body != "" || scenario != "") {
		curl = samples[0].Code
	}
	var buf bytes.Buffer
	err := refpages.TryItPanel(refpages.TryIt{Op: op, Scenario: scenario, Body: body, Curl: curl}).Render(context.Background(), &buf)
	return buf.String(), err
}

// reproduce renders a try-it panel for the first operation (in the
// reference's order) with a request example named code: the spec's way of
// saying "this request ends in that problem". Empty when none has one.
func (t *tryItOps) reproduce(code string) (string, error) {
	t.mu.RLock()
	var id string
	if t.loaded {
	ops:
		for _, tag := range t.doc.Tags {
			for _, op := range tag.Operations {
				if op.Body == nil || op.ID == "" {
					continue
				}
				for _, mt := range op.Body.Content {
					for _, e := range mt.Examples {
						if e.Name == code {
							id = op.ID
							break ops
						}
					}
				}
			}
		}
	}
	t.mu.RUnlock()
	if id == "" {
		return "", nil
	}
	return t.html(id, code, "")
}

// minifyJS minifies a script with esbuild's Go API (no Node needed). The
// scripts are written for current browsers (ES2020), so nothing is
// transpiled; only whitespace, names and syntax shrink.
func minifyJS(name string, src []byte) ([]byte, error) {
	res := api.Transform(string(src), api.TransformOptions{
		Loader:            api.LoaderJS,
		Target:            api.ES2020,
		MinifyWhitespace:  true,
		MinifyIdentifiers: true,
		MinifySyntax:      true,
		Sourcefile:        name,
		LegalComments:     api.LegalCommentsNone,
	})
	if len(res.Errors) > 0 {
		msgs := api.FormatMessages(res.Errors, api.FormatMessagesOptions{Kind: api.ErrorMessage})
		return nil, fmt.Errorf("minify %s: %s", name, strings.Join(msgs, "\n"))
	}
	return res.Code, nil
}
