// Package codesamples writes the request samples shown next to each operation
// of the API reference: curl, JavaScript (fetch), Python (urllib) and Go
// (net/http). Samples use only each language's standard library so a reader
// can paste and run them without installing anything.
//
// The package knows nothing about OpenAPI: the caller (package apiref)
// describes the request as an Op, which keeps the dependency one-way.
package codesamples

import (
	"fmt"
	"net/url"
	"strings"
)

// KeyEnv is the environment variable the samples read the API key from when
// Auth.Env is empty.
const KeyEnv = "ACCEPTED_KEY"

// Sample is one request in one language.
type Sample struct {
	Lang  string // stable key for tabs and data-lang: curl, javascript, python, go
	Label string // human label: curl, JavaScript, Python, Go
	Code  string
}

// Lexer names the chroma lexer that highlights the sample.
func (s Sample) Lexer() string {
	if s.Lang == "curl" {
		return "bash"
	}
	return s.Lang
}

// Param is a name with the example value the sample sends.
type Param struct {
	Name, Value string
	// Fresh asks for a new random value each time the sample runs instead
	// of Value: an Idempotency-Key, which replays the first job when sent
	// again. curl takes it from FreshShell, JavaScript from
	// crypto.randomUUID(), Python from uuid.uuid4(), Go from crypto/rand's
	// Text().
	Fresh bool
}

// FreshShell is the shell command substitution a curl sample uses for a
// fresh key: 128 random bits as 32 hex digits. od, tr and /dev/urandom are
// POSIX or near enough to be everywhere curl is (Linux with coreutils or
// BusyBox, macOS, the BSDs, Git Bash), where uuidgen is missing from many
// containers and /proc/sys/kernel/random/uuid exists only on Linux. The
// sandbox takes any key of 1 to 255 characters.
const FreshShell = "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')"

// shellVar is the variable a curl sample keeps a fresh header value in:
// Idempotency-Key → IDEMPOTENCY_KEY.
func shellVar(header string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(header))
}

// Auth says how the request carries its credentials.
type Auth struct {
	In     string // header (default), query or cookie
	Name   string // header, query parameter or cookie name, e.g. Authorization
	Prefix string // put before the secret, e.g. "Bearer "
	Env    string // environment variable holding the secret; KeyEnv when empty
}

func (a *Auth) env() string {
	if a.Env == "" {
		return KeyEnv
	}
	return a.Env
}

// Op describes one HTTP request to write samples for.
type Op struct {
	Method      string
	Path        string  // template such as /v1/jobs/{id}
	PathParams  []Param // values substituted into Path
	Query       []Param
	Headers     []Param
	Auth        *Auth
	ContentType string
	Body        string // example body; JSON bodies are re-indented per language
	// FollowLocation is set when the success response is 202 Accepted with a
	// Location header: the samples print it and say how to follow it.
	FollowLocation bool
	RetryAfter     bool // the 202 also documents Retry-After
}

// For returns samples for op against serverURL in curl, JavaScript, Python
// and Go, in that order.
func For(op Op, serverURL string) []Sample {
	return []Sample{
		{Lang: "curl", Label: "curl", Code: curl(op, serverURL)},
		{Lang: "javascript", Label: "JavaScript", Code: javascript(op, serverURL)},
		{Lang: "python", Label: "Python", Code: python(op, serverURL)},
		{Lang: "go", Label: "Go", Code: golang(op, serverURL)},
	}
}

// URL is the request URL without any credentials in the query.
func (op Op) URL(serverURL string) string {
	path := op.Path
	for _, p := range op.PathParams {
		path = strings.ReplaceAll(path, "{"+p.Name+"}", url.PathEscape(p.Value))
	}
	u := strings.TrimRight(serverURL, "/") + path
	var q []string
	for _, p := range op.Query {
		q = append(q, url.QueryEscape(p.Name)+"="+url.QueryEscape(p.Value))
	}
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return u
}

func (op Op) method() string {
	if op.Method == "" {
		return "GET"
	}
	return strings.ToUpper(op.Method)
}

func (op Op) isJSON() bool {
	return op.Body != "" && (op.ContentType == "" || strings.Contains(op.ContentType, "json"))
}

// authQuery returns the query separator and name for query credentials.
func (op Op) authQuery(serverURL string) (sep, name string, ok bool) {
	if op.Auth == nil || op.Auth.In != "query" {
		return "", "", false
	}
	sep = "?"
	if strings.Contains(op.URL(serverURL), "?") {
		sep = "&"
	}
	return sep, url.QueryEscape(op.Auth.Name), true
}

// authHeader returns the header name carrying credentials, if any.
func (op Op) authHeader() (string, bool) {
	if op.Auth == nil {
		return "", false
	}
	switch op.Auth.In {
	case "query":
		return "", false
	case "cookie":
		return "Cookie", true
	}
	if op.Auth.Name == "" {
		return "Authorization", true
	}
	return op.Auth.Name, true
}

// authPrefix is the literal text before the secret in the header value.
func (op Op) authPrefix() string {
	if op.Auth.In == "cookie" {
		return op.Auth.Name + "="
	}
	return op.Auth.Prefix
}

func followComment() []string {
	return []string{
		"202 Accepted: the work goes on in the background. Poll the URL in the",
		"Location header until the job finishes, waiting Retry-After seconds",
		"between requests; a 303 See Other then points to the result.",
	}
}

func curl(op Op, serverURL string) string {
	var b strings.Builder
	u := shellQuoteDouble(op.URL(serverURL))
	if sep, name, ok := op.authQuery(serverURL); ok {
		u = strings.TrimSuffix(u, `"`) + sep + name + "=$" + op.Auth.env() + `"`
	}
	for _, h := range op.Headers {
		if h.Fresh {
			fmt.Fprintf(&b, "# A new %s for each new request; send the same one again to retry safely.\n", h.Name)
			fmt.Fprintf(&b, "%s=%s\n", shellVar(h.Name), FreshShell)
		}
	}
	b.WriteString("curl -i")
	if m := op.method(); m != "GET" {
		b.WriteString(" -X " + m)
	}
	b.WriteString(" " + u)
	if h, ok := op.authHeader(); ok {
		fmt.Fprintf(&b, " \\\n  -H \"%s: %s$%s\"", shellEscapeDouble(h), shellEscapeDouble(op.authPrefix()), op.Auth.env())
	}
	for _, h := range op.Headers {
		if h.Fresh {
			fmt.Fprintf(&b, " \\\n  -H \"%s: $%s\"", shellEscapeDouble(h.Name), shellVar(h.Name))
			continue
		}
		fmt.Fprintf(&b, " \\\n  -H %s", shellQuoteDouble(h.Name+": "+h.Value))
	}
	if op.Body != "" {
		ct := op.ContentType
		if ct == "" {
			ct = "application/json"
		}
		fmt.Fprintf(&b, " \\\n  -H %s", shellQuoteDouble("Content-Type: "+ct))
		fmt.Fprintf(&b, " \\\n  --data-raw %s", shellQuoteSingle(op.Body))
	}
	b.WriteString("\n")
	if op.FollowLocation {
		for _, l := range followComment() {
			b.WriteString("# " + l + "\n")
		}
	}
	return b.String()
}

func shellEscapeDouble(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return r.Replace(s)
}

func shellQuoteDouble(s string) string { return `"` + shellEscapeDouble(s) + `"` }

func shellQuoteSingle(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
